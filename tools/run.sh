#!/usr/bin/env bash
# The main job: installs what is missing, builds, and trains a network.
#   tools/run.sh                      makes a small synthetic blood-smear dataset (runs/synth-data)
#                                     and trains ResNet-18 on it: a couple of minutes on a laptop CPU
#   tools/run.sh --model M --data DIR [leuko train options]
#                                     trains on your images, e.g. the Kaggle leukemia download:
#                                     tools/run.sh --model resnet50 --data ~/leukemia/Original
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$root/tools/deps.sh"
"$root/tools/build.sh" -DLEUKO_TESTS=OFF >/dev/null
leuko=${LEUKO_BUILD_DIR:-$root/build}/leuko
cd "$root"
if [ $# -gt 0 ]; then
  exec "$leuko" train "$@"
fi
data=runs/synth-data
if [ ! -d "$data" ]; then
  "$leuko" synth --out "$data" --per-class 60 --size 96
fi
echo "training ResNet-18 on the synthetic images (to use real ones: tools/run.sh --model resnet50 --data DIR)"
exec "$leuko" train --model resnet18 --data "$data" --input 64 --epochs 8 --batch 16 --warmup 1
