"""Shared pieces of the benchmarks: data generation, an nginx HEC blackhole over TLS, process
measurement (CPU seconds, peak RSS) and result recording. Everything runs on 127.0.0.1."""
import json
import os
import platform
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
BIN = os.environ.get("LOGSHIP_BIN", os.path.join(ROOT, "build", "logship"))
HEC_SUCCESS = '{"text":"Success","code":0}'


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def machine():
    model = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {"cores": os.cpu_count(), "cpu": model, "kernel": platform.release()}


def git_commit():
    try:
        return subprocess.run(["git", "-C", ROOT, "rev-parse", "--short=12", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def make_json_log(path, target_bytes, seed=42):
    """Deterministic JSON application log lines of about 250 bytes (emails and IPs included)."""
    rnd = random.Random(seed)
    users = [f"user{i}@example.com" for i in range(500)]
    paths = ["/api/v1/items", "/api/v1/orders", "/login", "/health", "/api/v2/search"]
    written, n = 0, 0
    with open(path, "w") as f:
        while written < target_bytes:
            chunk = []
            for _ in range(10000):
                line = json.dumps({
                    "ts": "2026-11-27T12:%02d:%02d.%03dZ" % (n // 60000 % 60, n // 1000 % 60, n % 1000),
                    "level": rnd.choice(["info", "info", "info", "warn", "error"]), "seq": n,
                    "user": rnd.choice(users), "client_ip": "10.%d.%d.%d" % (rnd.randrange(256), rnd.randrange(256), rnd.randrange(256)),
                    "method": rnd.choice(["GET", "POST"]), "path": rnd.choice(paths), "status": rnd.choice([200, 200, 201, 404, 500]),
                    "duration_ms": rnd.randrange(1000), "msg": "request served",
                    "trace_id": "%032x" % rnd.getrandbits(128)}, separators=(",", ":"))
                chunk.append(line + "\n")
                n += 1
            s = "".join(chunk)
            f.write(s)
            written += len(s)
    return n, written


def make_cert(directory):
    cert, key = os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout", key, "-out", cert],
                   check=True, capture_output=True)
    os.chmod(key, 0o600)
    return cert, key


class NginxBlackhole:
    """nginx answering every HEC POST with the success body over TLS; the body is discarded
    unread, so bytes are counted from $content_length in the access log."""

    def __init__(self, workdir, cert, key, workers=1):
        self.dir = workdir
        self.port = free_port()
        self.access_log = os.path.join(workdir, "access.log")
        conf = os.path.join(workdir, "nginx.conf")
        with open(conf, "w") as f:
            f.write(f"""
worker_processes {workers};
daemon off;
pid {workdir}/nginx.pid;
error_log {workdir}/error.log warn;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  log_format bytes '$status $content_length';
  client_body_temp_path {workdir}/body;
  keepalive_requests 1000000;
  server {{
    listen 127.0.0.1:{self.port} ssl;
    ssl_certificate {cert};
    ssl_certificate_key {key};
    ssl_protocols TLSv1.2 TLSv1.3;
    client_max_body_size 0;
    location /services/collector {{
      access_log {self.access_log} bytes;
      default_type application/json;
      return 200 '{HEC_SUCCESS}';
    }}
  }}
}}
""")
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        self.proc = subprocess.Popen([nginx, "-c", conf, "-e", os.path.join(workdir, "error.log")],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("nginx did not start: " + open(os.path.join(workdir, "error.log")).read())

    def received_bytes(self):
        total, n = 0, 0
        try:
            with open(self.access_log) as f:
                for line in f:
                    parts = line.split()
                    if len(parts) == 2 and parts[1].isdigit():
                        total += int(parts[1])
                        n += 1
        except FileNotFoundError:
            pass
        return n, total

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)


def proc_cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks  # utime + stime


def proc_peak_rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return 0.0


def metric(port, name, **labels):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
            text = r.read().decode()
    except OSError:
        return None
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{"):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def curl_upload_limit(path, port, cacert):
    """One curl upload of the same bytes over TLS to the same receiver: the transport limit."""
    r = subprocess.run(["curl", "-s", "-o", "/dev/null", "--cacert", cacert, "-T", path, "-X", "POST", "-H", "Expect:",
                        "-w", "%{size_upload} %{time_total}", f"https://127.0.0.1:{port}/services/collector/event"],
                       capture_output=True, text=True, check=True)
    size, secs = r.stdout.split()
    return float(size) / float(secs) / 2**20


def record(name, result):
    os.makedirs(os.path.join(ROOT, "bench", "results"), exist_ok=True)
    result.update({"scenario": name, "commit": git_commit(), "machine": machine(),
                   "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
    path = os.path.join(ROOT, "bench", "results", f"{name}-{time.strftime('%Y%m%dT%H%M%S')}.json")
    with open(path, "w") as f:
        json.dump(result, f, indent=2)
    return path
