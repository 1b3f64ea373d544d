#!/usr/bin/env bash
# Installs what logship needs to build and test on Debian 12. Idempotent; quiet when all is there.
set -euo pipefail
pkgs=(build-essential cmake ninja-build pkg-config git ca-certificates openssl curl
      libboost-dev libboost-system-dev libcurl4-openssl-dev libssl-dev libsimdjson-dev
      libspdlog-dev libfmt-dev doctest-dev libyaml-cpp-dev libcli11-dev libzstd-dev
      libdeflate-dev libisal-dev libre2-dev libxxhash-dev zlib1g-dev python3 procps
      python3-cryptography ruby ruby-aws-sdk-s3 ruby-aws-sdk-kms  # S3 encryption test peers
      zstd)  # the disk buffer test decompresses whatever it finds on disk, looking for clear text
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# Node.js test peers (tests/package.json + lock file). Node 20 + npm ship with the machine image.
if [ "${LOGSHIP_SKIP_NPM:-0}" != 1 ] && [ -f "$(dirname "$0")/../tests/package-lock.json" ]; then
  tdir="$(cd "$(dirname "$0")/../tests" && pwd)"
  if [ ! -d "$tdir/node_modules" ] || [ "$tdir/package-lock.json" -nt "$tdir/node_modules/.package-lock.json" ]; then
    command -v npm >/dev/null || { echo "npm is required for the test peers (Node 20 + npm)"; exit 1; }
    (cd "$tdir" && npm ci --no-audit --no-fund --loglevel=error)
  fi
fi
