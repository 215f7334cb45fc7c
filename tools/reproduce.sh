#!/usr/bin/env bash
# The reproduction of the study's table (issue 5, ../shared/docs/TARGETS.md): AlexNet,
# ResNet-50, GoogLeNet and VGG16 trained from random initialisation on the leukemia images,
# binary task, each with its default recipe (tools/leuko/recipes.cpp) and the seed-42 split;
# the checkpoint chosen on the validation split is scored on the test split. One network after
# the other, then the table beside the study's, with each run's wall time.
#   tools/reproduce.sh                                  the four networks
#   tools/reproduce.sh --models resnet50 -- --epochs 5  chosen networks; after --, flags for every `leuko train`
#   tools/reproduce.sh --torch                          after each leuko run, the same recipe, split and data
#                                                       in PyTorch (tools/train_torch.py): its scores and wall time
#   tools/reproduce.sh --table-only                     print the table of the runs already there (after a run
#                                                       was stopped, e.g. by a time limit), train nothing
#   tools/reproduce.sh --deadline 540                   stop within 540 s: a run still going then is stopped as
#                                                       Ctrl-C stops it (the epoch's step finished, last.safetensors
#                                                       saved; `leuko train --resume` continues it), later ones are
#                                                       not started, and the table is printed (for a device call's
#                                                       time limit)
# Environment: LEUKO_DATA (default .gpu/leukemia, where ../shared/tools/stage-gpu-inputs --data
# puts the images, else ../shared/data/leukemia), LEUKO (the binary: build-gpu/leuko, else
# build/leuko), OUT (results go to $OUT/reproduce, else runs/reproduce), PYTHON (the interpreter with
# PyTorch for --torch, default python3). The runs use TF32, as
# PyTorch's convolutions do by default.
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
models=alexnet,resnet50,googlenet,vgg16
extra=()
torch=0
train=1
deadline=0
while [ $# -gt 0 ]; do
  case "$1" in
    --models) models=$2; shift 2 ;;
    --torch) torch=1; shift ;;
    --table-only) train=0; shift ;;
    --deadline)
      [[ "${2:-}" =~ ^[0-9]+$ ]] || { echo "reproduce: --deadline takes a number of seconds, not '${2:-}'" >&2; exit 2; }
      deadline=$2; shift 2 ;;
    --) shift; extra=("$@"); break ;;
    *) echo "reproduce: unknown argument '$1' (--models A,B, --torch, --table-only, --deadline SECONDS, or -- then leuko train flags)" >&2; exit 2 ;;
  esac
done
data=${LEUKO_DATA:-}
if [ -z "$data" ]; then
  for d in "$root/.gpu/leukemia" "$root/../shared/data/leukemia"; do [ -d "$d" ] && { data=$d; break; }; done
fi
[ -n "$data" ] && [ -d "$data" ] || { echo "reproduce: no leukemia images: set LEUKO_DATA to the folder (Benign, Early, Pre, Pro)" >&2; exit 1; }
leuko=${LEUKO:-}
if [ -z "$leuko" ]; then
  for b in "$root/build-gpu/leuko" "$root/build/leuko"; do [ -x "$b" ] && { leuko=$b; break; }; done
fi
[ -n "$leuko" ] && [ -x "$leuko" ] || [ $train = 0 ] || { echo "reproduce: no leuko binary: build first (tools/build.sh) or set LEUKO" >&2; exit 1; }
out=${OUT:-$root/runs}/reproduce
mkdir -p "$out"

# Runs "$@" within the deadline: SIGTERM when it comes (leuko then finishes its step and saves,
# as on Ctrl-C), SIGKILL a minute later. Returns 124 when the deadline stopped it.
ends=$(( $(date +%s) + deadline ))
within_deadline() {
  if [ "$deadline" = 0 ]; then "$@"; return; fi
  timeout --signal=TERM --kill-after=60 $(( ends - $(date +%s) )) "$@"
}
past_deadline() { [ "$deadline" != 0 ] && [ $(( ends - $(date +%s) )) -lt 15 ]; }

failed=0
for m in ${models//,/ }; do
  [ $train = 1 ] || break
  rm -f "$out/$m.log" "$out/$m.seconds" "$out/$m.torch.log" "$out/$m.torch.seconds"
  if past_deadline; then
    echo "reproduce: $m not started: the --deadline of $deadline s has come"
    continue
  fi
  start=$(date +%s)
  echo "reproduce: $m ... (log: $out/$m.log)"
  within_deadline "$leuko" train --model "$m" --data "$data" --task binary --precision tf32 --out "$out/$m" --force \
    ${extra[@]+"${extra[@]}"} >"$out/$m.log" 2>&1
  rc=$?
  echo "$(($(date +%s) - start))" >"$out/$m.seconds"
  if [ $rc = 124 ]; then
    echo "reproduce: $m stopped at the --deadline; continue it with: $leuko train --resume $out/$m"
  elif [ $rc != 0 ]; then
    failed=1
    echo "reproduce: $m FAILED (exit $rc):"
    tail -5 "$out/$m.log" | sed 's/^/  /'
  elif [ $torch = 1 ]; then
    # The same epochs as the leuko run (its config.json, --epochs included).
    echo "reproduce: $m in PyTorch ... (log: $out/$m.torch.log)"
    start=$(date +%s)
    if past_deadline; then
      echo "reproduce: $m in PyTorch not started: the --deadline has come"
      continue
    fi
    within_deadline "${PYTHON:-python3}" "$root/tools/train_torch.py" --run "$out/$m" --data "$data" >"$out/$m.torch.log" 2>&1 ||
      { failed=1; echo "reproduce: $m in PyTorch FAILED or stopped at the deadline:"; tail -5 "$out/$m.torch.log" | sed 's/^/  /'; }
    echo "$(($(date +%s) - start))" >"$out/$m.torch.seconds"
  fi
done

# The table: the study's row, then leuko's, per network.
python3 - "$out" "$models" "$leuko" "$data" "${extra[*]+${extra[*]}}" <<'EOF'
import csv, json, os, subprocess, sys
out, models, leuko, data = sys.argv[1], sys.argv[2].split(","), sys.argv[3], sys.argv[4]
study = {"alexnet": (0.9847, 0.9892, 0.9928, 0.9910), "resnet50": (0.9939, 0.9941, 0.9939, 0.9939),
         "googlenet": (0.9817, 0.9927, 0.9855, 0.9891), "vgg16": (0.9969, 0.9982, 0.9902, 0.9941)}
print("\n| model | who | accuracy | precision | recall | F1 | best epoch | wall time |")
print("|---|---|---:|---:|---:|---:|---:|---:|")
for m in models:
    if m in study:
        print("| %s | study (pretrained, PyTorch) | %.4f | %.4f | %.4f | %.4f | | |" % ((m,) + study[m]))
    path = os.path.join(out, m, "test.json")
    if not os.path.exists(os.path.join(out, m + ".log")):  # not run this time (its folder may hold an older run)
        print("| %s | leuko (random init) | not run | | | | | |" % m)
        continue
    secs = open(os.path.join(out, m + ".seconds")).read().strip() if os.path.exists(os.path.join(out, m + ".seconds")) else "?"
    if not os.path.exists(path):
        # A run stopped before its test (a time limit, Ctrl-C): how far it got, from its log.csv.
        log = os.path.join(out, m, "log.csv")
        rows = list(csv.DictReader(open(log))) if os.path.exists(log) else []
        if rows:
            best = max(rows, key=lambda r: float(r["val_f1"]))
            print("| %s | leuko (random init) | stopped after epoch %s (%s): no test score; best validation F1 %.4f at epoch %s | | | | | %s s |"
                  % (m, rows[-1]["epoch"], "resume: leuko train --resume " + os.path.join(out, m), float(best["val_f1"]),
                     best["epoch"], secs))
        else:
            print("| %s | leuko (random init) | failed: see %s.log | | | | | %s s |" % (m, m, secs))
        continue
    t = json.load(open(path))
    b = t["binary"]
    row = (t["accuracy"], b["precision"], b["recall"], b["f1"])
    gap = ""
    if m in study:
        short = [n for n, mine, theirs in zip(("acc", "prec", "rec", "F1"), row, study[m]) if mine < theirs]
        gap = " (below the study: " + ", ".join(short) + ")" if short else " (at or above the study)"
    print("| %s | leuko (random init)%s | %.4f | %.4f | %.4f | %.4f | %s | %s s |" % ((m, gap) + row + (t["epoch"], secs)))
    tpath = os.path.join(out, m, "torch", "test.json")
    if os.path.exists(tpath):  # tools/reproduce.sh --torch
        tt = json.load(open(tpath))
        tsecs = open(os.path.join(out, m + ".torch.seconds")).read().strip()
        print("| %s | %s, same recipe (random init) | %.4f | %.4f | %.4f | %.4f | %s | %s s |" % (
            m, tt["framework"], tt["accuracy"], tt["binary"]["precision"], tt["binary"]["recall"], tt["binary"]["f1"],
            tt["epoch"], tsecs))
card = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True, text=True).stdout.strip() \
    if any(os.access(os.path.join(p, "nvidia-smi"), os.X_OK) for p in os.environ.get("PATH", "").split(":")) else "no GPU"
print("\ncard: %s; data: %s; binary task, positive class malignant, test split of the seed-42 split" % (card or "?", data))
extra = sys.argv[5] if len(sys.argv) > 5 else ""
print("commands: %s train --model M --data DATA --task binary --precision tf32 --out %s/M%s (default recipe per network%s)"
      % (leuko, out, " " + extra if extra else "", ", with the flags after --" if extra else ""))
EOF
exit $failed
