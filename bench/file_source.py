#!/usr/bin/env python3
"""Benchmark of the `file` source: read + split + checkpoint into a `blackhole` sink.

Scenarios (each file read from the beginning by a fresh logship):
  one-large  one file of JSON lines (~250 B) of --mib MiB (default 1024 = 1 GiB)
  many       --files files (default 1000) of --file-mib MiB (default 1) each

Measured from the start of logship until logship_component_sent_events_total{component_id=sink}
reaches the line count: MiB of input per second, lines/s, CPU seconds per GiB (user + system of the
logship process), peak RSS (VmHWM). One line per scenario, and a JSON record under bench/results/.

  python3 bench/file_source.py [--mib 1024] [--files 1000] [--file-mib 1] [--threads N]
                               [--scenario one-large|many|all] [--keep]
Target: >= 800 MiB/s per core for read + split of one large file.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402


def write_files(workdir, scenario, args):
    logdir = os.path.join(workdir, "logs")
    os.makedirs(logdir, exist_ok=True)
    if scenario == "one-large":
        lines, size = common.make_json_log(os.path.join(logdir, "big.log"), args.mib * 2**20)
        return logdir, lines, size, 1
    # many: generate one file, copy it (same content, different files: identity by inode/path;
    # the first bytes differ per file so identical-header handling is not what is measured).
    proto = os.path.join(workdir, "proto.json")
    common.make_json_log(proto, args.file_mib * 2**20)
    with open(proto, "rb") as f:
        body = f.read()
    body = body[: body.rfind(b"\n", 0, args.file_mib * 2**20 - 100) + 1]  # ~file_mib MiB, whole lines
    lines = body.count(b"\n")
    total_lines, total = 0, 0
    for i in range(args.files):
        head = (json.dumps({"file": i, "msg": "file header line for a distinct fingerprint"}) + "\n").encode()
        with open(os.path.join(logdir, f"f{i:05d}.log"), "wb") as f:
            f.write(head)
            f.write(body)
        total_lines += lines + 1
        total += len(head) + len(body)
    os.unlink(proto)
    return logdir, total_lines, total, args.files


def run(scenario, args):
    workdir = tempfile.mkdtemp(prefix=f"logship-bench-file-{scenario}-")
    try:
        t_gen = time.monotonic()
        logdir, lines, size, files = write_files(workdir, scenario, args)
        gen_s = time.monotonic() - t_gen
        # Drop nothing from the page cache: the measured path is read + split + checkpoint from
        # cached data (as when tailing a file being written), not disk speed.
        port = common.free_port()
        src = {"type": "file", "include": [logdir + "/*.log"], "scan_interval": "200ms"}
        if scenario == "many":
            src["max_open_files"] = max(1024, files + 16)
        cfg = {"data_dir": os.path.join(workdir, "data"), "admin": {"address": f"127.0.0.1:{port}"},
               "sources": {"app": src},
               "sinks": {"bh": {"type": "blackhole", "inputs": ["app"], "print_interval": "0"}}}
        if args.threads:
            cfg["threads"] = args.threads
        cfg_path = os.path.join(workdir, "logship.yaml")
        with open(cfg_path, "w") as f:
            json.dump(cfg, f, indent=2)
        cmd = [common.BIN, "run", "-c", cfg_path]
        log = open(os.path.join(workdir, "logship.log"), "wb")
        t0 = time.monotonic()
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        sent, last_sent, last_change = 0, -1, time.monotonic()
        try:
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"logship exited with {proc.returncode}")
                sent = common.metric(port, "logship_component_sent_events_total", component_id="bh") or 0
                now = time.monotonic()
                if sent >= lines:
                    break
                if sent != last_sent:
                    last_sent, last_change = sent, now
                elif now - last_change > 60:
                    raise RuntimeError(f"stalled at {sent:.0f} of {lines} events")
                time.sleep(0.005)
            elapsed = time.monotonic() - t0
            cpu = common.proc_cpu_seconds(proc.pid)
            rss = common.proc_peak_rss_mib(proc.pid)
            # Checkpoint reached the end once delivery is done (coalesced every 100 ms).
        finally:
            proc.terminate()
            proc.wait(timeout=30)
            log.close()
        mib = size / 2**20
        result = {
            "command": " ".join(cmd) + f"   # {scenario}: {files} file(s), {mib:.0f} MiB, {lines} lines",
            "config": cfg, "files": files, "input_mib": round(mib, 1), "lines": lines,
            "elapsed_s": round(elapsed, 3), "mib_per_s": round(mib / elapsed, 1),
            "lines_per_s": round(lines / elapsed), "cpu_s": round(cpu, 2),
            "cpu_s_per_gib": round(cpu / (mib / 1024), 2), "mib_per_cpu_s": round(mib / cpu, 1) if cpu else None,
            "peak_rss_mib": round(rss, 1), "generation_s": round(gen_s, 1), "binary": common.BIN,
        }
        path = common.record(f"file-source-{scenario}", result)
        print(f"file-source {scenario:9s}: {mib:7.0f} MiB {files:5d} file(s) in {elapsed:6.2f}s = "
              f"{result['mib_per_s']:7.1f} MiB/s, {result['lines_per_s']:9d} lines/s, "
              f"CPU {result['cpu_s_per_gib']:.2f} s/GiB ({result['mib_per_cpu_s']} MiB per CPU-s), "
              f"peak RSS {rss:.1f} MiB  [{path}]")
        print(f"  command: {result['command']}")
        return result
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mib", type=int, default=1024, help="size of the one large file (MiB)")
    ap.add_argument("--files", type=int, default=1000)
    ap.add_argument("--file-mib", type=int, default=1)
    ap.add_argument("--threads", type=int, default=0, help="logship `threads` (default: logship's own)")
    ap.add_argument("--scenario", choices=["one-large", "many", "all"], default="all")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    args = ap.parse_args()
    print(f"machine: {common.machine()}  binary: {common.BIN}")
    for s in (["one-large", "many"] if args.scenario == "all" else [args.scenario]):
        run(s, args)


if __name__ == "__main__":
    main()
