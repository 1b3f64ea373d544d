#!/usr/bin/env python3
"""HEC sink throughput: a JSON log file (~250-byte events) read from the beginning by the `file`
source and sent by the `splunk_hec` sink over TLS to an nginx HEC blackhole, with compression
none and gzip level 1. Prints MiB/s of event text, events/s, CPU seconds of the logship process
per GiB, peak RSS, and the curl upload limit of the same bytes to the same receiver.

  bench/install.sh && bench/hec_sink.py [--mib 512] [--compression none,gzip]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
import common  # noqa: E402


def run_one(tmp, logfile, events, text_bytes, nginx, cert, compression, level):
    admin = common.free_port()
    data_dir = tempfile.mkdtemp(dir=tmp, prefix="data-")
    token = os.path.join(tmp, "token")
    with open(token, "w") as f:
        f.write("00000000-0000-0000-0000-000000000000\n")
    os.chmod(token, 0o600)
    cfg = {
        "data_dir": data_dir,
        "admin": {"address": f"127.0.0.1:{admin}"},
        "sources": {"app": {"type": "file", "include": [logfile], "sourcetype": "app:json"}},
        "sinks": {"hec": {
            "type": "splunk_hec", "inputs": ["app"], "endpoints": [f"https://127.0.0.1:{nginx.port}"],
            "token_file": token, "compression": compression, "compression_level": level,
            "acknowledgements": {"enabled": False}, "tls": {"ca_file": cert}}},
    }
    # Experiments: extra sink keys as JSON, e.g. LOGSHIP_BENCH_SINK_EXTRA='{"request":{"concurrency":1}}'
    cfg["sinks"]["hec"].update(json.loads(os.environ.get("LOGSHIP_BENCH_SINK_EXTRA", "{}")))
    cfg_path = os.path.join(tmp, f"bench-{compression}.yaml")
    with open(cfg_path, "w") as f:
        json.dump(cfg, f, indent=1)
    cmd = [common.BIN, "run", "-c", cfg_path]
    before_requests, before_bytes = nginx.received_bytes()
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=open(os.path.join(tmp, "logship.log"), "a"))
    try:
        while True:
            sent = common.metric(admin, "logship_component_sent_events_total", component_id="hec")
            if sent is not None and sent >= events:
                break
            if proc.poll() is not None:
                raise RuntimeError("logship exited early: see " + os.path.join(tmp, "logship.log"))
            if time.monotonic() - t0 > 900:
                raise RuntimeError(f"timed out: {sent} of {events} events sent")
            time.sleep(0.02)
        wall = time.monotonic() - t0
        cpu = common.proc_cpu_seconds(proc.pid)
        rss = common.proc_peak_rss_mib(proc.pid)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    requests, body_bytes = nginx.received_bytes()
    gib = text_bytes / 2**30
    return {
        "compression": compression if compression == "none" else f"gzip-{level}",
        "events": events, "text_bytes": text_bytes, "seconds": round(wall, 3),
        "mib_per_s": round(text_bytes / 2**20 / wall, 1), "events_per_s": round(events / wall),
        "cpu_seconds": round(cpu, 2), "cpu_s_per_gib": round(cpu / gib, 2), "peak_rss_mib": round(rss, 1),
        "requests": requests - before_requests, "body_bytes": body_bytes - before_bytes,
        "command": " ".join(cmd),
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mib", type=int, default=512, help="size of the generated log (MiB)")
    ap.add_argument("--compression", default="none,gzip")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="logship-bench-")
    logfile = os.path.join(tmp, "app.log")
    events, text_bytes = common.make_json_log(logfile, args.mib * 2**20)
    # Event text excludes the newline, as the sink's sent_bytes counts it.
    text_only = text_bytes - events
    cert, key = common.make_cert(tmp)
    nginx = common.NginxBlackhole(tmp, cert, key)
    try:
        limit = common.curl_upload_limit(logfile, nginx.port, cert)
        print(f"curl upload limit (same bytes, same receiver, TLS): {limit:.0f} MiB/s")
        for c in args.compression.split(","):
            r = run_one(tmp, logfile, events, text_only, nginx, cert, "none" if c == "none" else "gzip", 1)
            r["curl_limit_mib_per_s"] = round(limit, 1)
            r["ratio_to_curl"] = round(r["mib_per_s"] / limit, 3)
            path = common.record(f"hec-sink-{r['compression']}", r)
            print(f"hec-sink {r['compression']:>6}: {r['mib_per_s']:7.1f} MiB/s  {r['events_per_s']:>9,} events/s  "
                  f"{r['cpu_s_per_gib']:5.2f} CPU s/GiB  peak RSS {r['peak_rss_mib']:.1f} MiB  "
                  f"({r['events']:,} events, {r['seconds']} s, {r['requests']} requests, "
                  f"{r['ratio_to_curl']:.2f}x curl)  -> {os.path.relpath(path, common.ROOT)}")
        print(f"command: {r['command']} (config in {tmp})")
    finally:
        nginx.stop()


if __name__ == "__main__":
    main()
