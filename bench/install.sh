#!/usr/bin/env bash
# Installs what the benchmarks need beyond the build (Debian packages only). Idempotent.
set -euo pipefail
bash "$(dirname "$0")/../packaging/install-deps.sh"
pkgs=(nginx-light curl openssl)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # The package starts a system nginx on port 80; the benchmarks run their own.
  systemctl stop nginx 2>/dev/null || service nginx stop 2>/dev/null || pkill -x nginx || true
fi
