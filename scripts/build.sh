#!/usr/bin/env bash
# Installs what is missing (packaging/install-deps.sh) and builds logship into build/ (Release).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bash "$root/packaging/install-deps.sh"
cmake -S "$root" -B "$root/build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo ${LOGSHIP_CMAKE_ARGS:-} >/dev/null
ninja -C "$root/build" ${LOGSHIP_BUILD_TARGETS:-}
