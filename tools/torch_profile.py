"""PyTorch's training step op by op, in the names of leuko's profile (tensor/profile.h), so that
`bench_torch.py --profile N` and `leuko bench --profile N` can be put side by side
(tools/bench_compare.py --profile N).

torch.profiler records every operator and, on the GPU, every kernel with its launching operator.
Each operator's self time (its own kernels on the GPU, its own host time on the CPU) is charged
to one (name, phase):
  - phase backward when it ran inside the autograd engine ("autograd::engine::evaluate_function:
    ConvolutionBackward0"): the node's op name (ConvolutionBackward0 -> conv2d), or "accumulate"
    for what the engine did outside the node itself (summing the gradients of a tensor used
    twice), as leuko's engine marks it;
  - "optimizer" and "zero_grad" (phase other) inside the step's record_function ranges of those
    names (or PyTorch's own Optimizer.step / Optimizer.zero_grad ranges);
  - phase forward otherwise, named by the outermost operator (aten::conv2d -> conv2d).
One difference in what is measured: on the GPU, PyTorch's device time is its kernels' run time
only; leuko's (CUDA events between marks) also holds the time the GPU waited for the host. The
difference between PyTorch's timed step and the sum of its kernels is its GPU's idle time.
"""
import os
import re

import torch
from torch.autograd import DeviceType
from torch.profiler import ProfilerActivity, profile

# Outermost forward operators, first match wins ("adaptive_avg_pool" before "avg_pool").
FORWARD = [
    (r"conv", "conv2d"), (r"batch_norm", "batch_norm"), (r"relu|threshold", "relu"),
    (r"max_pool", "max_pool2d"), (r"adaptive_avg_pool", "adaptive_avg_pool2d"), (r"avg_pool", "avg_pool2d"),
    (r"linear|addmm|matmul|::mm$", "linear"), (r"dropout", "dropout"), (r"::cat$", "cat"),
    (r"cross_entropy|log_softmax|nll_loss", "cross_entropy"), (r"flatten|view|reshape", "reshape"),
    (r"local_response_norm", "local_response_norm"), (r"::add", "add"), (r"::mul", "mul"),
    (r"::to$|::_to_copy", "to_dtype"),  # autocast's conversions (leuko: Tensor::to, "to_dtype")
]
# Autograd nodes of the backward.
BACKWARD = [
    (r"Convolution", "conv2d"), (r"BatchNorm", "batch_norm"), (r"Relu|Threshold", "relu"),
    (r"MaxPool", "max_pool2d"), (r"AdaptiveAvgPool|Mean", "adaptive_avg_pool2d"), (r"AvgPool", "avg_pool2d"),
    (r"Addmm|^Mm|^TBackward|Linear", "linear"), (r"Dropout", "dropout"), (r"^Cat", "cat"),
    (r"NllLoss|LogSoftmax", "cross_entropy"), (r"View|Reshape|Flatten|Unsafe", "reshape"),
    (r"AccumulateGrad", "accumulate"), (r"^AddBackward", "add"), (r"^MulBackward", "mul"),
    (r"ToCopy", "to_dtype"),
]
ENGINE = "autograd::engine::evaluate_function: "


def op_name(table, name):
    for pattern, ours in table:
        if re.search(pattern, name):
            return ours
    return name.replace("aten::", "")


def self_ms(event, cuda):
    """The event's own time in milliseconds: its kernels on the GPU, its host time on the CPU."""
    if not cuda:
        return event.self_cpu_time_total / 1e3
    us = getattr(event, "self_device_time_total", None)  # PyTorch 2.4 and later
    if us is None:
        us = event.self_cuda_time_total
    return us / 1e3


def key_of(event):
    """((name, phase) that the event's self time goes to, (name, phase) of the call it stands for
    or None): an operator's own row, except that an engine event's own time is "accumulate"
    while it counts as one call of its node's op."""
    chain = []  # the event, then its parents up to the root
    e = event
    while e is not None:
        chain.append(e)
        e = e.cpu_parent
    names = [c.name for c in chain]
    if any(n == "optimizer" or n.startswith("Optimizer.step") for n in names):
        key = ("optimizer", "other")
        return key, key if event.name == "optimizer" else None
    if any(n == "zero_grad" or n.startswith("Optimizer.zero_grad") for n in names):
        key = ("zero_grad", "other")
        return key, key if event.name == "zero_grad" else None
    for i, c in enumerate(chain):
        if c.name.startswith(ENGINE):
            node = c.name[len(ENGINE):].strip()
            op = (op_name(BACKWARD, node), "backward")
            inside_node = node in names[:i]  # the node's own range, below the engine's
            return (op if inside_node else ("accumulate", "backward")), op if i == 0 else None
    top = chain[-1]
    if "AccumulateGrad" in top.name or top.name in ("detach", "aten::detach"):
        # Leaf gradients handed over outside an engine range (no kernel: set_to_none).
        key = ("accumulate", "backward")
        return key, None
    key = (op_name(FORWARD, top.name), "forward")
    return key, key if event is top else None


def profile_steps(step, steps, cuda):
    """Runs `step(marks=True)` once unprofiled (the profiler's own start-up), then `steps` times
    under torch.profiler; returns the rows as leuko's bench JSON has them (tools/leuko/bench.h)."""
    if cuda:
        # Kineto leaves CUPTI attached after a profile unless TEARDOWN_CUPTI=1 (read when the
        # profile stops): bench_torch.py --cells would then time every later cell's windows with
        # CUPTI's callbacks still on every launch (PyTorch issue 144455: 10-20% slower).
        os.environ.setdefault("TEARDOWN_CUPTI", "1")
    step(marks=True)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    with profile(activities=activities) as prof:
        for _ in range(steps):
            step(marks=True)
        if cuda:
            torch.cuda.synchronize()
    rows = {}
    for e in prof.events():
        if e.device_type != DeviceType.CPU:
            continue  # kernels are counted through the operator that launched them
        key, call = key_of(e)
        for k in (key, call):
            if k is not None:
                rows.setdefault(k, {"name": k[0], "phase": k[1], "calls": 0, "device_ms": 0.0, "host_ms": 0.0})
        if call is not None:
            rows[call]["calls"] += 1
        rows[key]["device_ms"] += self_ms(e, cuda)
        rows[key]["host_ms"] += e.self_cpu_time_total / 1e3
    if cuda and not any(r["device_ms"] > 0 for r in rows.values()):
        # No kernel reached an operator (CUPTI missing or failing: torch.profiler only warns).
        raise RuntimeError("torch.profiler recorded no GPU kernel time (is CUPTI available?)")
    out = [{"name": r["name"], "phase": r["phase"], "calls_per_step": r["calls"] / steps,
            "device_ms_per_step": r["device_ms"] / steps, "host_ms_per_step": r["host_ms"] / steps}
           for r in sorted(rows.values(), key=lambda r: -r["device_ms"])]
    return {"steps": steps, "step_ms": sum(r["device_ms_per_step"] for r in out),
            "host_ms": sum(r["host_ms_per_step"] for r in out), "rows": out}
