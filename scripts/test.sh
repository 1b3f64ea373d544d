#!/usr/bin/env bash
# Installs, builds and runs every test: unit + integration (ctest), then the unit tests again
# under AddressSanitizer + UBSan (GCC).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
jobs=$(nproc)
bash "$root/packaging/install-deps.sh"
echo "== build (RelWithDebInfo)"
cmake -S "$root" -B "$root/build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
ninja -C "$root/build"
echo "== build (ASan + UBSan unit tests)"
cmake -S "$root" -B "$root/build-asan" -G Ninja -DCMAKE_BUILD_TYPE=Debug -DLOGSHIP_SANITIZE=ON \
      -DLOGSHIP_INTEGRATION_TESTS=OFF >/dev/null
ninja -C "$root/build-asan" unit_tests
echo "== unit tests under ASan + UBSan"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  "$root/build-asan/tests/unit_tests" --no-intro=true
echo "== ctest (unit + integration)"
cd "$root/build"
ctest --output-on-failure -j "$jobs" --timeout 900
