#!/usr/bin/env bash
# Installs the Debian packages leuko needs when they are missing, or prints the exact
# apt-get line when it cannot (not root and no sudo). Sourced by run.sh and test.sh.
#   tools/deps.sh            what building leuko needs
#   tools/deps.sh --tests    that, and what the tests need
#   tools/deps.sh --fuzz     that, and clang with libFuzzer and OpenMP (tools/fuzz.sh)
#   tools/deps.sh --python   that, and Debian's CPU PyTorch and torchvision for /usr/bin/python3
#                            (tests/tools/python_tools.sh runs the Python tools with them)
set -euo pipefail

# header (found in a standard include path) -> Debian package
need=(
  "nlohmann/json.hpp:nlohmann-json3-dev"
  "CLI/CLI.hpp:libcli11-dev"
  "stb/stb_image.h:libstb-dev"
)
[ "${1:-}" = "--tests" ] && need+=("doctest/doctest.h:doctest-dev")

missing=()
command -v cmake >/dev/null || missing+=(cmake)
command -v g++ >/dev/null || missing+=(g++)
command -v ninja >/dev/null || missing+=(ninja-build)
if [ "${1:-}" = "--fuzz" ]; then
  # libFuzzer ships in compiler-rt (libclang-rt-<version>-dev) and clang's -fopenmp needs
  # LLVM's libomp: tried by compiling, as the files' paths depend on the clang version.
  if ! command -v clang++ >/dev/null; then
    missing+=(clang libclang-rt-dev libomp-dev)
  else
    probe=$(mktemp -d)
    printf 'extern "C" int LLVMFuzzerTestOneInput(const unsigned char*, unsigned long) { return 0; }\n' >"$probe/f.cpp"
    clang++ -fsanitize=fuzzer,address "$probe/f.cpp" -o "$probe/f" >/dev/null 2>&1 ||
      missing+=("libclang-rt-$(clang++ -dumpversion | cut -d. -f1)-dev")
    printf '#include <omp.h>\nint main() { return omp_get_max_threads() > 0 ? 0 : 1; }\n' >"$probe/o.cpp"
    clang++ -fopenmp "$probe/o.cpp" -o "$probe/o" >/dev/null 2>&1 || missing+=(libomp-dev)
    rm -rf "$probe"
  fi
fi
if [ "${1:-}" = "--python" ] && ! /usr/bin/python3 -c 'import torch, torchvision' 2>/dev/null; then
  missing+=(python3-torch python3-torchvision)
fi
for item in "${need[@]}"; do
  header=${item%%:*} pkg=${item##*:}
  found=0
  for dir in /usr/include /usr/local/include /usr/include/x86_64-linux-gnu; do
    [ -f "$dir/$header" ] && found=1 && break
  done
  [ $found = 1 ] || missing+=("$pkg")
done

[ ${#missing[@]} -eq 0 ] && exit 0
line="apt-get install -y ${missing[*]}"
if [ "$(id -u)" = 0 ]; then
  echo "leuko: installing ${missing[*]}" >&2
  (apt-get install -y -qq "${missing[@]}" >/dev/null 2>&1 ||
    { apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null; }) ||
    { echo "leuko: could not install the packages; run: $line" >&2; exit 1; }
elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
  echo "leuko: installing ${missing[*]} (sudo)" >&2
  sudo apt-get install -y -qq "${missing[@]}" >/dev/null ||
    { sudo apt-get update -qq >/dev/null && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null; } ||
    { echo "leuko: could not install the packages; run: sudo $line" >&2; exit 1; }
else
  echo "leuko: missing packages; run: sudo $line" >&2
  exit 1
fi
