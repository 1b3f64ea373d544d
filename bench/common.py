"""Shared pieces of the benchmarks: data generation, an nginx HEC blackhole over TLS, process
measurement (CPU seconds, peak RSS) and result recording. Everything runs on 127.0.0.1."""
import json
import math
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
    mem = ""
    try:
        with open("/proc/meminfo") as f:
            mem = f.readline().split(":", 1)[1].strip()
    except OSError:
        pass
    return {"cores": os.cpu_count(), "cpu": model, "kernel": platform.release(), "mem": mem}


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


def curl_command(path, port, cacert):
    return ["curl", "-s", "-o", "/dev/null", "--cacert", cacert, "-T", path, "-X", "POST", "-H", "Expect:",
            "-w", "%{size_upload} %{time_total}", f"https://127.0.0.1:{port}/services/collector/event"]


def curl_upload_limit(path, port, cacert):
    """One curl upload of the same bytes over TLS to the same receiver: the transport limit."""
    r = subprocess.run(curl_command(path, port, cacert), capture_output=True, text=True, check=True)
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


# ---------------------------------------------------------------------------------------------
# Pieces shared by bench/run (and usable by the older single-purpose scripts).

TOKEN = "00000000-0000-0000-0000-000000000000"


def wait_for_binary(timeout=180):
    """The binary may be rebuilt while the benchmarks run: wait for it to reappear."""
    deadline = time.time() + timeout
    while not (os.path.isfile(BIN) and os.access(BIN, os.X_OK)):
        if time.time() > deadline:
            raise RuntimeError(f"logship binary not found: {BIN} (set LOGSHIP_BIN)")
        print(f"waiting for {BIN} to appear (rebuild in progress?)", file=sys.stderr)
        time.sleep(5)


def write_token(directory):
    path = os.path.join(directory, "token")
    with open(path, "w") as f:
        f.write(TOKEN + "\n")
    os.chmod(path, 0o600)
    return path


def hec_sink_config(inputs, port, cert, token_file, compression="none", level=1, **extra):
    """The `splunk_hec` sink as benchmarked: default batch/request/buffer settings, acks off."""
    sink = {"type": "splunk_hec", "inputs": list(inputs), "endpoints": [f"https://127.0.0.1:{port}"],
            "token_file": token_file, "compression": compression,
            "acknowledgements": {"enabled": False}, "tls": {"ca_file": cert}}
    if compression == "gzip":
        sink["compression_level"] = level
    sink.update(extra)
    return sink


def proc_rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return 0.0


class Logship:
    """One logship process: writes its config (JSON is YAML), starts it, reads its metrics."""

    def __init__(self, workdir, cfg, name="logship"):
        self.workdir = workdir
        self.admin = free_port()
        cfg = dict(cfg)
        cfg.setdefault("data_dir", os.path.join(workdir, name + "-data"))
        cfg["admin"] = {"address": f"127.0.0.1:{self.admin}"}
        self.cfg = cfg
        self.cfg_path = os.path.join(workdir, name + ".yaml")
        with open(self.cfg_path, "w") as f:
            json.dump(cfg, f, indent=2)
        self.cmd = [BIN, "run", "-c", self.cfg_path]
        self.log_path = os.path.join(workdir, name + ".log")
        self.proc = None

    def start(self):
        wait_for_binary()
        self.log = open(self.log_path, "ab")
        self.t0 = time.monotonic()
        self.proc = subprocess.Popen(self.cmd, stdout=self.log, stderr=subprocess.STDOUT)
        return self

    @property
    def pid(self):
        return self.proc.pid

    def check_alive(self):
        if self.proc.poll() is not None:
            tail = open(self.log_path, errors="replace").read()[-2000:]
            raise RuntimeError(f"logship exited with {self.proc.returncode}; log tail:\n{tail}")

    def metric(self, name, **labels):
        return metric(self.admin, name, **labels)

    def wait_ready(self, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.admin}/ready", timeout=1) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError("logship not ready after %ds" % timeout)

    def wait_sent(self, component, target, stall=60, poll=0.01):
        """Waits until sent_events_total{component_id=component} >= target; returns the seconds
        since start. Raises when the counter does not move for `stall` seconds."""
        last, last_change = -1, time.monotonic()
        while True:
            self.check_alive()
            sent = self.metric("logship_component_sent_events_total", component_id=component) or 0
            now = time.monotonic()
            if sent >= target:
                return now - self.t0
            if sent != last:
                last, last_change = sent, now
            elif now - last_change > stall:
                raise RuntimeError(f"stalled at {sent:.0f} of {target} events (log: {self.log_path})")
            time.sleep(poll)

    def cpu(self):
        return proc_cpu_seconds(self.proc.pid)

    def peak_rss(self):
        return proc_peak_rss_mib(self.proc.pid)

    def rss(self):
        return proc_rss_mib(self.proc.pid)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc:
            self.log.close()

    def command(self):
        return " ".join(self.cmd)


def percentile(sorted_values, p):
    if not sorted_values:
        return None
    # Nearest rank: the smallest value with at least p % of the values at or below it.
    k = min(len(sorted_values) - 1, max(0, math.ceil(p / 100.0 * len(sorted_values)) - 1))
    return sorted_values[k]
