#!/usr/bin/env python3
"""Writes the fuzzers' seed corpora under tests/fuzz/corpus/<target>/ (committed; small).

    /usr/bin/python3 tests/fuzz/make_corpus.py

Seeds are small valid files of each format and a few near-valid ones (cut short, a wrong
length, a wrong field), from which libFuzzer's mutations reach the error paths quickly:
  safetensors/  copies of small PyTorch fixtures, a leuko-style checkpoint (run configuration in
                the metadata), an empty tensor, a 0-d tensor, and broken headers
  image/        8x6 PNG (RGB, gray, RGBA, palette, 16-bit), JPEG (baseline, gray,
                progressive, 4:2:0), BMP (24-bit, 32-bit, 8-bit palette, 1-bit, top-down) and
                truncated ones
  split/        split.json, config.json and log.csv as leuko writes them, and broken variants
"""
import io
import json
import os
import shutil
import struct

import numpy as np
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "corpus")
FIXTURES = os.path.join(HERE, "..", "fixtures")


def write(target, name, data):
    os.makedirs(os.path.join(CORPUS, target), exist_ok=True)
    with open(os.path.join(CORPUS, target, name), "wb") as f:
        f.write(data)


def safetensors_bytes(tensors, metadata=None):
    """The format by hand (8-byte length, JSON header padded to 8, data), so broken variants
    can be made from the same pieces. tensors: name -> (dtype, shape, bytes)."""
    header, data = {}, b""
    if metadata:
        header["__metadata__"] = metadata
    for name, (dtype, shape, raw) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + data


def safetensors_seeds():
    for name in ["safetensors_meta", "safetensors_bf16", "safetensors_torch", "optim_schedules"]:
        shutil.copyfile(os.path.join(FIXTURES, name + ".safetensors"), os.path.join(CORPUS, "safetensors", name))
    config = {"model": "alexnet", "classes": 2, "input": 64, "epochs": 3, "batch": 4, "lr": 0.001,
              "seed": 42, "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225], "task": "binary"}
    w = np.arange(6, dtype="<f4").tobytes()
    write("safetensors", "checkpoint", safetensors_bytes(
        {"fc.weight": ("F32", [2, 3], w), "fc.bias": ("F32", [2], w[:8]),
         "optim.step": ("I64", [], struct.pack("<q", 7)), "half": ("BF16", [2], b"\x80\x3f\x00\xc0")},
        {"format": "pt", "leuko.config": json.dumps(config), "leuko.epoch": "3"}))
    write("safetensors", "empty_tensor", safetensors_bytes({"e": ("F64", [0, 3], b""), "s": ("F64", [], b"\0" * 8)}))
    whole = safetensors_bytes({"x": ("F32", [2, 2], w[:16])})
    write("safetensors", "truncated", whole[:-3])
    write("safetensors", "bad_length", b"\xff" * 8 + whole[8:])
    write("safetensors", "bad_offsets", safetensors_bytes({"x": ("F32", [3], w[:8])}))
    write("safetensors", "bad_dtype", safetensors_bytes({"x": ("U8", [4], b"abcd")}))


def image_seeds():
    rng = np.random.default_rng(7)
    rgb = Image.fromarray(rng.integers(0, 256, (6, 8, 3), dtype=np.uint8))

    def save(name, img, fmt, **kw):
        buf = io.BytesIO()
        img.save(buf, fmt, **kw)
        write("image", name, buf.getvalue())
        return buf.getvalue()

    png = save("rgb.png", rgb, "PNG")
    save("gray.png", rgb.convert("L"), "PNG")
    save("rgba.png", rgb.convert("RGBA"), "PNG")
    save("palette.png", rgb.convert("P"), "PNG")
    save("gray16.png", Image.fromarray((np.arange(48, dtype=np.uint16).reshape(6, 8) * 1000)), "PNG")
    jpg = save("rgb.jpg", rgb, "JPEG", quality=90)
    save("gray.jpg", rgb.convert("L"), "JPEG", quality=80)
    save("progressive.jpg", rgb, "JPEG", quality=75, progressive=True)
    save("subsampled.jpg", rgb.resize((16, 12)), "JPEG", quality=60, subsampling=2)
    bmp = save("rgb.bmp", rgb, "BMP")
    save("rgba.bmp", rgb.convert("RGBA"), "BMP")
    save("palette.bmp", rgb.convert("P"), "BMP")
    save("mono.bmp", rgb.convert("1"), "BMP")
    # A top-down BMP: negative height.
    top_down = bytearray(bmp)
    struct.pack_into("<i", top_down, 22, -6)
    write("image", "top_down.bmp", bytes(top_down))
    write("image", "truncated.png", png[: len(png) // 2])
    write("image", "truncated.jpg", jpg[: len(jpg) // 2])
    write("image", "truncated.bmp", bmp[: len(bmp) - 20])


def split_seeds():
    split = {"format": "leuko-split-1", "seed": 42, "task": "binary", "class_names": ["benign", "malignant"],
             "folders": ["Benign", "Early"], "train": ["Benign/a.jpg", "Early/b.jpg", "Early/c.jpg"],
             "val": ["Benign/d.jpg"], "test": ["Early/e.jpg"]}
    write("split", "split.json", (json.dumps(split, indent=1) + "\n").encode())
    sub = dict(split, task="subtype", class_names=["Benign", "Early"])
    write("split", "split_subtype.json", json.dumps(sub).encode())
    write("split", "split_bad_path.json", json.dumps(dict(split, val=["../etc/passwd"])).encode())
    write("split", "split_twice.json", json.dumps(dict(split, test=["Benign/a.jpg"])).encode())
    config = {"augment": "flips", "batch": 32, "benign": "Benign", "best_metric": "f1", "class_names": ["benign", "malignant"],
              "class_weights": False, "classes": 2, "crop_scale_min": 0.5, "data": "/data/leukemia", "device": "auto",
              "epochs": 30, "input": 224, "label_smoothing": 0.0, "lr": 0.001, "mean": [0.485, 0.456, 0.406],
              "model": "resnet18", "momentum": 0.9, "normalize": "imagenet", "optimizer": "adamw", "precision": "fp32",
              "schedule": "cosine", "seed": 42, "std": [0.229, 0.224, 0.225], "task": "binary", "warmup_epochs": 0,
              "weight_decay": 0.0001, "workers": 0}
    write("split", "config.json", (json.dumps(config, indent=2) + "\n").encode())
    write("split", "config_wrong_type.json", json.dumps(dict(config, epochs="many")).encode())
    header = "epoch,train_loss,train_acc,val_loss,val_acc,val_precision,val_recall,val_f1,lr,seconds\n"
    rows = "1,0.69314718,0.5,0.6,0.55,0.5,0.6,0.54545455,0.001,12.5\n2,0.5,nan,0.45,0.75,0.8,0.7,0.74666667,0.0009,12.25\n"
    write("split", "log.csv", (header + rows).encode())
    write("split", "log_crlf.csv", (header + rows).replace("\n", "\r\n").encode())
    write("split", "log_short_row.csv", (header + "3,0.5,0.5\n").encode())


if __name__ == "__main__":
    shutil.rmtree(CORPUS, ignore_errors=True)
    for t in ("safetensors", "image", "split"):
        os.makedirs(os.path.join(CORPUS, t))
    safetensors_seeds()
    image_seeds()
    split_seeds()
    total = 0
    for t in sorted(os.listdir(CORPUS)):
        files = os.listdir(os.path.join(CORPUS, t))
        size = sum(os.path.getsize(os.path.join(CORPUS, t, f)) for f in files)
        total += size
        print(f"  corpus/{t}: {len(files)} files, {size} bytes")
    print(f"  total {total} bytes")
