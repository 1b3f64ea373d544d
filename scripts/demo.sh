#!/usr/bin/env bash
# The demo: no Splunk needed. Builds logship, then runs
#   receiver:  logship (splunk_hec source on https://127.0.0.1:18088 -> file sink)
#   forwarder: logship (file source tailing demo-run/logs/app.log -> splunk_hec sink, HTTPS,
#              gzip, certificate verified through tls.ca_file)
#   generator: appends JSON log lines to demo-run/logs/app.log
# and prints progress every second from the forwarder's /metrics.
# DEMO_SECONDS (default 30; 0 = until Ctrl-C), DEMO_RATE lines/s (default 0 = as fast as possible).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
LOGSHIP_BUILD_TARGETS=logship bash "$root/scripts/build.sh"
exec python3 "$root/scripts/demo.py" "$root"
