#!/usr/bin/env bash
# Builds and runs the formats benchmark (optimised, independent of any CMake build dir).
# Usage: bench/formats/run.sh [MiB of decompressed data, default 200] [repetitions, default 3]
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
out="${TMPDIR:-/tmp}/logship_formats_bench"
set -x
g++ -std=c++20 -O2 -DNDEBUG -Wall -Wextra -I"$root" -o "$out" \
  "$root/bench/formats/formats_bench.cpp" "$root"/plugins/formats/*.cpp \
  "$root/plugins/sources/file/decode_timestamp.cpp" \
  $(pkg-config --cflags --libs libisal libzstd) -lsimdjson -lz
set +x
echo "$ $out ${1:-200} ${2:-3}   # $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)"
"$out" "${1:-200}" "${2:-3}"
