#!/usr/bin/env python3
"""Runs the demo pipeline (see scripts/demo.sh) and prints progress and a summary."""
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request

root = sys.argv[1]
demo = os.path.join(root, "demo-run")
seconds = float(os.environ.get("DEMO_SECONDS", "30"))
rate = float(os.environ.get("DEMO_RATE", "0"))
binary = os.path.join(root, "build", "logship")
os.makedirs(os.path.join(demo, "logs"), exist_ok=True)
os.makedirs(os.path.join(demo, "tls"), exist_ok=True)
for f in ("logs/app.log", "received.jsonl"):
    try:
        os.remove(os.path.join(demo, f))
    except FileNotFoundError:
        pass
subprocess.run(["rm", "-rf", os.path.join(demo, "receiver-data"), os.path.join(demo, "forwarder-data")], check=True)

cert, key = os.path.join(demo, "tls/cert.pem"), os.path.join(demo, "tls/key.pem")
if not os.path.exists(cert):
    print("creating a self-signed certificate for 127.0.0.1 in demo-run/tls/")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "365",
                    "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
                    "-keyout", key, "-out", cert], check=True, capture_output=True)
    os.chmod(key, 0o600)
token = os.path.join(demo, "hec.token")
if not os.path.exists(token):
    with open(token, "w") as f:
        f.write(os.urandom(16).hex() + "\n")
os.chmod(token, 0o600)

env = dict(os.environ, DEMO_DIR=demo)
procs = []


def start(conf, name):
    log = open(os.path.join(demo, name + ".log"), "w")
    p = subprocess.Popen([binary, "run", "-c", os.path.join(root, "conf", conf)], env=env, stdout=log, stderr=log)
    procs.append((name, p))
    return p


def get(url):
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return r.read().decode()
    except OSError:
        return ""


def metric(port, name, component):
    total = 0.0
    for line in get(f"http://127.0.0.1:{port}/metrics").splitlines():
        if line.startswith(name + "{") and f'component_id="{component}"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


start("demo-receiver.yaml", "receiver")
deadline = time.time() + 20
while "ok" not in get("http://127.0.0.1:18090/health") and time.time() < deadline:
    time.sleep(0.1)
start("demo-forwarder.yaml", "forwarder")

stop = threading.Event()
written = [0]


def generate():
    users = ["alice@example.com", "bob@example.org", "carol@example.net"]
    ips = ["10.0.%d.%d" % (i % 250, i % 200) for i in range(1000)]
    with open(os.path.join(demo, "logs", "app.log"), "a") as f:
        i = 0
        t0 = time.time()
        while not stop.is_set():
            chunk = []
            for _ in range(2000):
                chunk.append(json.dumps({
                    "ts": "2026-11-27T12:00:00.%06dZ" % (i % 1000000), "level": "info", "seq": i,
                    "user": users[i % 3], "client_ip": ips[i % 1000], "method": "GET",
                    "path": "/api/v1/items/%d" % (i % 5000), "status": 200, "duration_ms": i % 97,
                    "msg": "request served", "trace_id": "%032x" % (i * 2654435761 % (1 << 128))}) + "\n")
                i += 1
            f.write("".join(chunk))
            f.flush()
            written[0] = i
            if rate:
                ahead = i / rate - (time.time() - t0)
                if ahead > 0:
                    time.sleep(ahead)


gen = threading.Thread(target=generate, daemon=True)
gen.start()
t0 = time.time()
last_t, last_sent, last_bytes = t0, 0.0, 0.0
print("demo: generator -> logship forwarder -> HTTPS/HEC -> logship receiver -> demo-run/received.jsonl")
try:
    while seconds == 0 or time.time() - t0 < seconds:
        time.sleep(1)
        now = time.time()
        sent = metric(18089, "logship_component_sent_events_total", "splunk")
        sbytes = metric(18089, "logship_component_sent_bytes_total", "splunk")
        recv = metric(18090, "logship_component_sent_events_total", "received")
        dt = now - last_t
        print(f"[{now - t0:5.1f}s] written {written[0]:>10,}  forwarded {int(sent):>10,} "
              f"({(sent - last_sent) / dt:>9,.0f} ev/s, {(sbytes - last_bytes) / dt / 1e6:6.1f} MB/s)  "
              f"received {int(recv):>10,}", flush=True)
        last_t, last_sent, last_bytes = now, sent, sbytes
except KeyboardInterrupt:
    pass
stop.set()
gen.join()
# Let the forwarder catch up, then stop both processes gracefully.
deadline = time.time() + 60
while metric(18090, "logship_component_sent_events_total", "received") < written[0] and time.time() < deadline:
    time.sleep(0.2)
elapsed = time.time() - t0
sent = metric(18089, "logship_component_sent_events_total", "splunk")
sbytes = metric(18089, "logship_component_sent_bytes_total", "splunk")
recv = metric(18090, "logship_component_sent_events_total", "received")
for name, p in reversed(procs):
    p.send_signal(signal.SIGTERM)
    p.wait(timeout=30)
print(f"summary: {written[0]:,} lines written, {int(sent):,} forwarded, {int(recv):,} received in {elapsed:.1f}s "
      f"= {sent / elapsed:,.0f} events/s, {sbytes / elapsed / 1e6:.1f} MB/s of event text")
print(f"received events: {os.path.join(demo, 'received.jsonl')}; logs: {demo}/forwarder.log, receiver.log")
sys.exit(0 if recv >= written[0] else 1)
