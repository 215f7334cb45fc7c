#!/usr/bin/env python3
"""leuko against torchvision, network by network: the same weights and the same batch must give
the same logits, loss and every parameter gradient in one training step.

  tools/torch_equivalence.py [--leuko build/leuko] [--device cuda|cpu] [--models alexnet,...]
                             [--batch 4] [--size 224] [--dtype float32|float64]

For each network: torchvision builds and initialises it (seeded), every dropout is set to 0,
its weights go to a safetensors file (tools/torch_export.py's format), PyTorch runs one
training step (cross-entropy, auxiliary heads weighted 0.3 / 0.4) and leuko runs the same step
(`leuko equivalence`). TF32 is off on both sides. Prints the largest relative error (norm-wise,
||leuko - torch|| / ||torch||) of the logits, the loss and the worst parameter gradient; and, in
float32, both sides against PyTorch in float64 on the same device, so that leuko's error can be
read against PyTorch's own float32 error (two float32 implementations that sum in different
orders differ by about as much as each differs from float64).
"""
import argparse
import copy
import os
import subprocess
import sys
import tempfile

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_export import build  # noqa: E402

AUX = {"googlenet": [0.3, 0.3], "inception_v3": [0.4]}


def rel(a, b):
    a, b = a.double().cpu(), b.double().cpu()
    return ((a - b).norm() / b.norm().clamp_min(1e-30)).item()


def step(model, name, x, t, device, dtype):
    """One training step's numbers in PyTorch: (logits, loss, {parameter: gradient})."""
    model = model.to(device, dtype).train()
    model.zero_grad(set_to_none=True)
    out = model(x.to(device, dtype))
    outs = [out.logits, *([out.aux_logits] if name == "inception_v3" else [out.aux_logits1, out.aux_logits2])] \
        if name in AUX else [out]
    tt = t.to(device)
    loss = F.cross_entropy(outs[0], tt)
    for w, o in zip(AUX.get(name, []), outs[1:]):
        loss = loss + w * F.cross_entropy(o, tt)
    loss.backward()
    return outs[0].detach(), loss.detach().reshape(1), {n: p.grad.detach() for n, p in model.named_parameters()}


def compare(a, b):
    """Largest relative errors of a against b: (logits, loss, worst gradient, its parameter)."""
    worst, where = 0.0, ""
    for pname, gb in b[2].items():
        e = rel(a[2][pname], gb)
        if e > worst:
            worst, where = e, pname
    return rel(a[0], b[0]), rel(a[1], b[1]), worst, where


def run(name, args, tmp):
    torch.manual_seed(0)
    model = build(name, args.classes)
    for m in model.modules():
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.0
    weights = os.path.join(tmp, name + ".safetensors")
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, weights)
    size = args.size or (299 if name == "inception_v3" else 224)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(args.batch, 3, size, size, generator=g)
    t = torch.randint(0, args.classes, (args.batch,), generator=g)
    batch = os.path.join(tmp, "batch.safetensors")
    save_file({"input": x, "targets": t}, batch)

    dt = torch.float64 if args.dtype == "float64" else torch.float32
    # The float64 reference first (the model is moved, so it starts from the saved weights, and
    # batch norm's running statistics are not compared), then PyTorch in the dtype under test.
    reference = None
    if args.reference and dt != torch.float64:
        reference = step(copy.deepcopy(model), name, x, t, args.device, torch.float64)
    theirs = step(model, name, x, t, args.device, dt)

    result = os.path.join(tmp, name + ".leuko.safetensors")
    subprocess.run([args.leuko, "equivalence", "--model", name, "--classes", str(args.classes), "--weights", weights,
                    "--batch", batch, "--out", result, "--device", args.device] + (["--float64"] if dt == torch.float64 else []),
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    mine = load_file(result)
    mine = (mine["logits"], mine["loss"], {n: mine["grad." + n] for n in theirs[2]})
    rows = [("leuko vs torch", compare(mine, theirs))]
    if reference is not None:
        rows += [("leuko vs f64", compare(mine, reference)), ("torch vs f64", compare(theirs, reference))]
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--leuko", default="build/leuko")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--models", default="alexnet,vgg16,resnet50,googlenet,inception_v3")
    ap.add_argument("--classes", type=int, default=2)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--size", type=int, default=0)
    ap.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    ap.add_argument("--no-reference", dest="reference", action="store_false",
                    help="skip PyTorch in float64 (the reference both float32 results are also held to)")
    args = ap.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    print(f"device {args.device}, batch {args.batch}, {args.dtype} (TF32 off)")
    print(f"{'network':<14} {'compared':<15} {'logits':>10} {'loss':>10} {'worst grad':>11}  (parameter)")
    failed = False
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models.split(","):
            try:
                rows = run(name, args, tmp)
            except Exception as e:  # one network's failure is reported and the others go on
                failed = True
                why = (getattr(e, "stderr", None) or str(e) or type(e).__name__).strip().splitlines()
                print(f"{name:<14} FAILED: {why[-1] if why else type(e).__name__}", flush=True)
                continue
            for what, (lo, ls, gw, where) in rows:
                print(f"{name:<14} {what:<15} {lo:10.2e} {ls:10.2e} {gw:11.2e}  ({where})", flush=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
