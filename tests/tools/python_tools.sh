#!/usr/bin/env bash
# The Python tools that a GPU session relies on, run on the CPU before a GPU session does:
# tools/bench_compare.py (leuko bench and tools/bench_torch.py side by side, the table) and
# tools/reproduce.sh --torch (a leuko run, then tools/train_torch.py: the same recipe in PyTorch),
# each on a tiny problem.
# A broken script found here costs a minute; found on the GPU machine it costs the session.
#
#   tests/tools/python_tools.sh LEUKO PYTHON compile   every tools/*.py compiles (Python only)
#   tests/tools/python_tools.sh LEUKO PYTHON torch     the two runs (needs torch and torchvision;
#                                                      exits 77, "Skipped" in ctest, without them)
#
# Any PyTorch with torchvision will do: Debian's python3-torch (CPU, 1.13) on a machine without a
# GPU, 2.x on the GPU machine (tools/gpu_session.sh runs this test beside the GPU tests).
set -euo pipefail
leuko=$1 python=$2 what=$3
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

fail() { echo "python_tools: $*" >&2; exit 1; }

if [ "$what" = compile ]; then
  # py_compile writes no .pyc into the source tree: the cache goes to the scratch folder.
  for f in "$root"/tools/*.py; do
    PYTHONPYCACHEPREFIX="$work" "$python" -m py_compile "$f" || fail "$f does not compile"
  done
  echo "python_tools: $(ls "$root"/tools/*.py | wc -l) scripts compile"
  exit 0
fi

# The first of LEUKO_PYTHON, the given Python and Debian's /usr/bin/python3 that has torch and
# torchvision (a pyenv or venv python3 may come first on PATH without them).
found=
for candidate in "${LEUKO_PYTHON:-}" "$python" /usr/bin/python3; do
  [ -n "$candidate" ] && "$candidate" -c 'import torch, torchvision' 2>/dev/null && { found=$candidate; break; }
done
if [ -z "$found" ]; then
  echo "python_tools: no python3 with torch and torchvision (tried ${LEUKO_PYTHON:+$LEUKO_PYTHON, }$python, /usr/bin/python3;" \
    "apt-get install python3-torch python3-torchvision, or set LEUKO_PYTHON): skipped, not passed"
  exit 77
fi
python=$found

# 1. bench_compare.py: one float32 and one bf16 cell, both sides, on the CPU at 32 pixels.
"$python" "$root/tools/bench_compare.py" --leuko "$leuko" --python "$python" --device cpu \
  --cells resnet18:fp32:2,resnet18:bf16:2 --quick --input 32 --out "$work/bench" >"$work/bench.log" 2>&1 ||
  { cat "$work/bench.log"; fail "bench_compare.py failed"; }
table="$work/bench/bench.md"
[ -f "$table" ] && [ -f "$work/bench/bench.json" ] || { cat "$work/bench.log"; fail "bench_compare.py wrote no bench.md / bench.json"; }
# Each cell's row: both images/s columns and the ratio are numbers (an error cell shows "error:" or "-").
for precision in fp32 bf16; do
  row=$(grep -E "^\| *resnet18 *\| *$precision *\|" "$table" || true)
  [ -n "$row" ] || { cat "$table"; fail "bench.md has no resnet18 $precision row"; }
  echo "$row" | awk -F'|' '{ for (i = 5; i <= 7; i++) if ($i !~ /^ *[0-9][0-9,.]* *$/) exit 1 }' ||
    { cat "$table"; fail "bench.md's resnet18 $precision row lacks a number: $row"; }
done
if grep -q '^errors:' "$work/bench.log"; then cat "$work/bench.log"; fail "bench_compare.py reported errors"; fi

# 2. tools/reproduce.sh --torch: a leuko run, then tools/train_torch.py on its recipe, split and
# data, then the table with both rows; a synthetic dataset, one epoch each side.
"$leuko" synth --out "$work/data" --per-class 12 --size 32 --seed 1 >/dev/null
LEUKO_DATA="$work/data" LEUKO="$leuko" OUT="$work" PYTHON="$python" bash "$root/tools/reproduce.sh" \
  --models resnet18 --torch -- --epochs 1 --input 32 --batch 4 --device cpu >"$work/reproduce.log" 2>&1 ||
  { cat "$work/reproduce.log" "$work"/reproduce/*.log; fail "reproduce.sh --torch failed"; }
for f in log.csv test.json; do
  [ -s "$work/reproduce/resnet18/torch/$f" ] || { cat "$work/reproduce.log"; fail "train_torch.py wrote no $f"; }
done
grep -q '^wall time' "$work/reproduce/resnet18.torch.log" ||
  { cat "$work/reproduce/resnet18.torch.log"; fail "train_torch.py printed no wall time"; }
# Both rows of the table carry four scores (a failed side shows "failed" or "not run").
for who in "leuko (random init)" "same recipe (random init)"; do
  row=$(grep -F "$who" "$work/reproduce.log" | grep '^| resnet18' || true)
  echo "$row" | awk -F'|' '{ for (i = 4; i <= 7; i++) if ($i !~ /^ *[01][.][0-9][0-9][0-9][0-9] *$/) exit 1 }' ||
    { cat "$work/reproduce.log"; fail "reproduce.sh's table has no scores in the row '$who': $row"; }
done
echo "python_tools: bench_compare.py and reproduce.sh --torch ran ($("$python" -c 'import torch; print("torch", torch.__version__)'))"
