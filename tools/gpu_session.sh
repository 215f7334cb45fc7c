#!/usr/bin/env bash
# What a 15-minute GPU session runs to measure what the sessions without a GPU built
# (docs/PERFORMANCE.md, docs/RESULTS.md). Steps:
#   1. tools/gpu_check.sh -L 'gpu|python' --no-equivalence --profile: the build, the GPU tests (and the
#      Python tools' test, tests/tools/python_tools.sh, with the machine's PyTorch), and the
#      speed table against PyTorch with both sides' op-by-op profiles (bench/profile.md), the
#      table capped at GPU_SESSION_BENCH seconds (default 200);
#   1b. ResNet-50 and VGG16 in bf16 as versions 7 (LEUKO_CHANNELS_LAST=0) and 6
#      (LEUKO_BF16_ACTIVATIONS=0) had them, and PyTorch's bf16 in NCHW (what channels_last is
#      worth to it), about 2 minutes;
#   1c. version 11: `leuko bench --graph` (the step replayed as one CUDA graph) beside the eager
#      step, same cells, same call, into the log (about 2 minutes);
#   1d. version 12: the convolutions through cuDNN's graph API (LEUKO_CUDNN_API=graph) beside
#      the legacy calls, with runtime-compiled engines allowed, with a 16 GiB workspace cap, and
#      as a CUDA graph, 23 runs in order of importance (about 4-5 minutes);
#   1s. compute-sanitizer (issue 7): memcheck over every GPU test file, racecheck over the files
#      of the kernels with shared memory, 8 runs at a time (about 5 minutes; prints only);
#   2. tools/reproduce.sh --models $GPU_SESSION_MODELS (default resnet50,alexnet: the two rows
#      short of the study) within GPU_SESSION_REPRO seconds (default 200), run folders on tmpfs,
#      then packed without their checkpoints into $OUT/runs.tgz (the device tool brings back
#      only a few files from $OUT). Step 2 needs step 1's build (build-gpu/).
# GPU_SESSION_STEPS picks the steps (default "1 1d 1c 2"; 1b was measured on 2026-11-27 and is
# kept for comparisons). GPU_SESSION_DEADLINE (default 570 s, under the call's 600) stops new
# bench cells and shortens step 2, so the logs come back whole. A device call may run 10 minutes and a session has 15 in all, the
# machine's start included, so run it as two calls, the second at once (the machine is given
# back after 30 s idle, and a fresh one has no build-gpu/). On 2026-11-27 (H200) step 1 took
# 296 s (build 55, tests 66, table 175), 1b 46 s, 1c 26 s, step 2 53 to 111 s a network.
#   ../shared/tools/stage-gpu-inputs --data            # here: stb and the images into .gpu/
#   run: GPU_SESSION_STEPS="1 1d" OUT=$OUT tools/gpu_session.sh     carry [".gpu"], timeout_s 600
#   run: GPU_SESSION_STEPS="1c 2" OUT=$OUT tools/gpu_session.sh      (if status leaves 4 minutes)
#   (or "1s 2", sanitizer runs instead of the graph cells)
# Run from the repository root. Every step runs even when one before it failed; the exit
# status is 1 if any failed. The device tool brings back at most 8 files from $OUT: step 1
# writes 7 (build.log, demo.log, ctest.log, bench.log, bench/bench.md, bench/bench.json,
# bench/profile.md; bench_compare.py rewrites the last three after every cell, so a call cut
# off at its limit still returns the cells it finished), steps 1c and 1d one each (graph.log,
# cudnn_api.log), step 2 one (runs.tgz); 1b prints only. Never more than 8 in one call.
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out=${OUT:-$root/gpu-session}
mkdir -p "$out"
start=$(date +%s)
rc=0

steps=" ${GPU_SESSION_STEPS:-1 1d 1c 2} "
want() { [[ "$steps" == *" $1 "* ]]; }
# The device call's limit is 600 s: past GPU_SESSION_DEADLINE seconds (default 570) no bench
# cell of steps 1b, 1c and 1d starts, so a call ends with its logs complete rather than killed
# in the middle of a cell; step 2 gets what is left, at most GPU_SESSION_REPRO.
deadline=${GPU_SESSION_DEADLINE:-570}
left() { echo $((deadline - ($(date +%s) - start))); }
in_time() {  # whether a cell of about $1 seconds still fits; says so when it does not
  [ "$(left)" -ge "$1" ] && return 0
  echo "-- skipped: $2 (GPU_SESSION_DEADLINE: $(left) s left of $deadline)"
  return 1
}

if want 1; then
echo "== 1. build, GPU tests, speed table with profiles =="
OUT="$out" LEUKO_BENCH_BUDGET="${GPU_SESSION_BENCH:-200}" bash "$root/tools/gpu_check.sh" -L 'gpu|python' --no-equivalence \
  --profile || rc=1
echo "(step 1: $(($(date +%s) - start)) s)"
fi

if want 1b; then
echo
echo "== 1b. leuko's bf16 before versions 7 and 8, and PyTorch's bf16 in NCHW, for comparison =="
# docs/PERFORMANCE.md versions 7 and 8: the table's bf16 column has bf16 channels_last activations.
# LEUKO_CHANNELS_LAST=0: bf16 activations in NCHW (version 7); LEUKO_BF16_ACTIVATIONS=0: float32
# activations with bf16 products (version 6). Same call, same card.
leuko_bin="${LEUKO_BUILD_DIR:-$root/build-gpu}/leuko"
for env in LEUKO_CHANNELS_LAST=0 LEUKO_BF16_ACTIVATIONS=0; do
  for cell in resnet50:64 vgg16:64; do
    in_time 20 "$env $cell" || continue
    echo "-- $env $cell"
    env "$env" timeout 60 "$leuko_bin" bench --model "${cell%%:*}" --batch "${cell##*:}" --precision bf16 \
      --warmup 3 --steps 5 --windows 3 2>&1 | grep -E "activations|images/s|memory|peak|error" || rc=1
  done
done
# What the layout alone is worth to PyTorch on this card: its bf16 cells with NCHW tensors (the
# table's PyTorch bf16 column is channels_last), to weigh optimisation 3 (NHWC) for leuko.
timeout 90 "${LEUKO_PYTHON:-python3}" "$root/tools/bench_torch.py" --cells resnet50:bf16:64,vgg16:bf16:64 \
  --memory-format nchw --warmup 3 --steps 5 --windows 3 2>&1 |
  "${LEUKO_PYTHON:-python3}" -c 'import json, sys
for line in sys.stdin:
    try:
        r = json.loads(line)
    except ValueError:
        continue
    print("torch", r.get("model"), r.get("precision"), r.get("batch"), r.get("memory_format"),
          "images/s %.1f" % r["images_per_s"] if "images_per_s" in r else r.get("error"),
          "peak MiB %.0f" % (r["peak_bytes"] / 2**20) if r.get("peak_bytes") else "")' || rc=1
echo "(step 1b: $(($(date +%s) - start)) s)"
fi

if want 1c; then
echo
echo "== 1c. leuko bench --graph (version 11) beside the eager step =="
# docs/PERFORMANCE.md version 11: the networks bound by launches (GoogLeNet, AlexNet) should gain
# most. Eager and graph one after the other on the same card, so their ratio is fair.
leuko_bin="${LEUKO_BUILD_DIR:-$root/build-gpu}/leuko"
(fail=0
for cell in googlenet:bf16 googlenet:tf32 alexnet:bf16 resnet50:bf16; do
  for mode in eager graph; do
    in_time 20 "$cell batch 64 $mode" || continue
    echo "-- $cell batch 64 $mode"
    flag=""
    [ "$mode" = graph ] && flag="--graph"
    timeout 60 "$leuko_bin" bench --model "${cell%%:*}" --batch 64 --precision "${cell##*:}" --warmup 3 --steps 5 \
      --windows 3 $flag 2>&1 | grep -E "images/s|step  |memory|rror|^leuko:" || fail=1
  done
done
exit $fail) 2>&1 | tee "$out/graph.log" || rc=1
echo "(step 1c: $(($(date +%s) - start)) s)"
fi

if want 1d; then
echo
echo "== 1d. cuDNN's graph API (LEUKO_CUDNN_API=graph, version 12) beside the legacy calls =="
# docs/PERFORMANCE.md version 12: the convolutions through the graph API's engines. Version 11's
# profile had leuko's bf16 channels_last convolutions at 2.5 to 5.5 times PyTorch's time. Every
# run eager unless its mode says --graph; same call, same card.
leuko_bin="${LEUKO_BUILD_DIR:-$root/build-gpu}/leuko"
(fail=0
# What the graph API's searches saw for one network (a line per convolution direction: the
# configurations offered, why each was passed over, the plan kept), for when a cell disappoints.
in_time 60 "the graph API's search log" &&
echo "-- LEUKO_CUDNN_LOG=1, googlenet bf16, one step" &&
LEUKO_CUDNN_API=graph LEUKO_CUDNN_LOG=1 timeout 60 "$leuko_bin" bench --model googlenet --batch 64 --precision bf16 \
  --warmup 1 --steps 1 --windows 1 2>&1 | grep -E "cuDNN graph API|rror" | head -40
# Runs in order of what they decide, so that the deadline cuts the least telling ones:
#   legacy / graph       LEUKO_CUDNN_API (version 12);
#   graph+rtc            and runtime-compiled engines allowed (LEUKO_CUDNN_RTC=1: PyTorch keeps
#                        them; the log above counts those passed over);
#   legacy+ws16g, graph+ws16g   the workspace cap at 16 GiB instead of 1 (LEUKO_CUDNN_WORKSPACE_MIB:
#                        TF32 on float32 NCHW may need room for cuDNN's layout copies, about
#                        1.6 GB for VGG16's first block at batch 64);
#   graph+--graph        the step as a CUDA graph too.
# ResNet-50 bf16 legacy runs twice, in two processes: version 22's re-timed search should give
# the same speed both times (version 11's untimed picks differed by 20% between processes).
for run in googlenet:bf16:64:legacy googlenet:bf16:64:graph googlenet:bf16:64:graph+rtc \
    resnet50:bf16:64:legacy resnet50:bf16:64:graph resnet50:bf16:64:graph+rtc resnet50:bf16:64:legacy \
    vgg16:tf32:64:legacy vgg16:tf32:64:legacy+ws16g vgg16:tf32:64:graph vgg16:tf32:64:graph+ws16g \
    vgg16:bf16:64:legacy vgg16:bf16:64:graph vgg16:bf16:64:graph+rtc \
    resnet50:tf32:64:legacy resnet50:tf32:64:graph alexnet:bf16:64:legacy alexnet:bf16:64:graph \
    resnet50:bf16:256:legacy resnet50:bf16:256:graph googlenet:tf32:64:legacy googlenet:tf32:64:graph \
    googlenet:bf16:64:graph+--graph; do
  IFS=: read -r model precision batch mode <<<"$run"
  in_time 25 "$run" || continue
  echo "-- $model:$precision:$batch $mode"
  api=legacy rtc=0 ws=1024 flag=""
  [[ $mode == graph* ]] && api=graph
  [[ $mode == *rtc* ]] && rtc=1
  [[ $mode == *ws16g* ]] && ws=16384
  [[ $mode == *--graph* ]] && flag="--graph"
  limit=$(left)  # a run may take 90 s (runtime compilation at start-up): never past the deadline
  [ "$limit" -gt 90 ] && limit=90
  LEUKO_CUDNN_API=$api LEUKO_CUDNN_RTC=$rtc LEUKO_CUDNN_WORKSPACE_MIB=$ws timeout "$limit" "$leuko_bin" bench \
    --model "$model" --batch "$batch" --precision "$precision" --warmup 3 --steps 5 --windows 3 $flag 2>&1 |
    grep -E "images/s|memory|rror|^leuko:" || fail=1
done
exit $fail) 2>&1 | tee "$out/cudnn_api.log" || rc=1
echo "(step 1d: $(($(date +%s) - start)) s)"
fi

if want 1s; then
echo
echo "== 1s. compute-sanitizer over every GPU test file (issue 7) =="
# 2026-11-27 covered ops, pool, batchnorm, loss and optim with the kernels of cf2ebd5. Since then
# batch norm, pooling and the element-wise maps were rewritten and the graph API's convolutions
# are new. Memcheck over every GPU test file, 8 runs at a time (the sanitizer works mostly on the
# host, and this machine has 16 cores); racecheck over the files whose kernels use shared memory
# (batch norm's, the reductions', the losses', pooling's, the optimizer's). The whole-network
# files (bf16 conv, graph, determinism, eval) run 10-100x slower under it and are reported
# capped where they do not finish: capped is not passed. About 5 minutes.
LEUKO_BUILD_DIR="${LEUKO_BUILD_DIR:-$root/build-gpu}" LEUKO_GPU_SANITIZE_TOOLS=memcheck LEUKO_GPU_SANITIZE_BUDGET=240 \
  LEUKO_GPU_SANITIZE_JOBS=8 bash "$root/tools/gpu_sanitize.sh" all 2>&1 | tail -40 || rc=1
LEUKO_BUILD_DIR="${LEUKO_BUILD_DIR:-$root/build-gpu}" LEUKO_GPU_SANITIZE_TOOLS=racecheck LEUKO_GPU_SANITIZE_BUDGET=60 \
  LEUKO_GPU_SANITIZE_JOBS=8 bash "$root/tools/gpu_sanitize.sh" test_batchnorm_gpu test_bf16_batchnorm_gpu \
  test_channels_last_batchnorm_gpu test_ops_gpu test_loss_gpu test_pool_gpu test_optim_gpu 2>&1 | tail -14 || rc=1
echo "(step 1s: $(($(date +%s) - start)) s)"
fi

if want 2; then
echo
echo "== 2. reproduction: ${GPU_SESSION_MODELS:-resnet50,alexnet} =="
runs=/dev/shm/leuko-session
[ -d /dev/shm ] || runs=$out/session-runs
rm -rf "$runs"
repro=${GPU_SESSION_REPRO:-200}
[ "$(left)" -lt "$repro" ] && repro=$(left)
if [ "$repro" -lt 60 ]; then
  echo "-- skipped: the reproduction needs a minute, $(left) s are left (GPU_SESSION_DEADLINE $deadline)"
else
  OUT="$runs" bash "$root/tools/reproduce.sh" --models "${GPU_SESSION_MODELS:-resnet50,alexnet}" \
    --deadline "$repro" || rc=1
fi
tar czf "$out/runs.tgz" -C "$runs" --exclude='*.safetensors' . 2>/dev/null || rc=1
echo "(step 2: $(($(date +%s) - start)) s; run folders without checkpoints in $out/runs.tgz)"
fi
exit $rc
