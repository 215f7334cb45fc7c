#!/usr/bin/env python3
"""leuko against torchvision, network by network: the same weights and the same batch must give
the same logits, loss and every parameter gradient in one training step.

  tools/torch_equivalence.py [--leuko build/leuko] [--device cuda|cpu] [--models alexnet,...]
                             [--batch 4] [--size 224] [--dtype float32|float64]

For each network: torchvision builds and initialises it (seeded), every dropout is set to 0,
its weights go to a safetensors file (tools/torch_export.py's format), PyTorch runs one
training step (cross-entropy, auxiliary heads weighted 0.3 / 0.4) and leuko runs the same step
(`leuko equivalence`). TF32 is off on both sides. Prints the largest relative error (norm-wise,
||leuko - torch|| / ||torch||) of the logits, the loss and the worst parameter gradient.
"""
import argparse
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
    model = model.to(args.device, dt).train()
    out = model(x.to(args.device, dt))
    outs = [out.logits, *([out.aux_logits] if name == "inception_v3" else [out.aux1, out.aux2])] \
        if name in AUX else [out]
    tt = t.to(args.device)
    loss = F.cross_entropy(outs[0], tt)
    for w, o in zip(AUX.get(name, []), outs[1:]):
        loss = loss + w * F.cross_entropy(o, tt)
    loss.backward()

    result = os.path.join(tmp, name + ".leuko.safetensors")
    subprocess.run([args.leuko, "equivalence", "--model", name, "--classes", str(args.classes), "--weights", weights,
                    "--batch", batch, "--out", result, "--device", args.device] + (["--float64"] if dt == torch.float64 else []),
                   check=True, stdout=subprocess.DEVNULL)
    mine = load_file(result)
    worst, where = 0.0, ""
    for pname, p in model.named_parameters():
        e = rel(mine["grad." + pname], p.grad)
        if e > worst:
            worst, where = e, pname
    return rel(mine["logits"], outs[0].detach()), rel(mine["loss"], loss.detach().reshape(1)), worst, where


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--leuko", default="build/leuko")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--models", default="alexnet,vgg16,resnet50,googlenet,inception_v3")
    ap.add_argument("--classes", type=int, default=2)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--size", type=int, default=0)
    ap.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    args = ap.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    print(f"device {args.device}, batch {args.batch}, {args.dtype} (TF32 off)")
    print(f"{'network':<14} {'logits':>10} {'loss':>10} {'worst grad':>11}  (parameter)")
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models.split(","):
            lo, ls, gw, where = run(name, args, tmp)
            print(f"{name:<14} {lo:10.2e} {ls:10.2e} {gw:11.2e}  ({where})", flush=True)


if __name__ == "__main__":
    main()
