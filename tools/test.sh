#!/usr/bin/env bash
# Builds leuko with its tests and runs them all (ctest). GPU tests run where a GPU is present
# and are reported as skipped elsewhere. Arguments go to ctest, e.g. tools/test.sh -L cpu.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${LEUKO_BUILD_DIR:-$root/build}
"$root/tools/deps.sh" --tests
"$root/tools/build.sh" -DLEUKO_TESTS=ON
cd "$build"
# Tests run in parallel: OpenMP threads that spin while waiting would starve each other.
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
set +e
ctest --output-on-failure -j "$(nproc)" "$@" 2>&1 | tee "$build/ctest.log"
rc=${PIPESTATUS[0]}
set -e
# Skipped entries did not run and did not pass: the GPU tests without a CUDA GPU, the Python
# tools' runs without torch (tests/tools/python_tools.sh).
skipped=$(grep -E "^\s+[0-9]+ - .*\(Skipped\)" "$build/ctest.log" || true)
if [ -n "$skipped" ]; then
  echo "leuko: $(echo "$skipped" | wc -l) test(s) skipped: they did not run and did not pass"
  echo "$skipped" | grep -q ' gpu/' && echo "  gpu/*: need a CUDA GPU"
  echo "$skipped" | grep -q 'python_tools_torch' && echo "  tools/python_tools_torch: needs python3 with torch and torchvision (apt-get install python3-torch python3-torchvision)"
fi
exit "$rc"
