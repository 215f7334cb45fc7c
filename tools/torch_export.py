#!/usr/bin/env python3
"""Move network weights between torchvision and leuko (safetensors with torchvision's keys).

  torch_export.py export --model resnet50 --classes 2 --out resnet50.safetensors
        [--weights resnet50-imagenet.pth] [--seed 0]
      Writes a torchvision model's state_dict. With --weights (a torchvision state_dict saved
      by torch.save, e.g. ImageNet-pretrained weights), those weights are loaded first; tensors
      whose shape differs (the final classifier when --classes differs) keep their fresh
      initialisation and are listed, so `leuko train --init resnet50.safetensors` fine-tunes
      them as the study did.
  torch_export.py import --model resnet50 --classes 2 --file run/best.safetensors
      Loads a leuko checkpoint into the torchvision model (strict: every key and shape) and
      prints its parameter count: the loader for leuko's files on the PyTorch side is
      load_leuko() below.

Needs torch, torchvision and safetensors (pip install safetensors).
"""
import argparse
import sys

import torch
import torchvision

MODELS = {
    "alexnet": lambda c: torchvision.models.alexnet(num_classes=c),
    "vgg16": lambda c: torchvision.models.vgg16(num_classes=c),
    "vgg16_bn": lambda c: torchvision.models.vgg16_bn(num_classes=c),
    "resnet18": lambda c: torchvision.models.resnet18(num_classes=c),
    "resnet50": lambda c: torchvision.models.resnet50(num_classes=c),
    "googlenet": lambda c: torchvision.models.googlenet(num_classes=c, aux_logits=True, init_weights=True),
    "inception_v3": lambda c: torchvision.models.inception_v3(num_classes=c, aux_logits=True, init_weights=True),
}


def safetensors_io():
    """safetensors' load_file and save_file, imported only where a file is read or written, so
    that bench_torch.py (which needs MODELS alone) runs without the package."""
    try:
        from safetensors.torch import load_file, save_file
    except ImportError:
        sys.exit("torch_export: reading and writing weights needs the safetensors package (pip install safetensors)")
    return load_file, save_file


def build(name, classes):
    if name not in MODELS:
        sys.exit(f"torch_export: --model {name!r} is not one of {', '.join(MODELS)}")
    return MODELS[name](classes)


def load_leuko(model, path):
    """Loads a leuko safetensors file: its model weights (optimizer state, "optim.*", is ignored)."""
    load_file, _ = safetensors_io()
    state = load_file(path)
    mine = model.state_dict()
    weights = {k: v for k, v in state.items() if not k.startswith("optim.")}
    missing = [k for k in mine if k not in weights]
    extra = [k for k in weights if k not in mine]
    if missing or extra:
        sys.exit(f"{path}: does not fit {type(model).__name__}: missing {missing[:3]}, unexpected {extra[:3]}")
    for k, v in weights.items():
        if v.shape != mine[k].shape:
            sys.exit(f"{path}: key {k!r} has shape {tuple(v.shape)} where the model has {tuple(mine[k].shape)}")
    model.load_state_dict({k: v.to(mine[k].dtype) for k, v in weights.items()})
    return model


def export(args):
    _, save_file = safetensors_io()
    torch.manual_seed(args.seed)
    model = build(args.model, args.classes)
    if args.weights:
        given = torch.load(args.weights, map_location="cpu")
        if isinstance(given, dict) and "state_dict" in given:
            given = given["state_dict"]
        mine = model.state_dict()
        kept, skipped = {}, []
        for k, v in given.items():
            if k in mine and v.shape == mine[k].shape:
                kept[k] = v
            else:
                skipped.append(k)
        model.load_state_dict(kept, strict=False)
        fresh = [k for k in mine if k not in kept]
        print(f"loaded {len(kept)} tensors from {args.weights}; freshly initialised: {fresh or 'none'}; "
              f"ignored: {skipped or 'none'}")
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    save_file(state, args.out, metadata={"model": args.model, "classes": str(args.classes), "source": "torchvision"})
    print(f"wrote {args.out}: {len(state)} tensors, {sum(p.numel() for p in model.parameters()):,} parameters")


def import_(args):
    model = load_leuko(build(args.model, args.classes), args.file)
    print(f"loaded {args.file} into torchvision {args.model}: {sum(p.numel() for p in model.parameters()):,} parameters")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("export")
    e.add_argument("--model", required=True)
    e.add_argument("--classes", type=int, default=2)
    e.add_argument("--weights")
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--out", required=True)
    i = sub.add_parser("import")
    i.add_argument("--model", required=True)
    i.add_argument("--classes", type=int, default=2)
    i.add_argument("--file", required=True)
    args = ap.parse_args()
    export(args) if args.cmd == "export" else import_(args)


if __name__ == "__main__":
    main()
