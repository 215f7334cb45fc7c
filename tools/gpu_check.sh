#!/usr/bin/env bash
# The one script a GPU machine runs: build with ninja on all cores, run the GPU tests (and the
# CPU tests, which take seconds there), print a short summary. Results also go to $OUT when set
# (the device tool's output folder), else to build-gpu/.
#   tools/gpu_check.sh            build + all tests + the leuko/PyTorch speed table
#   tools/gpu_check.sh -L gpu     build + the GPU tests only (other arguments go to ctest)
#   tools/gpu_check.sh --no-bench     without the speed table
#   tools/gpu_check.sh --bench-only   build + the speed table, no tests
#   tools/gpu_check.sh --no-equivalence   without the torchvision equivalence of the five networks
#   tools/gpu_check.sh --sanitize     also compute-sanitizer memcheck and racecheck over a few GPU
#                                     test files (tools/gpu_sanitize.sh; about 6 minutes more)
#   tools/gpu_check.sh --profile      the speed table's cells also profiled op by op on both sides
#                                     (3 steps each: bench_compare.py --profile 3, $OUT/bench/profile.md)
# The speed table (tools/bench_compare.py --quick, docs/PERFORMANCE.md) is capped at
# LEUKO_BENCH_BUDGET seconds (default 300), so build + tests + bench fit a 15-minute session;
# LEUKO_PYTHON names the Python with torch and torchvision (default python3); LEUKO_BENCH_GRAPH=1
# runs leuko's cells of the table as CUDA graph replays (bench_compare.py --leuko-graph).
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bench=1 tests=1 sanitize=0 equiv=1 profile=0 ctest_args=()
for arg in "$@"; do
  case "$arg" in
    --no-bench) bench=0 ;;
    --bench-only) tests=0 equiv=0 ;;
    --sanitize) sanitize=1 ;;
    --profile) profile=3 ;;
    --no-equivalence) equiv=0 ;;
    *) ctest_args+=("$arg") ;;
  esac
done
build=${LEUKO_BUILD_DIR:-$root/build-gpu}
out=${OUT:-$build}
mkdir -p "$build" "$out"
start=$(date +%s)

# stb is not installed on the GPU machine: ../shared/tools/stage-gpu-inputs puts it in .gpu/.
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DLEUKO_CUDA=ON \
  -DCMAKE_CUDA_ARCHITECTURES="${LEUKO_CUDA_ARCH:-90}" >"$build/configure.log" 2>&1 ||
  { tail -30 "$build/configure.log"; echo "gpu_check: configure failed"; exit 1; }
ninja -C "$build" -j "$(nproc)" >"$out/build.log" 2>&1 ||
  { grep -E "error|FAILED" "$out/build.log" | head -40; echo "gpu_check: build failed"; exit 1; }
built=$(date +%s)

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null | sed 's/^/card: /'
demo_rc=0 test_rc=0 bench_rc=0
if [ $tests = 1 ]; then
  "$build/leuko" demo >"$out/demo.log" 2>&1; demo_rc=$?
  (cd "$build" && ctest --output-on-failure --timeout 300 -j 4 ${ctest_args[@]+"${ctest_args[@]}"} >"$out/ctest.log" 2>&1); test_rc=$?
fi
# The five networks against torchvision: one fp32 training step each, TF32 off on both sides.
equiv_rc=0
if [ $equiv = 1 ]; then
  PYTHONUNBUFFERED=1 timeout 300 "${LEUKO_PYTHON:-python3}" "$root/tools/torch_equivalence.py" --leuko "$build/leuko" \
    --device cuda >"$out/equivalence.log" 2>&1; equiv_rc=$?
fi
done_at=$(date +%s)
sanitize_rc=0
if [ $sanitize = 1 ]; then
  LEUKO_BUILD_DIR="$build" bash "$root/tools/gpu_sanitize.sh" >"$out/sanitize.log" 2>&1; sanitize_rc=$?
fi
sanitized=$(date +%s)
# The speed table: one leuko process per cell, one PyTorch process for all, within the budget.
if [ $bench = 1 ]; then
  "${LEUKO_PYTHON:-python3}" "$root/tools/bench_compare.py" --quick --device cuda --leuko "$build/leuko" \
    --python "${LEUKO_PYTHON:-python3}" --budget "${LEUKO_BENCH_BUDGET:-300}" --out "$out/bench" --profile $profile \
    ${LEUKO_BENCH_GRAPH:+--leuko-graph} >"$out/bench.log" 2>&1; bench_rc=$?
fi
benched=$(date +%s)

echo
echo "== gpu_check summary =="
echo "build: $((built - start)) s, tests: $((done_at - built)) s, sanitize: $((sanitized - done_at)) s," \
  "bench: $((benched - sanitized)) s"
if [ $tests = 1 ]; then
  echo "demo: $([ $demo_rc = 0 ] && echo pass || echo FAIL) ($(grep -m1 'leuko demo on' "$out/demo.log"))"
  grep -E "^ *[0-9]+/[0-9]+ Test" "$out/ctest.log" | sed -E 's/^ *[0-9]+\/[0-9]+ Test +#[0-9]+: //' |
    awk '{printf "  %-40s %s\n", $1, $3}'
  grep -E "tests passed|tests failed" "$out/ctest.log"
  if [ $test_rc != 0 ]; then
    echo "-- failures --"
    grep -B2 -A12 -E "ERROR|FAILED|CHECK\(|REQUIRE\(" "$out/ctest.log" | head -80
  fi
fi
if [ $equiv = 1 ]; then
  echo
  echo "== equivalence with torchvision (tools/torch_equivalence.py; largest relative error) =="
  cat "$out/equivalence.log" | tail -12
fi
if [ $sanitize = 1 ]; then
  echo
  sed -n '/== gpu_sanitize summary/,$p' "$out/sanitize.log"
  grep -q "== gpu_sanitize summary" "$out/sanitize.log" || tail -20 "$out/sanitize.log"
fi
if [ $bench = 1 ]; then
  # A measurement, not a test: a failed cell is shown in the table but does not fail the check.
  echo
  echo "== speed: leuko and PyTorch on this card (tools/bench_compare.py --quick; docs/PERFORMANCE.md) =="
  if [ -f "$out/bench/bench.md" ]; then awk 'f; /^$/ {f = 1}' "$out/bench.log"; else tail -20 "$out/bench.log"; fi
  [ $bench_rc != 0 ] && echo "bench: some leuko cells failed (see the errors above and $out/bench.log)"
  [ $profile != 0 ] && [ -f "$out/bench/profile.md" ] && echo "profiles op by op: $out/bench/profile.md"
fi
exit $(( demo_rc != 0 || test_rc != 0 || sanitize_rc != 0 || equiv_rc != 0 ))
