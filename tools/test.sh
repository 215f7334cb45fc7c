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
skipped=$(grep -cE "^\s+[0-9]+ - .*\(Skipped\)" "$build/ctest.log" || true)
[ "$skipped" -gt 0 ] && echo "leuko: $skipped test file(s) skipped (GPU tests need a CUDA GPU: they did not run and did not pass)"
exit "$rc"
