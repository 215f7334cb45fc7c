#!/usr/bin/env python3
"""leuko against PyTorch, training throughput side by side on the same card in the same run.

  tools/bench_compare.py [--leuko build/leuko] [--python PY] [--device auto|cuda|cpu]
                         [--cells alexnet:fp32:64,...] [--quick] [--input S] [--classes 4]
                         [--cap SECONDS] [--budget SECONDS] [--out DIR] [--no-torch] [--no-leuko]
                         [--profile N] [--leuko-graph]

Each cell (model:precision:batch; default: alexnet, resnet50, googlenet, vgg16 x fp32, tf32,
bf16 at batch 64, plus resnet50 bf16 at batch 256) runs `leuko bench --json` in a process of its
own and tools/bench_torch.py, all cells in ONE PyTorch process (CUDA, cuDNN and the imports
start once), one after the other, never at the same time: they share the card. Then prints

  model | precision | batch | leuko img/s | torch img/s | ratio | leuko peak MiB | torch peak MiB |
  leuko held MiB | torch held MiB | leuko TFLOP/s

(ratio = leuko / torch: above 1, leuko is faster; peak = the allocators' peak in live tensors
over the timed steps, both counted in blocks rounded to 512 bytes; held = their peak of memory
obtained from the driver, live and cached: what the card must have) and writes it to DIR/bench.md (markdown, as docs/PERFORMANCE.md keeps it)
and DIR/bench.json (every number of both sides). With --profile N, both sides also profile N
steps op by op after their timed windows (`leuko bench --profile`, tools/torch_profile.py), and
DIR/profile.md puts each cell's ops side by side: where leuko's step loses its time.
With --leuko-graph, leuko's steps are replays of one CUDA graph (`leuko bench --graph`;
PyTorch stays eager), and leuko's peak is then the memory it holds, the graph's pool included.

Time: every cell has a cap (--cap seconds; its timed windows stop early past half of it and the
process is killed at the cap), and the whole run a budget (--budget): PyTorch runs first, with
at most 55% of it, leuko gets the rest; a cell the budget cannot reach is reported as skipped.
--quick (3 warm-up steps, 3 windows of 5 steps) fits a 15-minute GPU session with the build.
A cell that fails (crash, out of memory, timeout, PyTorch missing) shows its error in its cell
and the others go on. Exit status 1 when a leuko cell failed.
"""
import argparse
import datetime
import json
import os
import queue
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_CELLS = ",".join(f"{m}:{p}:64" for m in ("alexnet", "resnet50", "googlenet", "vgg16")
                         for p in ("fp32", "tf32", "bf16")) + ",resnet50:bf16:256"
TORCH_SHARE = 0.55  # of the budget, at most, for the PyTorch side (its cuDNN benchmark mode tries algorithms first)


def parse_cells(text):
    cells = []
    for item in filter(None, text.split(",")):
        parts = item.split(":")
        if len(parts) != 3 or not parts[2].isdigit():
            sys.exit(f"bench_compare: --cells: {item!r} is not model:precision:batch")
        cells.append((parts[0], parts[1], int(parts[2])))
    return cells


def common_flags(a):
    """The flags both benchmarks take, apart from the cell's own."""
    flags = ["--steps", str(a.steps), "--windows", str(a.windows), "--warmup", str(a.warmup),
             "--classes", str(a.classes), "--device", a.device, "--max-seconds", str(a.cap / 2)]
    flags += ["--profile", str(a.profile)] if a.profile else []
    return flags + (["--input", str(a.input)] if a.input else [])


def last_line(text):
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return lines[-1] if lines else ""


def run_leuko(a, cell, deadline):
    """One cell in a `leuko bench` process of its own; returns its JSON or {"error": ...}."""
    model, precision, batch = cell
    left = deadline - time.monotonic()
    if left < 5:
        return {"error": "skipped: time budget spent"}
    cmd = [a.leuko, "bench", "--json", "--model", model, "--precision", precision, "--batch", str(batch)]
    cmd += ["--graph"] if a.leuko_graph else []
    timeout = min(a.cap, left)
    try:
        p = subprocess.run(cmd + common_flags(a), capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    except OSError as e:
        return {"error": f"cannot run {a.leuko}: {e.strerror}"}
    if p.returncode != 0:
        return {"error": last_line(p.stderr) or last_line(p.stdout) or f"exit status {p.returncode}"}
    try:
        return json.loads(last_line(p.stdout))
    except ValueError:
        return {"error": "no JSON in the output: " + last_line(p.stdout)[:200]}


def run_torch(a, cells, deadline):
    """All cells in one bench_torch.py process, which answers one JSON line per cell. Each cell
    gets the cap (the first one 30 s more, for importing torch and starting CUDA); a cell that
    crashes the process or outlives its cap fails alone: the process is restarted for the rest.
    Returns {cell: result}."""
    results, todo = {}, list(cells)
    while todo:
        if deadline - time.monotonic() < 10:
            for c in todo:
                results[c] = {"error": "skipped: time budget spent"}
            break
        cmd = [a.python, os.path.join(HERE, "bench_torch.py"), "--cells",
               ",".join(f"{m}:{p}:{b}" for m, p, b in todo)] + common_flags(a)
        err = tempfile.TemporaryFile(mode="w+")  # a file, not a pipe: warnings cannot fill it and block
        try:
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True)
        except OSError as e:
            why = f"cannot run {a.python}: {e.strerror}"
            for c in todo:
                results[c] = {"error": why}
            break
        # A thread reads the lines, so the wait for each one can have a timeout.
        lines = queue.Queue()

        def read(out=proc.stdout):
            for line in out:
                lines.put(line)
            lines.put(None)
        threading.Thread(target=read, daemon=True).start()
        why, wait = None, a.cap + 30
        while todo:
            asked = time.monotonic()
            try:
                line = lines.get(timeout=max(0.0, min(wait, deadline - asked)))
            except queue.Empty:
                why = f"timed out after {time.monotonic() - asked:.0f} s (the PyTorch process was stopped)"
                break
            if line is None:  # the process ended: a crash, or PyTorch missing
                err.seek(0)
                why = last_line(err.read()) or f"exit status {proc.wait()}"
                break
            try:
                r = json.loads(line)
            except ValueError:
                continue
            cell = (r.get("model"), r.get("precision"), r.get("batch"))
            if cell in todo:
                results[cell] = r
                todo.remove(cell)
                wait = a.cap
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        err.close()
        if todo:
            # The first cell without an answer is the one that failed.
            results[todo.pop(0)] = {"error": why}
            # No PyTorch, or no GPU for it (bench_torch's own one-line exit): the other cells
            # would fail the same way.
            if "No module named" in why or why.startswith("bench_torch:"):
                for c in todo:
                    results[c] = {"error": why}
                break
    return results


def fmt(x, digits=0):
    return "-" if x is None else f"{x:,.{digits}f}"


def mib(r, key="peak_bytes"):
    return None if r.get(key) is None else r[key] / 2**20


def row(cell, lr, tr):
    """One table row: numbers, or a cell's error (shortened; bench.json keeps it whole)."""
    model, precision, batch = cell

    def ips(r):
        # "|" would split a markdown cell.
        return "error: " + r["error"][:40].replace("|", "/") if "error" in r else fmt(r["images_per_s"], 1)
    ratio = "-"
    if "error" not in lr and "error" not in tr and tr.get("images_per_s"):
        ratio = f"{lr['images_per_s'] / tr['images_per_s']:.2f}"
    return [model, precision, str(batch), ips(lr), ips(tr), ratio, fmt(mib(lr)), fmt(mib(tr)),
            fmt(mib(lr, "peak_reserved_bytes")), fmt(mib(tr, "peak_reserved_bytes")), fmt(lr.get("tflops"), 2)]


HEADER = ["model", "precision", "batch", "leuko img/s", "torch img/s", "ratio", "leuko peak MiB",
          "torch peak MiB", "leuko held MiB", "torch held MiB", "leuko TFLOP/s"]


def text_table(rows):
    widths = [max(len(r[i]) for r in [HEADER] + rows) for i in range(len(HEADER))]
    lines = ["  ".join(c.ljust(w) if i < 3 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
             for r in [HEADER] + rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def markdown_table(rows):
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "|".join("---" if i < 3 else "---:" for i in range(len(HEADER))) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def profile_table(cell, lr, tr):
    """One cell's step op by op, both sides (tensor/profile.h, tools/torch_profile.py), as
    markdown: the rows of either side, the costliest (on either side) first."""
    lp, tp = lr.get("profile"), tr.get("profile")
    if lp is None or tp is None:
        return None
    model, precision, batch = cell
    ours = {(r["name"], r["phase"]): r for r in lp["rows"]}
    theirs = {(r["name"], r["phase"]): r for r in tp["rows"]}
    keys = sorted(set(ours) | set(theirs), key=lambda k: -max(ours.get(k, {}).get("device_ms_per_step", 0),
                                                              theirs.get(k, {}).get("device_ms_per_step", 0)))

    def ms(r, k):
        return r[k]["device_ms_per_step"] if k in r else None

    def calls(r, k):
        return f"{r[k]['calls_per_step']:g}" if k in r else "-"
    # leuko runs a ReLU inside the op before it (conv2d_relu, linear_relu, batch_norm_relu,
    # add_relu) where PyTorch runs two ops: leuko's fused rows are compared with PyTorch's row of
    # the op alone (named "conv2d (+ relu in leuko)"), and one more row sums the five kinds of op
    # on each side, a like-for-like total.
    fused = {"conv2d_relu": "conv2d", "linear_relu": "linear", "batch_norm_relu": "batch_norm", "add_relu": "add"}
    merged = {}
    for (name, phase), r in ours.items():
        base = fused.get(name, name)
        m = merged.setdefault((base, phase), {"calls_per_step": 0.0, "device_ms_per_step": 0.0, "fused": False})
        m["calls_per_step"] += r["calls_per_step"]
        m["device_ms_per_step"] += r["device_ms_per_step"]
        m["fused"] |= name in fused
    ours = {}
    for (base, phase), m in merged.items():
        label = base + " (+ relu in leuko)" if m["fused"] else base
        ours[(label, phase)] = m
        if m["fused"] and (base, phase) in theirs:
            theirs[(label, phase)] = theirs.pop((base, phase))
    group = ("conv2d", "linear", "batch_norm", "relu", "add")
    for side in (ours, theirs):
        for phase in ("forward", "backward"):
            rows = [r for (name, ph), r in side.items() if ph == phase and name.split(" ")[0] in group]
            if rows:
                side[("conv2d + linear + batch_norm + relu + add", phase)] = {
                    "calls_per_step": sum(r["calls_per_step"] for r in rows),
                    "device_ms_per_step": sum(r["device_ms_per_step"] for r in rows)}
    keys = sorted(set(ours) | set(theirs), key=lambda k: -max(ours.get(k, {}).get("device_ms_per_step", 0),
                                                              theirs.get(k, {}).get("device_ms_per_step", 0)))
    lines = [f"#### {model} {precision} batch {batch}", "",
             f"leuko: {lp['step_ms']:.2f} ms per profiled step ({lp['timed_step_ms']:.2f} ms timed), host "
             f"{lp['host_ms']:.2f} ms; torch: {tp['step_ms']:.2f} ms of "
             + (f"kernels per step ({tp['timed_step_ms']:.2f} ms timed: the GPU idled for the rest)"
                if tr.get("device") == "cuda" else f"operators per step ({tp['timed_step_ms']:.2f} ms timed)")
             + f", host {tp['host_ms']:.2f} ms", "",
             "| op | phase | leuko calls | torch calls | leuko ms | torch ms | leuko / torch |", "|---|---|---:|---:|---:|---:|---:|"]
    for k in keys:
        a, b = ms(ours, k), ms(theirs, k)
        ratio = f"{a / b:.2f}" if a is not None and b else "-"
        lines.append(f"| {k[0]} | {k[1]} | {calls(ours, k)} | {calls(theirs, k)} | {fmt(a, 3)} | {fmt(b, 3)} | {ratio} |")
    return "\n".join(lines)


def write_report(a, cells, leuko_results, torch_results, start, final):
    """Writes bench.md, bench.json (and profile.md) from the cells run so far; final: also prints
    the table and exits with the status. Called after each cell too, so that a run cut off by a
    time limit (a GPU session's call) still leaves the cells it finished in its files."""
    # Cells not run yet (a report written before the end) are marked as such.
    pending = {"error": "not reached yet (the run was cut off before this cell)"}
    leuko_results = {c: leuko_results.get(c, pending) for c in cells}
    torch_results = {c: torch_results.get(c, pending) for c in cells}
    rows = [row(c, leuko_results[c], torch_results[c]) for c in cells]
    ok = [r for r in list(leuko_results.values()) + list(torch_results.values()) if "error" not in r]
    cards = sorted({f"{r['framework']}: {r['device']}, {r['card']}" for r in ok})
    devices = {r["device"] for r in ok}
    when = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    torch_version = next((r["torch_version"] for r in ok if "torch_version" in r), "not run")
    notes = [f"date: {when}; torch {torch_version}; {a.warmup} warm-up steps, median of {a.windows} windows "
             f"of {a.steps} steps; {a.classes} classes"] + [f"card: {c}" for c in cards]
    # What bf16 meant on each side (leuko: bf16 activations and their order, tensor/device.h;
    # PyTorch: autocast, and the memory format of tools/bench_torch.py).
    modes = sorted({("leuko bf16: " + ("bf16 activations, " + ("channels_last" if r.get("channels_last") else "NCHW")
                                       if r.get("bf16_activations") else "float32 activations, bf16 products"))
                    for r in leuko_results.values() if r.get("precision") == "bf16" and "error" not in r} |
                   {f"torch bf16: autocast, {r.get('memory_format', 'channels_last')}"
                    for r in torch_results.values() if r.get("precision") == "bf16" and "error" not in r})
    notes += modes
    if any(r.get("graph") for r in leuko_results.values() if "error" not in r):
        notes.append("leuko: each step a replay of one CUDA graph (--graph); its peak is the memory held, "
                     "the graph's pool included")
    if len(devices) > 1:
        notes.append("WARNING: leuko and PyTorch did not run on the same device: the ratio means nothing")
    errors = [f"{side} {m}:{p}:{b}: {r['error']}" for side, res in (("leuko", leuko_results), ("torch", torch_results))
              for (m, p, b), r in res.items() if "error" in r]
    errors += [f"torch {m}:{p}:{b}: profile: {r['profile_error']}" for (m, p, b), r in torch_results.items()
               if "profile_error" in r]  # the cell's numbers stand; its profile is missing

    with open(os.path.join(a.out, "bench.md"), "w") as f:
        f.write(markdown_table(rows) + "\n\n" + "\n".join(f"- {n}" for n in notes) + "\n")
        if errors:
            f.write("\nErrors:\n\n" + "\n".join(f"- {e}" for e in errors) + "\n")
    if final:
        print()
        print(text_table(rows))
        for n in notes:
            print(n)
        if errors:
            print("errors:")
            for e in errors:
                print("  " + e)
        print(f"bench_compare: {time.monotonic() - start:.0f} s; written to {a.out}/bench.md and bench.json")
    if a.profile:
        tables = [t for t in (profile_table(c, leuko_results[c], torch_results[c]) for c in cells) if t]
        with open(os.path.join(a.out, "profile.md"), "w") as f:
            f.write("\n\n".join(tables) + "\n")
        if final:
            print(f"bench_compare: {len(tables)} of {len(cells)} cells profiled on both sides: {a.out}/profile.md")
    with open(os.path.join(a.out, "bench.json"), "w") as f:
        json.dump({"date": when, "cells": [{"model": m, "precision": p, "batch": b, "leuko": leuko_results[(m, p, b)],
                                            "torch": torch_results[(m, p, b)]} for m, p, b in cells]}, f, indent=1)
    if final:
        sys.exit(1 if any("error" in r for r in leuko_results.values()) and not a.no_leuko else 0)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--leuko", default=os.path.join(HERE, "..", "build", "leuko"), help="the leuko executable")
    ap.add_argument("--python", default=sys.executable, help="the Python that has torch and torchvision")
    ap.add_argument("--device", default="auto", choices=["auto", "cuda", "cpu"])
    ap.add_argument("--cells", default=DEFAULT_CELLS, help="model:precision:batch,...")
    ap.add_argument("--quick", action="store_true", help="3 warm-up steps, 3 windows of 5 steps")
    ap.add_argument("--steps", type=int, help="steps per window (default 10, quick 5)")
    ap.add_argument("--windows", type=int, help="timed windows (default 5, quick 3)")
    ap.add_argument("--warmup", type=int, help="warm-up steps (default 5, quick 3)")
    ap.add_argument("--classes", type=int, default=4)
    ap.add_argument("--input", type=int, default=0, help="image side (default: each network's own)")
    ap.add_argument("--cap", type=float, help="seconds per cell (default 120, quick 60)")
    ap.add_argument("--budget", type=float, default=1e9, help="seconds for everything (default: no limit)")
    ap.add_argument("--out", default="bench-out", help="folder for bench.md and bench.json")
    ap.add_argument("--profile", type=int, default=0,
                    help="also profile this many steps op by op on both sides (DIR/profile.md)")
    ap.add_argument("--leuko-graph", action="store_true",
                    help="leuko's steps as CUDA graph replays (leuko bench --graph); PyTorch stays eager")
    ap.add_argument("--no-torch", action="store_true", help="leuko only")
    ap.add_argument("--no-leuko", action="store_true", help="PyTorch only")
    a = ap.parse_args()
    quick = {"steps": 5, "windows": 3, "warmup": 3, "cap": 60}
    full = {"steps": 10, "windows": 5, "warmup": 5, "cap": 120}
    for k, v in (quick if a.quick else full).items():
        if getattr(a, k) is None:
            setattr(a, k, v)
    cells = parse_cells(a.cells)
    start = time.monotonic()
    deadline = start + a.budget
    os.makedirs(a.out, exist_ok=True)

    torch_results = {}
    if a.no_torch:
        torch_results = {c: {"error": "not run (--no-torch)"} for c in cells}
    else:
        print(f"bench_compare: PyTorch, {len(cells)} cells in one process ...", flush=True)
        # PyTorch's speed is known and steady, leuko's is what is measured: PyTorch goes first
        # and may not take more than its share of the budget.
        torch_deadline = deadline if a.no_leuko else start + a.budget * TORCH_SHARE
        torch_results = run_torch(a, cells, torch_deadline)
    leuko_results = {}
    write_report(a, cells, leuko_results, torch_results, start, final=False)
    for c in cells:
        if a.no_leuko:
            leuko_results[c] = {"error": "not run (--no-leuko)"}
            continue
        print(f"bench_compare: leuko {c[0]} {c[1]} batch {c[2]} ...", flush=True)
        leuko_results[c] = run_leuko(a, c, deadline)
        write_report(a, cells, leuko_results, torch_results, start, final=False)

    write_report(a, cells, leuko_results, torch_results, start, final=True)
    sys.exit(1 if any("error" in r for r in leuko_results.values()) and not a.no_leuko else 0)


if __name__ == "__main__":
    main()
