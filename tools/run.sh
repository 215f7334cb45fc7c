#!/usr/bin/env bash
# The main job: installs what is missing, builds, and runs `leuko demo` (a tensor expression,
# its backward, values and gradients; on the GPU when one is present). Arguments go to leuko.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$root/tools/deps.sh"
"$root/tools/build.sh" -DLEUKO_TESTS=OFF >/dev/null
exec "${LEUKO_BUILD_DIR:-$root/build}/leuko" demo "$@"
