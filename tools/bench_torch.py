#!/usr/bin/env python3
"""PyTorch's training throughput, measured exactly as `leuko bench` measures leuko's.

  tools/bench_torch.py --model resnet50 [--batch 64] [--precision fp32|tf32|bf16] [--steps 10]
                       [--windows 5] [--warmup 5] [--classes 4] [--input S]
                       [--device auto|cpu|cuda] [--max-seconds S] [--seed 0] [--profile N]
                       [--memory-format auto|nchw|channels_last] [--json]
  tools/bench_torch.py --cells resnet50:fp32:64,resnet50:bf16:256 [same options]
      Several cells in one process (CUDA and cuDNN start once), one JSON line per cell as it
      finishes; a cell that fails prints {"model", "precision", "batch", "error"} and the next
      one runs. tools/bench_compare.py drives this mode.

The step: zero_grad(set_to_none), forward in training mode (torchvision's model with
num_classes; GoogLeNet and Inception-v3 with their auxiliary heads, whose losses are weighted
0.3 and 0.4 as in leuko), cross-entropy, backward, SGD (lr 0.01, momentum 0.9), on one random
batch made once on the device. PyTorch eager, cudnn.benchmark on.
  fp32: TF32 off for matmuls and convolutions (strict float32, as leuko's fp32; allow_tf32, or
        fp32_precision = "ieee" from PyTorch 2.9)
  tf32: TF32 on for both
  bf16: torch.autocast(bfloat16) around forward and loss, model and input channels_last
        (TF32 on for what autocast leaves in float32)
--memory-format: auto (the default: channels_last for bf16, NCHW otherwise, as above), or
  nchw / channels_last for every precision: what the layout alone is worth on this card
  (leuko's tensors are NCHW; docs/PERFORMANCE.md version 7).
Warm-up steps (the first one also counts the multiply-adds with forward hooks), then timed
windows of `steps` steps: torch.cuda.Event on the GPU, the host clock on the CPU. The JSON keys
are leuko's (tools/leuko/bench.h), plus torch_version. Runs on the CPU too (for testing).
--profile N: after the windows, N steps under torch.profiler, op by op in leuko's names
(tools/torch_profile.py), as "profile" in the JSON (or "profile_error" beside the cell's numbers).
"""
import argparse
import contextlib
import gc
import json
import os
import statistics
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_export import MODELS  # noqa: E402  torchvision constructors, as leuko's nets

AUX = {"googlenet": [0.3, 0.3], "inception_v3": [0.4]}


def card_name(device):
    if device.type == "cuda":
        p = torch.cuda.get_device_properties(device)
        return f"{p.name} (compute {p.major}.{p.minor}, {p.total_memory / 2**30:.1f} GiB, {p.multi_processor_count} SMs)"
    name = "CPU"
    try:
        with open("/proc/cpuinfo") as f:
            name = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{name} ({torch.get_num_threads()} threads)"


def count_macs(model):
    """Forward hooks adding up the multiply-adds per image of every Conv2d and Linear call, as
    leuko counts them. Returns (counter list, hook handles)."""
    total = [0]

    def conv(m, inp, out):
        total[0] += out[0].numel() * (m.in_channels // m.groups) * m.kernel_size[0] * m.kernel_size[1]

    def linear(m, inp, out):
        total[0] += out[0].numel() * m.in_features

    hooks = []
    for m in model.modules():
        if isinstance(m, torch.nn.Conv2d):
            hooks.append(m.register_forward_hook(conv))
        elif isinstance(m, torch.nn.Linear):
            hooks.append(m.register_forward_hook(linear))
    return total, hooks


def window_timer(device):
    """Returns start(), stop_ms(): CUDA events on the current stream (the GPU's time for the
    queued steps), or the host clock on the CPU."""
    if device.type == "cuda":
        begin, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)

        def stop_ms():
            end.record()
            end.synchronize()
            return begin.elapsed_time(end)
        return begin.record, stop_ms
    t0 = [0.0]

    def start():
        t0[0] = time.perf_counter()
    return start, lambda: (time.perf_counter() - t0[0]) * 1e3


def set_tf32(on):
    """TF32 for matmuls and convolutions, on or off. PyTorch 2.9 replaced the allow_tf32 flags
    by fp32_precision ("tf32" or "ieee") and deprecated the old ones: use the new ones where
    they exist."""
    matmul, cudnn = torch.backends.cuda.matmul, torch.backends.cudnn
    try:
        new_api = isinstance(matmul.fp32_precision, str) and isinstance(cudnn.conv.fp32_precision, str)
    except (AttributeError, AssertionError):  # older versions raise either for an unknown flag
        new_api = False
    if new_api:
        matmul.fp32_precision = cudnn.conv.fp32_precision = "tf32" if on else "ieee"
    else:
        matmul.allow_tf32 = cudnn.allow_tf32 = on


def run_bench(a):
    began = time.perf_counter()
    if a.model not in MODELS:
        raise ValueError(f"--model {a.model!r} is not one of {', '.join(MODELS)}")
    if a.precision not in ("fp32", "tf32", "bf16"):
        raise ValueError(f"--precision {a.precision!r} is not one of fp32, tf32, bf16")
    for k in ("batch", "steps", "windows", "warmup"):
        if getattr(a, k) < 1:
            raise ValueError(f"--{k} {getattr(a, k)} must be at least 1")
    if a.profile < 0:
        raise ValueError(f"--profile {a.profile} must be 0 (no profile) or a number of steps")
    if a.device == "auto":
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        device = torch.device(a.device)
    cuda = device.type == "cuda"
    torch.backends.cudnn.benchmark = True
    set_tf32(a.precision != "fp32")
    bf16 = a.precision == "bf16"
    side = a.input or (299 if a.model == "inception_v3" else 224)

    torch.manual_seed(a.seed)
    model = MODELS[a.model](a.classes).to(device).train()
    g = torch.Generator().manual_seed(a.seed + 1)
    x = torch.randn(a.batch, 3, side, side, generator=g).to(device)  # (N, 3, S, S)
    y = torch.randint(0, a.classes, (a.batch,), generator=g).to(device)  # (N,) int64
    if a.memory_format not in ("auto", "nchw", "channels_last"):
        raise ValueError(f"--memory-format {a.memory_format!r} is not one of auto, nchw, channels_last")
    channels_last = a.memory_format == "channels_last" or (a.memory_format == "auto" and bf16)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    aux = AUX.get(a.model, [])

    def autocast():
        return torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()

    last = {}

    def step(marks=False):
        # marks: the ranges of --profile (tools/torch_profile.py); the timed steps have none.
        def mark(name):
            return torch.profiler.record_function(name) if marks else contextlib.nullcontext()
        with mark("zero_grad"):
            opt.zero_grad(set_to_none=True)
        with autocast():
            out = model(x)
            outs = list(out) if isinstance(out, tuple) else [out]  # main logits, then auxiliary ones
            loss = F.cross_entropy(outs[0], y)
            for w, o in zip(aux, outs[1:]):
                loss = loss + w * F.cross_entropy(o, y)
        loss.backward()
        with mark("optimizer"):
            opt.step()
        last["loss"] = loss.detach()

    macs, hooks = count_macs(model)
    step()  # the first warm-up step counts the multiply-adds
    for h in hooks:
        h.remove()
    for _ in range(a.warmup - 1):
        step()
    if cuda:
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)

    start, stop_ms = window_timer(device)
    window_ms = []
    for w in range(a.windows):
        if w > 0 and a.max_seconds > 0 and time.perf_counter() - began > a.max_seconds:
            break
        start()
        for _ in range(a.steps):
            step()
        window_ms.append(stop_ms())
    ips = [a.batch * a.steps * 1e3 / ms for ms in window_ms]
    per_step = [ms / a.steps for ms in window_ms]
    gflop = 6.0 * macs[0] / 1e9  # per image (the hooks count one image); 2 FLOPs per multiply-add, x3 for the backward
    r = {
        "framework": "torch", "torch_version": torch.__version__,
        "model": a.model, "batch": a.batch, "input": side, "classes": a.classes, "precision": a.precision,
        "memory_format": "channels_last" if channels_last else "nchw",
        "device": device.type, "card": card_name(device), "warmup": a.warmup, "steps": a.steps,
        "windows": len(window_ms),
        "images_per_s": statistics.median(ips), "images_per_s_min": min(ips), "images_per_s_max": max(ips),
        "step_ms": statistics.median(per_step), "step_ms_min": min(per_step), "step_ms_max": max(per_step),
        "window_ms": window_ms,
        "peak_bytes": torch.cuda.max_memory_allocated(device) if cuda else None,
        "peak_reserved_bytes": torch.cuda.max_memory_reserved(device) if cuda else None,
        "device_used_bytes": None,
        "train_gflop_per_image": gflop,
        "tflops": gflop * statistics.median(ips) / 1e3,
        "loss": last["loss"].item(),
    }
    if cuda:
        free, total = torch.cuda.mem_get_info(device)
        r["device_used_bytes"] = total - free
    if a.profile > 0:  # after the timed windows, in steps of their own
        from torch_profile import profile_steps
        try:
            r["profile"] = profile_steps(step, a.profile, cuda)
            r["profile"]["timed_step_ms"] = r["step_ms"]
        except Exception as e:  # a profiler failure must not lose the cell's measured numbers
            r["profile_error"] = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"[:300]
    r["seconds"] = time.perf_counter() - began
    return r


def print_text(r):
    gib = 2.0**30
    print(f"torch bench: {r['model']} training steps, batch {r['batch']} at {r['input']}x{r['input']}, "
          f"{r['classes']} classes, {r['precision']}, on {r['device']}: {r['card']} (torch {r['torch_version']})")
    print(f"  {r['warmup']} warm-up steps, {r['windows']} timed windows of {r['steps']} steps")
    print(f"  images/s   {r['images_per_s']:.1f} median (slowest window {r['images_per_s_min']:.1f}, "
          f"fastest {r['images_per_s_max']:.1f})")
    print(f"  step       {r['step_ms']:.2f} ms median (fastest {r['step_ms_min']:.2f}, slowest {r['step_ms_max']:.2f})")
    if r["peak_bytes"] is not None:
        print(f"  memory     peak {r['peak_bytes'] / gib:.2f} GiB allocated, {r['peak_reserved_bytes'] / gib:.2f} GiB "
              f"reserved; {r['device_used_bytes'] / gib:.2f} GiB used on the device")
    print(f"  compute    {r['train_gflop_per_image']:.2f} GFLOP per training image -> {r['tflops']:.2f} TFLOP/s")
    print(f"  last loss  {r['loss']:.4f}")
    if "profile" in r:
        p = r["profile"]
        print(f"\nprofile: {p['steps']} steps, {p['step_ms']:.2f} ms per step of {r['device']} time "
              f"({p['timed_step_ms']:.2f} ms timed), host {p['host_ms']:.2f} ms")
        print(f"  {'op':22s} {'phase':8s} {'calls':>8s} {'ms/step':>10s} {'share':>6s} {'host ms':>10s}")
        for row in p["rows"]:
            share = 100 * row["device_ms_per_step"] / p["step_ms"] if p["step_ms"] > 0 else 0
            print(f"  {row['name'][:22]:22s} {row['phase']:8s} {row['calls_per_step']:8.1f} "
                  f"{row['device_ms_per_step']:10.3f} {share:5.1f}% {row['host_ms_per_step']:10.3f}")


def parse_cells(text):
    """'resnet50:bf16:256,alexnet:fp32:64' -> [(model, precision, batch), ...]"""
    cells = []
    for item in filter(None, text.split(",")):
        parts = item.split(":")
        if len(parts) != 3 or not parts[2].isdigit():
            raise SystemExit(f"bench_torch: --cells: {item!r} is not model:precision:batch")
        cells.append((parts[0], parts[1], int(parts[2])))
    return cells


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--precision", default="fp32")
    ap.add_argument("--steps", type=int, default=10, help="steps per timed window")
    ap.add_argument("--windows", type=int, default=5, help="timed windows (the median is reported)")
    ap.add_argument("--warmup", type=int, default=5, help="untimed steps first (at least 1)")
    ap.add_argument("--classes", type=int, default=4)
    ap.add_argument("--input", type=int, default=0, help="image side (default: the network's own)")
    ap.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    ap.add_argument("--max-seconds", type=float, default=0, help="start no new window after this (0: no limit)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--memory-format", default="auto", help="auto (channels_last for bf16), nchw or channels_last")
    ap.add_argument("--profile", type=int, default=0,
                    help="after the timed windows, profile this many steps op by op (tools/torch_profile.py)")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--cells", help="model:precision:batch,...: several cells, one JSON line each")
    a = ap.parse_args()
    if a.device == "cuda" and not torch.cuda.is_available():
        sys.exit("bench_torch: --device cuda: no CUDA GPU is available to PyTorch")

    if not a.cells:
        if not a.model:
            ap.error("--model or --cells is required")
        r = run_bench(a)
        if a.json:
            print(json.dumps(r))
        else:
            print_text(r)
        return
    for model, precision, batch in parse_cells(a.cells):
        a.model, a.precision, a.batch = model, precision, batch
        try:
            r = run_bench(a)
        except Exception as e:  # one failed cell (out of memory, ...) must not stop the others
            r = {"model": model, "precision": precision, "batch": batch,
                 "error": f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"[:300]}
        print(json.dumps(r), flush=True)
        gc.collect()  # free this cell's model and cached blocks before the next one
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
