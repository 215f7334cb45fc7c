#!/usr/bin/env python3
"""The same training run in PyTorch: a leuko run's recipe, split and data, with torchvision's model.

Reads a leuko run folder (config.json: the recipe; split.json: the files of each part), trains
torchvision's network of the same name from random initialisation with the same recipe, picks
the best epoch on the validation split by the same metric and scores it on the test split.
Prints one line per epoch and the wall time of each phase; writes <run>/torch/log.csv and
<run>/torch/test.json (the same fields as leuko's test.json). Two uses:
  - the reference for the reproduction (issue 5): what PyTorch reaches with this recipe;
  - the whole-run speed comparison (issue 6): leuko's wall time against this one, data loading
    included, on the same card (tools/reproduce.sh --torch runs both).

    tools/train_torch.py --run runs/reproduce/resnet50              the run's own recipe and data
    tools/train_torch.py --run DIR --epochs 2 --device cpu          shorter, on the CPU

The recipe, as leuko's trainer (tools/leuko/trainer.cpp) applies it:
  - images decoded once into memory at the network's input size (antialiased resize of both
    sides, only where the file has another size), as leuko's dataset does;
  - training batches: a seeded shuffle per epoch, the last partial batch dropped, each image
    flipped left-right and top-bottom with probability 1/2 and turned k quarter turns, k uniform
    in 0..3 (augment "flips"), then normalised; done on the device, batch by batch (the fast way
    in PyTorch: no per-image Python work). augment "crop" is not supported here;
  - cross-entropy with the recipe's label smoothing and class weights n / (k * count_c), the
    auxiliary heads' losses added with weights 0.3 + 0.3 (GoogLeNet) or 0.4 (Inception-v3);
  - AdamW / Adam / SGD with the recipe's learning rate and weight decay (betas 0.9, 0.999,
    eps 1e-8; SGD momentum from the recipe); the learning rate set before every step by leuko's
    schedule: cosine over epochs (per epoch), times a linear warm-up from 0.1 to 1 over
    warmup_epochs * steps_per_epoch steps;
  - precision: fp32 (TF32 off), tf32 (TF32 on for convolutions and matrix products), bf16
    (autocast to bfloat16, channels_last);
  - best epoch: the validation metric of config.best_metric (f1: the malignant class's F1 in the
    binary task, the macro F1 over subtypes); on ties the lower validation loss, as leuko.
The random streams are PyTorch's (seeded from config.seed), not leuko's: the two runs see the
same files in each part, not the same shuffles, augmentations or initial weights.
"""
import argparse
import csv
import json
import math
import os
import sys
import time


def fail(msg):
    print(f"train_torch: {msg}", file=sys.stderr)
    sys.exit(1)


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--run", required=True, help="a leuko run folder (config.json and split.json)")
    p.add_argument("--data", help="the image folder (default: config.json's data)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda")
    p.add_argument("--epochs", type=int, help="override the recipe's epochs")
    p.add_argument("--precision", help="override the recipe's precision: fp32, tf32, bf16")
    p.add_argument("--threads", type=int, default=os.cpu_count(), help="threads that decode the images")
    p.add_argument("--out", help="where log.csv and test.json go (default: RUN/torch)")
    return p.parse_args()


def load_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except OSError as e:
        fail(f"{path}: cannot read ({e.strerror})")
    except json.JSONDecodeError as e:
        fail(f"{path}: not JSON ({e})")


# ---- Data ----------------------------------------------------------------------------------


def decode_all(root, files, size, threads):
    """uint8 (N, 3, size, size) in memory: every file decoded once, resized where needed."""
    from concurrent.futures import ThreadPoolExecutor

    import torch
    import torchvision.transforms.functional as TF
    from torchvision.io import ImageReadMode, decode_image, read_file

    def one(rel):
        path = os.path.join(root, rel)
        try:
            img = decode_image(read_file(path), mode=ImageReadMode.RGB)  # (3, H, W) uint8
        except Exception:  # BMP, or a format this torchvision lacks: PIL reads it
            from PIL import Image

            try:
                with Image.open(path) as im:
                    img = TF.pil_to_tensor(im.convert("RGB"))
            except OSError as e:
                fail(f"{path}: cannot decode ({e})")
        if img.shape[1] != size or img.shape[2] != size:
            img = TF.resize(img, [size, size], antialias=True)
        return img

    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        return torch.stack(list(pool.map(one, files)))


def label_of(rel, split):
    """The label of a file: its folder's index among the task's classes."""
    folder = rel.split("/")[0]
    if split["task"] == "binary":
        return 0 if folder == split.get("benign", "Benign") else 1
    return split["folders"].index(folder)


def augment_flips(x, gen):
    """Random flips left-right and top-bottom (p = 1/2 each) and k quarter turns (k in 0..3), per image.

    The draws and the index lists are made on the CPU and sent ahead without blocking, so the
    step never waits for the GPU (a mask's .any() or a boolean index on the GPU would).
    """
    import torch

    n = x.shape[0]
    draws = torch.randint(0, 2, (n, 2), generator=gen).bool()
    turns = torch.randint(0, 4, (n,), generator=gen)
    lr = draws[:, 0].view(n, 1, 1, 1).to(x.device, non_blocking=True)
    tb = draws[:, 1].view(n, 1, 1, 1).to(x.device, non_blocking=True)
    x = torch.where(lr, x.flip(3), x)
    x = torch.where(tb, x.flip(2), x)
    out = x.clone()
    for k in (1, 2, 3):  # square images: a quarter turn keeps the shape
        idx = (turns == k).nonzero().squeeze(1)  # on the CPU: no wait
        if len(idx):
            idx = idx.to(x.device, non_blocking=True)
            out.index_copy_(0, idx, torch.rot90(x.index_select(0, idx), k, dims=(2, 3)))
    return out


# ---- Model and recipe ---------------------------------------------------------------------


def make_model(name, classes):
    import torchvision.models as M

    if name == "alexnet":
        return M.alexnet(num_classes=classes)
    if name == "googlenet":
        return M.googlenet(num_classes=classes, aux_logits=True, init_weights=True)
    if name == "inception_v3":
        return M.inception_v3(num_classes=classes, aux_logits=True, init_weights=True)
    if name in ("resnet18", "resnet50", "vgg16", "vgg16_bn"):
        return getattr(M, name)(num_classes=classes)
    fail(f"config.json: model '{name}' has no torchvision counterpart here (alexnet_lrn is leuko's own)")


AUX_WEIGHTS = {"googlenet": (0.3, 0.3), "inception_v3": (0.4,)}


def lr_at(cfg, step, steps_per_epoch, epochs):
    """leuko's schedule (optim/schedule.cpp): constant or cosine, then the linear warm-up."""
    base = cfg["lr"]
    epoch = step // steps_per_epoch
    kind = cfg.get("schedule", "cosine")
    if kind.startswith("cosine"):
        eta_min = float(kind.split(":")[1]) if ":" in kind else 0.0
        t = min(epoch, max(1, epochs))
        lr = eta_min + (base - eta_min) * (1 + math.cos(math.pi * t / max(1, epochs))) / 2
    elif kind == "constant":
        lr = base
    else:
        fail(f"config.json: schedule '{kind}' is not supported here (constant, cosine)")
    warmup = cfg.get("warmup_epochs", 0) * steps_per_epoch
    if warmup > 0 and step < warmup:
        lr *= 0.1 + 0.9 * step / warmup
    return lr


def make_optimizer(cfg, params):
    import torch

    name, lr, wd = cfg["optimizer"], cfg["lr"], cfg["weight_decay"]
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=cfg.get("momentum", 0.9), weight_decay=wd)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=wd)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=wd)
    fail(f"config.json: optimizer '{name}' is not one of sgd, adam, adamw")


# ---- Metrics (as data/metrics.cpp) ---------------------------------------------------------


def confusion_metrics(confusion, classes):
    """Accuracy, and precision / recall / F1 of class 1 (binary) or their macro averages."""

    def prf(c):
        tp = confusion[c][c]
        predicted = sum(confusion[r][c] for r in range(classes))
        actual = sum(confusion[c])
        p = tp / predicted if predicted else 0.0
        r = tp / actual if actual else 0.0
        return p, r, (2 * p * r / (p + r) if p + r else 0.0)

    total = sum(map(sum, confusion))
    acc = sum(confusion[c][c] for c in range(classes)) / total if total else 0.0
    if classes == 2:
        p, r, f = prf(1)
    else:
        rows = [prf(c) for c in range(classes)]
        p, r, f = (sum(x[i] for x in rows) / classes for i in range(3))
    return {"accuracy": acc, "precision": p, "recall": r, "f1": f}


def evaluate(model, images, labels, cfg, device, amp, normalize):
    import torch

    model.eval()
    classes = cfg["classes"]
    confusion = [[0] * classes for _ in range(classes)]
    loss_sum = 0.0
    with torch.no_grad():
        for i in range(0, len(labels), cfg["batch"]):
            x = normalize(images[i : i + cfg["batch"]].to(device, non_blocking=True))
            y = labels[i : i + cfg["batch"]].to(device)
            with amp():
                logits = model(x)
            loss_sum += torch.nn.functional.cross_entropy(logits.float(), y, reduction="sum").item()
            pred = logits.argmax(1).tolist()
            for t, q in zip(y.tolist(), pred):
                confusion[t][q] += 1
    m = confusion_metrics(confusion, classes)
    m["loss"] = loss_sum / max(1, len(labels))
    m["confusion"] = confusion
    return m


def pick(cfg, m):
    metric = cfg.get("best_metric", "f1")
    if metric == "loss":
        return -m["loss"]
    if metric == "accuracy":
        return m["accuracy"]
    return m["f1"]  # f1 and macro_f1: class 1's F1 for two classes, else the macro average


# ---- The run --------------------------------------------------------------------------------


def main():
    args = parse_args()
    t_start = time.time()
    import contextlib
    import copy

    try:
        import torch
        import torchvision  # noqa: F401 (the models)
    except ImportError as e:
        fail(f"{sys.executable} lacks PyTorch or torchvision ({e}): pip install torch torchvision, or run it "
             "with /usr/bin/python3 after apt-get install python3-torch python3-torchvision")

    cfg = load_json(os.path.join(args.run, "config.json"))
    split = load_json(os.path.join(args.run, "split.json"))
    split["benign"] = cfg.get("benign", "Benign")
    if args.epochs is not None:
        cfg["epochs"] = args.epochs
    precision = args.precision or cfg.get("precision", "fp32")
    data = args.data or cfg.get("data")
    if not data or not os.path.isdir(data):
        fail(f"--data: '{data}' is not a folder (the images the run was trained on)")
    if cfg.get("augment", "flips") not in ("none", "flips"):
        fail(f"config.json: augment '{cfg['augment']}' is not supported here (none, flips)")
    if precision not in ("fp32", "tf32", "bf16"):
        fail(f"--precision: '{precision}' is not one of fp32, tf32, bf16")
    if args.device == "auto":
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    elif args.device in ("cpu", "cuda"):
        device = torch.device(args.device)
        if device.type == "cuda" and not torch.cuda.is_available():
            fail("--device cuda: PyTorch sees no CUDA GPU")
    else:
        fail(f"--device: '{args.device}' is not one of auto, cpu, cuda")
    out = args.out or os.path.join(args.run, "torch")
    os.makedirs(out, exist_ok=True)

    torch.manual_seed(cfg.get("seed", 42))
    torch.backends.cudnn.benchmark = True
    tf32 = precision == "tf32"
    torch.backends.cudnn.allow_tf32 = tf32
    torch.backends.cuda.matmul.allow_tf32 = tf32
    bf16 = precision == "bf16"
    memory_format = torch.channels_last if bf16 else torch.contiguous_format

    def amp():
        return torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()

    # Data: decoded once, as leuko does; float conversion and normalisation per batch.
    size = cfg.get("input", 224)
    t0 = time.time()
    parts = {}
    for part in ("train", "val", "test"):
        files = split[part]
        imgs = decode_all(data, files, size, args.threads)
        labels = torch.tensor([label_of(f, split) for f in files], dtype=torch.int64)
        if device.type == "cuda":
            imgs = imgs.pin_memory()
        parts[part] = (imgs, labels)
    t_decode = time.time() - t0
    mean = torch.tensor(cfg.get("mean", [0.485, 0.456, 0.406]), device=device).view(1, 3, 1, 1) * 255
    std = torch.tensor(cfg.get("std", [0.229, 0.224, 0.225]), device=device).view(1, 3, 1, 1) * 255

    def normalize(x):
        return ((x.float() - mean) / std).contiguous(memory_format=memory_format)

    train_x, train_y = parts["train"]
    classes = cfg["classes"]
    counts = torch.bincount(train_y, minlength=classes).double()
    weight = None
    if cfg.get("class_weights", False):
        weight = torch.where(counts > 0, len(train_y) / (classes * counts), torch.zeros_like(counts))
        weight = weight.float().to(device)
    ce = torch.nn.CrossEntropyLoss(weight=weight, label_smoothing=cfg.get("label_smoothing", 0.0))

    model = make_model(cfg["model"], classes).to(device, memory_format=memory_format)
    opt = make_optimizer(cfg, model.parameters())
    aux_w = AUX_WEIGHTS.get(cfg["model"], ())
    batch, epochs = cfg["batch"], cfg["epochs"]
    n = len(train_y)
    steps_per_epoch = n // batch if n > batch else 1  # drop_last when there is more than a batch
    gen = torch.Generator().manual_seed(cfg.get("seed", 42))
    print(f"train_torch: {cfg['model']} {precision} on {torch.cuda.get_device_name(device) if device.type == 'cuda' else 'the CPU'}, "
          f"{n} train / {len(parts['val'][1])} val / {len(parts['test'][1])} test images decoded in {t_decode:.1f} s; "
          f"{epochs} epochs of {steps_per_epoch} steps, batch {batch}", flush=True)

    rows, best, best_epoch, best_loss, best_state, step = [], None, 0, None, None, 0
    t_train = time.time()
    for epoch in range(epochs):
        t_epoch = time.time()
        model.train()
        order = torch.randperm(n, generator=gen)
        loss_sum, correct, seen = torch.zeros((), device=device), torch.zeros((), device=device), 0
        for b in range(steps_per_epoch):
            idx = order[b * batch : (b + 1) * batch]
            x, y = train_x[idx], train_y[idx]
            if device.type == "cuda":  # a copy from pageable memory would wait for the GPU first
                x, y = x.pin_memory(), y.pin_memory()
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            if cfg.get("augment", "flips") == "flips":
                x = augment_flips(x, gen)
            x = normalize(x)
            for g in opt.param_groups:
                g["lr"] = lr_at(cfg, step, steps_per_epoch, epochs)
            with amp():
                outs = model(x)
                main_out = outs[0] if isinstance(outs, tuple) else outs
                if aux_w:  # GoogLeNetOutputs(logits, aux2, aux1) / InceptionOutputs(logits, aux)
                    auxes = [o for o in outs[1:] if o is not None]
                    loss = ce(main_out.float(), y) + sum(w * ce(a.float(), y) for w, a in zip(aux_w, auxes))
                else:
                    loss = ce(main_out.float(), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            loss_sum += loss.detach() * len(y)
            correct += (main_out.argmax(1) == y).sum()
            seen += len(y)
        train_loss, train_acc = loss_sum.item() / seen, correct.item() / seen  # waits for the GPU
        train_seconds = time.time() - t_epoch  # the training steps alone, as leuko's log.csv has them
        v = evaluate(model, *parts["val"], cfg, device, amp, normalize)
        metric = pick(cfg, v)
        improved = best_epoch == 0 or metric > best or (metric == best and v["loss"] < best_loss)
        if improved:
            best, best_epoch, best_loss = metric, epoch + 1, v["loss"]
            best_state = copy.deepcopy(model.state_dict())
        seconds = time.time() - t_epoch
        rows.append([epoch + 1, train_loss, train_acc, v["loss"], v["accuracy"], v["precision"], v["recall"], v["f1"],
                     opt.param_groups[0]["lr"], train_seconds])
        print(f"epoch {epoch + 1}/{epochs}: train loss {train_loss:.4f} acc {train_acc:.4f} | val loss {v['loss']:.4f} "
              f"acc {v['accuracy']:.4f} F1 {v['f1']:.4f}{'  * best' if improved else ''}  [train {train_seconds:.1f} s]"
              f"  ({seconds:.1f} s in all)", flush=True)
    if device.type == "cuda":
        torch.cuda.synchronize()
    t_train = time.time() - t_train

    t0 = time.time()
    model.load_state_dict(best_state)
    t = evaluate(model, *parts["test"], cfg, device, amp, normalize)
    t_test = time.time() - t0
    with open(os.path.join(out, "log.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["epoch", "train_loss", "train_acc", "val_loss", "val_acc", "val_precision", "val_recall", "val_f1",
                    "lr", "seconds"])
        w.writerows(rows)
    wall = time.time() - t_start
    cm = t["confusion"]
    scores = {k: t[k] for k in ("precision", "recall", "f1")}
    if classes == 2:  # as leuko's test.json: the malignant class is the positive one
        scores.update(tp=cm[1][1], fp=cm[0][1], fn=cm[1][0], tn=cm[0][0],
                      specificity=cm[0][0] / (cm[0][0] + cm[0][1]) if cm[0][0] + cm[0][1] else 0.0)
    result = {"split": "test", "epoch": best_epoch, "loss": t["loss"], "accuracy": t["accuracy"],
              ("binary" if classes == 2 else "macro"): scores, "class_names": split.get("class_names"),
              "confusion_matrix": cm, "framework": f"PyTorch {torch.__version__}", "precision": precision,
              "seconds": {"decode": round(t_decode, 2), "train": round(t_train, 2), "test": round(t_test, 2),
                          "wall": round(wall, 2)}}
    tmp = os.path.join(out, "test.json.tmp")
    with open(tmp, "w") as f:
        json.dump(result, f, indent=2)
        f.write("\n")
    os.replace(tmp, os.path.join(out, "test.json"))
    print(f"test split, best epoch {best_epoch} of {epochs}: accuracy {t['accuracy']:.4f} precision {t['precision']:.4f} "
          f"recall {t['recall']:.4f} F1 {t['f1']:.4f}")
    print(f"wall time {wall:.1f} s: decode {t_decode:.1f} s, train and validate {t_train:.1f} s, test {t_test:.1f} s "
          f"(python and torch import included); {out}/test.json")


if __name__ == "__main__":
    main()
