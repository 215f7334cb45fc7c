#!/usr/bin/env bash
# One device call that measures what the sessions without a GPU built (docs/PERFORMANCE.md
# versions 1 to 6, docs/RESULTS.md), in about 10 minutes of a 15-minute GPU session:
#   1. tools/gpu_check.sh -L gpu --no-equivalence --profile: the build, the GPU tests, and the
#      speed table against PyTorch with both sides' op-by-op profiles (bench/profile.md), the
#      table capped at GPU_SESSION_BENCH seconds (default 240);
#   2. tools/reproduce.sh --models $GPU_SESSION_MODELS (default resnet50,alexnet: the two rows
#      short of the study) within GPU_SESSION_REPRO seconds (default 240), run folders on tmpfs;
#   3. the run folders without their checkpoints packed into $OUT/runs.tgz (the device tool
#      brings back only a few files from $OUT).
# Run it from the repository root with the images staged (../shared/tools/stage-gpu-inputs
# --data, then carry .gpu):
#   OUT=... tools/gpu_session.sh
# Every step runs even when one before it failed; the exit status is 1 if any failed.
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out=${OUT:-$root/gpu-session}
mkdir -p "$out"
start=$(date +%s)
rc=0

echo "== 1. build, GPU tests, speed table with profiles =="
OUT="$out" LEUKO_BENCH_BUDGET="${GPU_SESSION_BENCH:-240}" bash "$root/tools/gpu_check.sh" -L gpu --no-equivalence \
  --profile || rc=1
echo "(step 1: $(($(date +%s) - start)) s)"

echo
echo "== 2. reproduction: ${GPU_SESSION_MODELS:-resnet50,alexnet} =="
runs=/dev/shm/leuko-session
[ -d /dev/shm ] || runs=$out/session-runs
rm -rf "$runs"
OUT="$runs" bash "$root/tools/reproduce.sh" --models "${GPU_SESSION_MODELS:-resnet50,alexnet}" \
  --deadline "${GPU_SESSION_REPRO:-240}" || rc=1
tar czf "$out/runs.tgz" -C "$runs" --exclude='*.safetensors' . 2>/dev/null || rc=1
echo "(steps 1 and 2: $(($(date +%s) - start)) s; run folders without checkpoints in $out/runs.tgz)"
exit $rc
