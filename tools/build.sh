#!/usr/bin/env bash
# Configures and builds leuko into build/ (or $LEUKO_BUILD_DIR). Extra arguments go to cmake's
# configure step, e.g. tools/build.sh -DLEUKO_CUDA=OFF -DCMAKE_CUDA_ARCHITECTURES=86.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${LEUKO_BUILD_DIR:-$root/build}
generator=()
command -v ninja >/dev/null && [ ! -f "$build/Makefile" ] && generator=(-G Ninja)
mkdir -p "$build"
cmake -S "$root" -B "$build" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release "$@" >"$build/configure.log" 2>&1 ||
  { cat "$build/configure.log" >&2; echo "leuko: cmake configure failed (log above)" >&2; exit 1; }
grep -E "leuko:" "$build/configure.log" | sed 's/^-- //' >&2 || true
cmake --build "$build" -j "$(nproc)"
