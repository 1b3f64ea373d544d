#!/usr/bin/env python3
"""Benchmark of the `s3` source: objects from a local S3 server (npm s3rver on 127.0.0.1) through
ranged GETs, gzip (ISA-L) and the format parser into a `blackhole` sink.

Scenarios:
  cloudtrail  CloudTrail .json.gz files of --records records (~1.3 KiB each, realistic shapes),
              --mib MiB decompressed in all
  vpcflow     VPC flow v2 .log.gz files of --rows rows, --mib MiB decompressed in all

Measured from the start of logship until logship_s3_objects_total{status="done"} reaches the
object count: decompressed MiB/s, events/s, CPU seconds of the logship process per GiB of
decompressed input, decompressed MiB per CPU-second, peak RSS (VmHWM). One line per scenario and
a JSON record under bench/results/. Needs `npm ci` in tests/ (packaging/install-deps.sh does it).

  python3 bench/s3_source.py [--scenario cloudtrail|vpcflow|all] [--mib 512] [--threads N]
  python3 bench/s3_source.py --scenario cloudtrail --encrypted-vs-plain [--repeat 2]
Target (issue 5): >= 300 MiB/s decompressed per core for CloudTrail end to end.

--encrypted-vs-plain runs the same objects (same seed) plaintext and client-side encrypted (S3
Encryption Client v2, AES-256-GCM content, a fresh data key per object wrapped `kms+context` by
the KMS test server of tests/integration, which runs in this process), alternately, and prints the
ratio of the medians: the cost of decryption (spool, tag verification, decryption, one KMS call per
object). Target (issue 11): <= 10 %. LOGSHIP_PERF=<file> records the encrypted runs with
`perf record -g` into that file (a profile of where decryption's cost goes).
"""
import argparse
import gzip
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

ROOT = common.ROOT
PEER = os.path.join(ROOT, "tests", "integration", "s3peer.js")
ACCOUNT = "111122223333"


def ct_records(rnd, n, t0, file_no):
    users = ["alice", "bob", "deploy-bot", "ci-runner", "o'brien"]
    names = [("s3.amazonaws.com", "GetObject"), ("ec2.amazonaws.com", "DescribeInstances"),
             ("iam.amazonaws.com", "CreateAccessKey"), ("sts.amazonaws.com", "AssumeRole"),
             ("kms.amazonaws.com", "Decrypt"), ("lambda.amazonaws.com", "Invoke")]
    out = []
    for i in range(n):
        src, name = names[rnd.randrange(len(names))]
        user = users[rnd.randrange(len(users))]
        t = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t0 + i))
        out.append({
            "eventVersion": "1.09",
            "userIdentity": {"type": "AssumedRole", "principalId": f"AROAEXAMPLE{rnd.randrange(10**8)}:{user}",
                             "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/Admin/{user}", "accountId": ACCOUNT,
                             "accessKeyId": f"ASIAEXAMPLE{rnd.randrange(10**6)}",
                             "sessionContext": {"sessionIssuer": {"type": "Role", "principalId": "AROAEXAMPLE",
                                                                  "arn": f"arn:aws:iam::{ACCOUNT}:role/Admin",
                                                                  "accountId": ACCOUNT, "userName": "Admin"},
                                                "attributes": {"creationDate": t, "mfaAuthenticated": "true"}}},
            "eventTime": t, "eventSource": src, "eventName": name, "awsRegion": "us-east-1",
            "sourceIPAddress": f"198.51.100.{rnd.randrange(256)}",
            "userAgent": "aws-sdk-go-v2/1.24.0 os/linux lang/go#1.21.5 md/GOOS#linux api/s3#1.47.7",
            "requestParameters": {"bucketName": "prod-data", "key": f"exports/2026/{rnd.randrange(10**6)}.parquet",
                                  "Host": "prod-data.s3.us-east-1.amazonaws.com"},
            "responseElements": None,
            "additionalEventData": {"SignatureVersion": "SigV4", "CipherSuite": "TLS_AES_128_GCM_SHA256",
                                    "bytesTransferredIn": 0, "bytesTransferredOut": rnd.randrange(10**7),
                                    "x-amz-id-2": "Xa8fGq2c/EXAMPLE/ZW1wbGU="},
            "requestID": f"{rnd.getrandbits(64):016X}", "eventID": f"{file_no:05d}-{i:05d}-{rnd.getrandbits(32):08x}",
            "readOnly": True, "resources": [{"type": "AWS::S3::Object", "ARN": "arn:aws:s3:::prod-data/exports"}],
            "eventType": "AwsApiCall", "managementEvent": False, "recipientAccountId": ACCOUNT,
            "eventCategory": "Data", "tlsDetails": {"tlsVersion": "TLSv1.3", "cipherSuite": "TLS_AES_128_GCM_SHA256",
                                                    "clientProvidedHostHeader": "prod-data.s3.us-east-1.amazonaws.com"},
        })
    return out


def write_objects(workdir, target, per_file, make_body, make_key):
    """gzip objects of `per_file` events until `target` bytes of raw text: (manifest, bytes, events)."""
    items, raw, events, i = [], 0, 0, 0
    while raw < target:
        body = make_body(i)
        path = os.path.join(workdir, f"obj{i}.gz")
        with open(path, "wb") as f:
            f.write(gzip.compress(body, 6))
        items.append({"bucket": "logs", "key": make_key(i), "file": path})
        raw += len(body)
        events += per_file
        i += 1
    return items, raw, events


def stamp(i):
    return f"20261128T{i // 60 % 24:02d}{i % 60:02d}Z_{i:06d}"


def make_cloudtrail(workdir, target, per_file, seed=7):
    rnd = random.Random(seed)
    t0 = int(time.time()) - 3600
    return write_objects(
        workdir, target, per_file,
        lambda i: json.dumps({"Records": ct_records(rnd, per_file, t0, i)}).encode(),
        lambda i: f"AWSLogs/{ACCOUNT}/CloudTrail/us-east-1/2026/11/28/{ACCOUNT}_CloudTrail_us-east-1_{stamp(i)}.json.gz")


def make_vpcflow(workdir, target, per_file, seed=7):
    rnd = random.Random(seed)
    t0 = int(time.time()) - 3600
    header = ("version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end "
              "action log-status")

    def body(_):
        rows = [header]
        for j in range(per_file):
            rows.append(f"2 {ACCOUNT} eni-{rnd.getrandbits(32):08x} 10.{rnd.randrange(256)}.{rnd.randrange(256)}."
                        f"{rnd.randrange(256)} 172.31.{rnd.randrange(256)}.{rnd.randrange(256)} "
                        f"{rnd.randrange(65536)} {rnd.choice([443, 80, 22, 5432])} 6 {rnd.randrange(1, 500)} "
                        f"{rnd.randrange(40, 10**6)} {t0 + j} {t0 + j + 60} {rnd.choice(['ACCEPT', 'REJECT'])} OK")
        return ("\n".join(rows) + "\n").encode()

    return write_objects(
        workdir, target, per_file, body,
        lambda i: f"AWSLogs/{ACCOUNT}/vpcflowlogs/us-east-1/2026/11/28/{ACCOUNT}_vpcflowlogs_us-east-1_fl-0abc_{stamp(i)}.log.gz")


def serve(workdir, items):
    """s3rver on 127.0.0.1 holding `items` (the generated files are removed once stored):
    (server process, endpoint URL)."""
    s3port = common.free_port()
    env = dict(os.environ, NODE_OPTIONS="--openssl-legacy-provider", NODE_NO_WARNINGS="1")
    slog = open(os.path.join(workdir, "s3rver.log"), "wb")
    server = subprocess.Popen(["node", PEER, "serve", str(s3port), os.path.join(workdir, "s3"), "logs"],
                              cwd=os.path.join(ROOT, "tests"), stdout=slog, stderr=subprocess.STDOUT, env=env)
    for _ in range(300):
        with open(os.path.join(workdir, "s3rver.log"), "rb") as f:
            if b"ready" in f.read():
                break
        time.sleep(0.1)
    manifest = os.path.join(workdir, "manifest.json")
    with open(manifest, "w") as f:
        json.dump(items, f)
    endpoint = f"http://127.0.0.1:{s3port}"
    subprocess.run(["node", PEER, "put", endpoint, manifest], cwd=os.path.join(ROOT, "tests"), check=True,
                   capture_output=True, env=env)
    for it in items:
        os.unlink(it["file"])
    return server, endpoint


def run(scenario, args, record=True):
    workdir = tempfile.mkdtemp(prefix=f"logship-bench-s3-{scenario}-")
    server = None
    try:
        t_gen = time.monotonic()
        if scenario == "cloudtrail":
            items, raw, events = make_cloudtrail(workdir, args.mib * 2**20, args.records)
        else:
            items, raw, events = make_vpcflow(workdir, args.mib * 2**20, args.rows)
        if getattr(args, "encrypted", False):
            encrypt_items(items, args.kms)
        compressed = sum(os.path.getsize(it["file"]) for it in items)
        gen_s = time.monotonic() - t_gen
        server, endpoint = serve(workdir, items)
        port = common.free_port()
        src = {"type": "s3", "mode": "poll", "bucket": "logs", "endpoint": endpoint, "region": "us-east-1",
               "format": scenario, "prefix": f"AWSLogs/{ACCOUNT}/", "poll_interval": "1s",
               "max_concurrent_objects": args.concurrency,
               "credentials": {"access_key_id": "S3RVER", "secret_access_key": "S3RVER"}}
        if getattr(args, "encrypted", False):
            src["kms_endpoint"] = args.kms.url
            src["client_side_encryption"] = {"required": True, "encryption_context": {"purpose": "bench"}}
        cfg = {"data_dir": os.path.join(workdir, "data"), "admin": {"address": f"127.0.0.1:{port}"},
               "sources": {"s3": src},
               "sinks": {"bh": {"type": "blackhole", "inputs": ["s3"], "print_interval": "0"}}}
        if args.threads:
            cfg["threads"] = args.threads
        cfg_path = os.path.join(workdir, "logship.yaml")
        with open(cfg_path, "w") as f:
            json.dump(cfg, f, indent=2)
        cmd = [common.BIN, "run", "-c", cfg_path]
        if os.environ.get("LOGSHIP_PERF") and getattr(args, "encrypted", False):
            cmd = ["perf", "record", "-e", "cpu-clock", "-F", "4999", "-g", "-o", os.environ["LOGSHIP_PERF"], "--"] + cmd
        penv = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        penv["AWS_EC2_METADATA_DISABLED"] = "true"
        log = open(os.path.join(workdir, "logship.log"), "wb")
        t0 = time.monotonic()
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=penv)
        n = len(items)
        try:
            last, last_change = -1, time.monotonic()
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"logship exited with {proc.returncode}")
                done = common.metric(port, "logship_s3_objects_total", component_id="s3", status="done") or 0
                sent = common.metric(port, "logship_component_sent_events_total", component_id="bh") or 0
                now = time.monotonic()
                if done >= n and sent >= events:
                    break
                if sent != last:
                    last, last_change = sent, now
                elif now - last_change > 60:
                    raise RuntimeError(f"stalled at {done:.0f}/{n} objects, {sent:.0f} events")
                time.sleep(0.01)
            elapsed = time.monotonic() - t0
            cpu = common.proc_cpu_seconds(proc.pid)
            rss = common.proc_peak_rss_mib(proc.pid)
            failed = common.metric(port, "logship_s3_objects_total", component_id="s3", status="failed") or 0
            decrypted = common.metric(port, "logship_s3_objects_decrypted_total", component_id="s3") or 0
            kms_calls = common.metric(port, "logship_s3_kms_calls_total", component_id="s3") or 0
        finally:
            proc.terminate()
            proc.wait(timeout=30)
            log.close()
        mib = raw / 2**20
        result = {
            "command": " ".join(cmd) + f"   # {scenario}: {n} objects, {mib:.0f} MiB decompressed, "
                                       f"{compressed / 2**20:.0f} MiB compressed, {events} events",
            "config": cfg, "objects": n, "decompressed_mib": round(mib, 1),
            "compressed_mib": round(compressed / 2**20, 1), "events": events, "failed_objects": failed,
            "elapsed_s": round(elapsed, 3), "mib_per_s": round(mib / elapsed, 1),
            "events_per_s": round(events / elapsed), "cpu_s": round(cpu, 2),
            "cpu_s_per_gib": round(cpu / (mib / 1024), 2), "mib_per_cpu_s": round(mib / cpu, 1) if cpu else None,
            "peak_rss_mib": round(rss, 1), "generation_s": round(gen_s, 1), "binary": common.BIN,
            "encrypted": bool(getattr(args, "encrypted", False)), "decrypted_objects": decrypted,
            "kms_calls": kms_calls,
        }
        if result["encrypted"] and decrypted != n:
            raise RuntimeError(f"{decrypted:.0f} of {n} objects decrypted")
        if not record:
            return result
        path = common.record(f"s3-{scenario}", result)
        print(f"s3 {scenario:10s}: {n:4d} objects, {mib:6.0f} MiB decompressed in {elapsed:6.2f}s = "
              f"{result['mib_per_s']:7.1f} MiB/s, {result['events_per_s']:8d} events/s, "
              f"CPU {result['cpu_s_per_gib']:.2f} s/GiB ({result['mib_per_cpu_s']} MiB per CPU-s), "
              f"peak RSS {rss:.1f} MiB  [{path}]")
        print(f"  command: {result['command']}")
        return result
    finally:
        if server and server.poll() is None:
            server.terminate()
            server.wait(timeout=10)
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)


def encrypt_items(items, kms):
    """Client-side encrypts every object file in place (v2 kms+context, a data key per object)."""
    import s3ec
    for it in items:
        with open(it["file"], "rb") as f:
            body = f.read()
        enc = s3ec.encrypt_v2_kms_context(body, kms, "bench-key", context={"purpose": "bench"})
        with open(it["file"], "wb") as f:
            f.write(enc.body)
        it["metadata"] = enc.metadata


def encrypted_vs_plain(scenario, args):
    """The same objects plaintext and encrypted, alternately; the ratio of the medians."""
    sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
    from kmspeer import KmsPeer
    kms = KmsPeer(keys=["bench-key"], access_key="S3RVER", secret="S3RVER").start()
    runs = {False: [], True: []}
    try:
        for _ in range(args.repeat):
            for enc in (False, True):
                a = argparse.Namespace(**vars(args))
                a.encrypted, a.kms = enc, kms
                runs[enc].append(run(scenario, a, record=False))
    finally:
        kms.stop()

    def med(rs, k):
        v = sorted(r[k] for r in rs)
        return v[len(v) // 2] if len(v) % 2 else (v[len(v) // 2 - 1] + v[len(v) // 2]) / 2

    out = {}
    for enc, rs in runs.items():
        label = "encrypted" if enc else "plaintext"
        for r in rs:
            print(f"s3 {scenario} {label:9s}: {r['mib_per_s']:7.1f} MiB/s, CPU {r['cpu_s_per_gib']:.2f} s/GiB "
                  f"({r['mib_per_cpu_s']} MiB per CPU-s), peak RSS {r['peak_rss_mib']:.1f} MiB, "
                  f"{r['objects']} objects, {r['compressed_mib']} MiB on S3, KMS calls {r['kms_calls']:.0f}")
        out[label] = {k: med(rs, k) for k in ("mib_per_s", "cpu_s_per_gib", "mib_per_cpu_s", "peak_rss_mib")}
        out[label]["runs"] = rs
    p, e = out["plaintext"], out["encrypted"]
    out["throughput_ratio"] = round(e["mib_per_s"] / p["mib_per_s"], 3)
    out["cpu_ratio"] = round(e["cpu_s_per_gib"] / p["cpu_s_per_gib"], 3)
    path = common.record(f"s3-{scenario}-encrypted-vs-plain", out)
    print(f"encrypted / plaintext (medians of {args.repeat}): throughput x{out['throughput_ratio']}, "
          f"CPU per GiB x{out['cpu_ratio']}, peak RSS {e['peak_rss_mib']:.1f} vs {p['peak_rss_mib']:.1f} MiB  [{path}]")
    print(f"  command: python3 bench/s3_source.py --scenario {scenario} --encrypted-vs-plain --mib {args.mib} "
          f"--repeat {args.repeat}")
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenario", choices=["cloudtrail", "vpcflow", "all"], default="all")
    ap.add_argument("--mib", type=int, default=512, help="decompressed MiB per scenario")
    ap.add_argument("--records", type=int, default=2000, help="CloudTrail records per file")
    ap.add_argument("--rows", type=int, default=20000, help="VPC flow rows per file")
    ap.add_argument("--concurrency", type=int, default=4, help="max_concurrent_objects")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--encrypted-vs-plain", action="store_true",
                    help="the same objects plaintext and client-side encrypted, alternately")
    ap.add_argument("--repeat", type=int, default=2, help="runs of each kind (--encrypted-vs-plain)")
    args = ap.parse_args()
    print(f"machine: {common.machine()}  binary: {common.BIN}")
    if args.encrypted_vs_plain:
        for s in (["cloudtrail", "vpcflow"] if args.scenario == "all" else [args.scenario]):
            encrypted_vs_plain(s, args)
        return
    for s in (["cloudtrail", "vpcflow"] if args.scenario == "all" else [args.scenario]):
        run(s, args)


if __name__ == "__main__":
    main()
