#!/usr/bin/env python3
"""Bytes that PyTorch's autograd saves for the backward of one training forward (CPU, no GPU needed).

The activation memory PyTorch must hold at the end of a forward, whatever the device: every
distinct storage that a backward function saves (torch.autograd.graph.saved_tensors_hooks),
the parameters excluded. docs/PERFORMANCE.md compares it with leuko's CPU peak memory
(`leuko bench --device cpu ... --json`, peak_bytes less weights, gradients and optimizer state).

    /usr/bin/python3 tools/torch_saved_bytes.py --model resnet50 --batch 4 --input 160
"""
import argparse

import torch
import torchvision


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default="resnet50", help="a torchvision model name")
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--input", type=int, default=160)
    p.add_argument("--classes", type=int, default=2)
    a = p.parse_args()
    kwargs = {"num_classes": a.classes}
    if a.model in ("googlenet", "inception_v3"):
        kwargs.update(aux_logits=True, init_weights=False)
    model = getattr(torchvision.models, a.model)(**kwargs).train()
    params = {q.storage().data_ptr() for q in model.parameters()}
    saved = {}

    def pack(t):
        st = t.storage()
        if st.data_ptr() not in params:
            saved[st.data_ptr()] = st.size() * t.element_size()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(torch.randn(a.batch, 3, a.input, a.input))
    print(f"{a.model}, batch {a.batch}, {a.input} x {a.input}: {sum(saved.values()) / 2**20:.1f} MiB saved for the "
          f"backward in {len(saved)} storages (PyTorch {torch.__version__})")


if __name__ == "__main__":
    main()
