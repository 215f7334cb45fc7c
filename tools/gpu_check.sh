#!/usr/bin/env bash
# The one script a GPU machine runs: build with ninja on all cores, run the GPU tests (and the
# CPU tests, which take seconds there), print a short summary. Results also go to $OUT when set
# (the device tool's output folder), else to build-gpu/.
#   tools/gpu_check.sh            build + all tests
#   tools/gpu_check.sh -L gpu     build + the GPU tests only (arguments go to ctest)
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${LEUKO_BUILD_DIR:-$root/build-gpu}
out=${OUT:-$build}
mkdir -p "$build" "$out"
start=$(date +%s)

# stb is not installed on the GPU machine: ../shared/tools/stage-gpu-inputs puts it in .gpu/.
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DLEUKO_CUDA=ON \
  -DCMAKE_CUDA_ARCHITECTURES="${LEUKO_CUDA_ARCH:-90}" >"$out/configure.log" 2>&1 ||
  { tail -30 "$out/configure.log"; echo "gpu_check: configure failed"; exit 1; }
ninja -C "$build" -j "$(nproc)" >"$out/build.log" 2>&1 ||
  { grep -E "error|FAILED" "$out/build.log" | head -40; echo "gpu_check: build failed"; exit 1; }
built=$(date +%s)

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null | sed 's/^/card: /'
"$build/leuko" demo >"$out/demo.log" 2>&1; demo_rc=$?
(cd "$build" && ctest --output-on-failure -j 4 "${@}" >"$out/ctest.log" 2>&1); test_rc=$?
done_at=$(date +%s)

echo
echo "== gpu_check summary =="
echo "build: $((built - start)) s, tests: $((done_at - built)) s"
echo "demo: $([ $demo_rc = 0 ] && echo pass || echo FAIL) ($(grep -m1 'leuko demo on' "$out/demo.log"))"
grep -E "^ *[0-9]+/[0-9]+ Test" "$out/ctest.log" | sed -E 's/^ *[0-9]+\/[0-9]+ Test +#[0-9]+: //' |
  awk '{printf "  %-40s %s\n", $1, $3}'
grep -E "tests passed|tests failed" "$out/ctest.log"
if [ $test_rc != 0 ]; then
  echo "-- failures --"
  grep -B2 -A12 -E "ERROR|FAILED|CHECK\(|REQUIRE\(" "$out/ctest.log" | head -80
fi
exit $(( demo_rc != 0 || test_rc != 0 ))
