#!/usr/bin/env bash
# The GPU tests under NVIDIA's compute-sanitizer, for the GPU machine: memcheck (out-of-bounds
# and misaligned device accesses, errors of CUDA calls) and racecheck (shared-memory races)
# over `leuko_tests --gpu`, one run per (tool, test file). compute-sanitizer slows kernels
# 10-100x and works mostly on the host, so LEUKO_GPU_SANITIZE_JOBS runs (default: half the
# cores, at most 8) share the GPU at once, within LEUKO_GPU_SANITIZE_BUDGET seconds (default
# 360: each run gets budget x jobs / runs, at least 30 s); a run cut off there is reported as
# capped, not as passed. Builds build-gpu/ when it is not built (tools/gpu_check.sh --sanitize
# calls this after its own build). The summary and the first reports are printed; the full logs
# stay in <build>/sanitize/ (not in $OUT, which returns only a few files).
#   tools/gpu_sanitize.sh                         memcheck and racecheck, the default files
#   tools/gpu_sanitize.sh test_pool_gpu ...       these files (names under tests/gpu/)
#   tools/gpu_sanitize.sh all                     every GPU test file
#   LEUKO_GPU_SANITIZE_TOOLS=memcheck tools/gpu_sanitize.sh
#   LEUKO_GPU_SANITIZE_FILES="test_loss_gpu test_pool_gpu" tools/gpu_check.sh --sanitize
# leuko's caching allocator hands out pieces of larger cudaMalloc blocks, where memcheck would
# see an overrun only when it leaves the segment: here every block is a cudaMalloc of its own,
# of its size rounded to 512 bytes (LEUKO_CUDA_EXACT_BLOCKS=1, tensor/block_cache.h), so an
# overrun of more than that rounding is seen; the tests' NaN poisoning covers unwritten outputs.
set -uo pipefail
export LEUKO_CUDA_EXACT_BLOCKS=1
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${LEUKO_BUILD_DIR:-$root/build-gpu}
out=$build/sanitize
budget=${LEUKO_GPU_SANITIZE_BUDGET:-360}
tools=${LEUKO_GPU_SANITIZE_TOOLS:-memcheck racecheck}
jobs=${LEUKO_GPU_SANITIZE_JOBS:-$(($(nproc) / 2))}
[ "$jobs" -lt 1 ] && jobs=1
[ "$jobs" -gt 8 ] && jobs=8
# One file per kind of kernel: element-wise ops and reductions, pooling, batch norm (block
# reductions in shared memory), losses, the fused optimizer step.
files=("$@")
[ ${#files[@]} -eq 0 ] && [ -n "${LEUKO_GPU_SANITIZE_FILES:-}" ] && read -ra files <<<"$LEUKO_GPU_SANITIZE_FILES"
[ ${#files[@]} -eq 0 ] && files=(test_ops_gpu test_pool_gpu test_batchnorm_gpu test_loss_gpu test_optim_gpu)
if [ "${files[*]}" = all ]; then
  files=()
  for f in "$root"/tests/gpu/test_*_gpu.cpp; do files+=("$(basename "$f" .cpp)"); done
fi
n_tools=$(wc -w <<<"$tools")
runs=$((n_tools * ${#files[@]}))
seconds=$((budget * jobs / runs))
[ $seconds -lt 30 ] && seconds=30
[ $seconds -gt "$budget" ] && seconds=$budget
mkdir -p "$out"

sanitizer=$(command -v compute-sanitizer || true)
for c in /usr/local/cuda/bin/compute-sanitizer /usr/local/cuda/compute-sanitizer/compute-sanitizer; do
  [ -z "$sanitizer" ] && [ -x "$c" ] && sanitizer=$c
done
[ -n "$sanitizer" ] || { echo "gpu_sanitize: compute-sanitizer not found (it ships with the CUDA toolkit)"; exit 1; }

if [ ! -x "$build/tests/leuko_tests" ]; then
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DLEUKO_CUDA=ON \
    -DCMAKE_CUDA_ARCHITECTURES="${LEUKO_CUDA_ARCH:-90}" >"$out/configure.log" 2>&1 &&
    ninja -C "$build" -j "$(nproc)" leuko_tests >"$out/build.log" 2>&1 ||
    { grep -E "error|FAILED" "$out/build.log" "$out/configure.log" | head -40; echo "gpu_sanitize: build failed"; exit 1; }
fi

# One run: its result line goes to <log>.result, read back in order below.
sanitize_one() {
  local tool=$1 f=${2%.cpp} log rc result errors
  log="$out/$tool-$f.log"
  # --error-exitcode: a reported error fails the run even when the tests themselves pass.
  timeout --signal=INT --kill-after=20 "$seconds" "$sanitizer" --tool "$tool" --error-exitcode 99 \
    --print-limit 20 "$build/tests/leuko_tests" --gpu --source-file="*tests/gpu/$f.cpp" >"$log" 2>&1
  rc=$?
  errors=$(grep -m1 -E "ERROR SUMMARY|RACECHECK SUMMARY" "$log" || true)
  case $rc in
    0) result="pass" ;;
    77) result="SKIPPED (no GPU)" ;;
    124 | 130 | 137) result="capped at ${seconds} s (no error in the part that ran)" ;;
    99) result="ERRORS" ;;
    *) result="FAIL (exit $rc)" ;;
  esac
  printf '  %-10s %-36s %s %s\n' "$tool" "$f" "$result" "${errors:+($errors)}" >"$log.result"
}

start=$(date +%s)
echo "gpu_sanitize: $runs runs ($tools over ${#files[@]} files), $jobs at a time, at most $seconds s each"
running=0
for tool in $tools; do
  for f in "${files[@]}"; do
    rm -f "$out/$tool-${f%.cpp}.log.result"
    sanitize_one "$tool" "$f" &
    running=$((running + 1))
    if [ $running -ge "$jobs" ]; then
      wait -n
      running=$((running - 1))
    fi
  done
done
wait
fails=0 capped=0 summary=()
for tool in $tools; do
  for f in "${files[@]}"; do
    line=$(cat "$out/$tool-${f%.cpp}.log.result" 2>/dev/null || echo "  $tool ${f%.cpp} FAIL (no result)")
    summary+=("$line")
    case $line in
      *" pass"*) ;;
      *capped*) capped=$((capped + 1)) ;;
      *) fails=$((fails + 1)) ;;
    esac
  done
done
echo
echo "== gpu_sanitize summary ($(basename "$sanitizer"), $(($(date +%s) - start)) s) =="
printf '%s\n' "${summary[@]}"
echo "$fails failing, $capped capped at $seconds s; logs in $out"
if [ $fails -gt 0 ]; then
  echo "-- first reports --"
  grep -h -m5 -B1 -A8 -E "^========= (Invalid|Race|Program hit|Error)" "$out"/*.log | head -60
fi
exit $((fails > 0))
