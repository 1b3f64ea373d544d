"""Shared helpers for logship integration tests: real processes on 127.0.0.1 only.

Every wait is a condition polled against a deadline (no fixed sleeps as synchronisation).
"""
import gzip
import http.client
import json
import os
import random
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.request

LOGSHIP_BIN = os.environ.get("LOGSHIP_BIN", os.path.join(os.path.dirname(__file__), "../../build/logship"))
SOURCE_DIR = os.environ.get("LOGSHIP_SOURCE_DIR", os.path.abspath(os.path.join(os.path.dirname(__file__), "../..")))


# Ports for test listeners come from below the kernel's ephemeral range (32768-60999 on Linux),
# so no outgoing connection can take one between this pick and the listener's bind, and each
# pick is leased with a lock file, so two test processes run in parallel by ctest never get the
# same port (binding port 0 gave no such guarantee: a receiver then answered another test's
# requests). A lease ends when the process that took it exits.
_PORT_RANGE = (20000, 32000)
_PORT_LEASES = os.path.join(tempfile.gettempdir(), "logship-test-ports")


def _lease_is_stale(path):
    try:
        with open(path) as f:
            pid = int(f.read().strip() or "0")
    except (OSError, ValueError):
        return False  # being written right now
    if pid <= 0:
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on and no other test process will pick."""
    os.makedirs(_PORT_LEASES, exist_ok=True)
    rng = random.Random()
    for _ in range(2000):
        port = rng.randrange(*_PORT_RANGE)
        path = os.path.join(_PORT_LEASES, str(port))
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            if _lease_is_stale(path):
                try:
                    os.unlink(path)
                except FileNotFoundError:
                    pass
            continue
        with os.fdopen(fd, "w") as f:
            f.write(str(os.getpid()))
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue  # in use outside the tests: keep the lease so no one else tries it
    raise RuntimeError("no free test port left in %d-%d" % _PORT_RANGE)


def wait_for(cond, timeout=30.0, what="condition", interval=0.05):
    """Polls cond() until it returns a truthy value or the deadline passes (AssertionError)."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = cond()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


class TempDir:
    def __init__(self, prefix="logship-test-"):
        self.path = tempfile.mkdtemp(prefix=prefix)

    def join(self, *p):
        return os.path.join(self.path, *p)

    def cleanup(self):
        shutil.rmtree(self.path, ignore_errors=True)


def make_cert(directory, cn="localhost"):
    """Self-signed certificate for localhost / 127.0.0.1; returns (cert, key)."""
    cert, key = os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", f"/CN={cn}", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
                    "-keyout", key, "-out", cert], check=True, capture_output=True)
    os.chmod(key, 0o600)
    return cert, key


def write_config(path, cfg):
    """JSON is valid YAML: configs are written as JSON for exactness."""
    with open(path, "w") as f:
        json.dump(cfg, f, indent=2)
    return path


class Logship:
    """A `logship run` process with its stderr captured to a file."""

    def __init__(self, config_path, name="logship", env=None, args=()):
        self.config_path = config_path
        self.log_path = config_path + f".{name}.log"
        self.name = name
        self.env = dict(os.environ)
        if env:
            self.env.update(env)
        self.args = list(args)
        self.proc = None

    def start(self):
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([LOGSHIP_BIN, "run", "-c", self.config_path] + self.args,
                                     stdout=self._log, stderr=subprocess.STDOUT, env=self.env)
        return self

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout=30):
        if not self.proc:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
            raise AssertionError(f"{self.name} did not exit within {timeout}s after signal {sig}")
        finally:
            self._log.close()
        return rc

    def kill9(self):
        return self.stop(signal.SIGKILL)

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""


def run_logship(*args, timeout=30, env=None):
    e = dict(os.environ)
    if env:
        e.update(env)
    return subprocess.run([LOGSHIP_BIN] + list(args), capture_output=True, text=True, timeout=timeout, env=e)


def http_get(url, timeout=5, context=None):
    try:
        with urllib.request.urlopen(url, timeout=timeout, context=context) as r:
            return r.status, r.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode("utf-8", "replace")
    except (urllib.error.URLError, ConnectionError, OSError):
        return None, ""


def parse_metrics(text):
    """Prometheus text -> list of (name, labels dict, value)."""
    out = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name_labels, _, value = line.rpartition(" ")
        labels = {}
        if "{" in name_labels:
            name, _, rest = name_labels.partition("{")
            rest = rest.rstrip("}")
            for part in _split_labels(rest):
                k, _, v = part.partition("=")
                labels[k] = v.strip('"')
        else:
            name = name_labels
        out.append((name, labels, float(value)))
    return out


def _split_labels(s):
    parts, cur, in_q = [], "", False
    for ch in s:
        if ch == '"':
            in_q = not in_q
        if ch == "," and not in_q:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    if cur:
        parts.append(cur)
    return parts


def metric(port, name, **labels):
    """Sum of a metric's samples whose labels include `labels`; None when unreachable."""
    status, text = http_get(f"http://127.0.0.1:{port}/metrics")
    if status != 200:
        return None
    total = 0.0
    for n, l, v in parse_metrics(text):
        if n == name and all(l.get(k) == str(val) for k, val in labels.items()):
            total += v
    return total


def read_jsonl(path):
    """Complete JSON lines of a file (a torn last line is ignored)."""
    events = []
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return events
    for line in data.split(b"\n"):
        if not line.strip():
            continue
        try:
            events.append(json.loads(line))
        except ValueError:
            pass
    return events


def count_lines(path):
    try:
        with open(path, "rb") as f:
            return f.read().count(b"\n")
    except FileNotFoundError:
        return 0


def hec_request(port, path="/services/collector/event", body=b"", token="test-token", method="POST",
                headers=None, tls_ca=None, gzip_body=False, auth=None):
    """One HTTP request to an HEC endpoint; returns (status, parsed JSON body or text)."""
    if isinstance(body, str):
        body = body.encode()
    h = {}
    if auth is not None:
        h["Authorization"] = auth
    elif token is not None:
        h["Authorization"] = f"Splunk {token}"
    if gzip_body:
        body = gzip.compress(body)
        h["Content-Encoding"] = "gzip"
    if headers:
        h.update(headers)
    if tls_ca:
        ctx = ssl.create_default_context(cafile=tls_ca)
        conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=10, context=ctx)
    else:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path, body=body if method != "GET" else None, headers=h)
        r = conn.getresponse()
        data = r.read().decode("utf-8", "replace")
        try:
            return r.status, json.loads(data)
        except ValueError:
            return r.status, data
    finally:
        conn.close()


def receiver_config(tmp, port, out_path, acks=False, tokens=("test-token",), tls=None, extra_source=None):
    """splunk_hec source -> file sink (the test receiver)."""
    src = {"type": "splunk_hec", "address": f"127.0.0.1:{port}", "tokens": list(tokens)}
    if acks:
        src["acknowledgements"] = {"enabled": True}
    if tls:
        src["tls"] = tls
    if extra_source:
        src.update(extra_source)
    return {
        "data_dir": tmp.join("receiver-data"),
        "sources": {"hec_in": src},
        "sinks": {"out": {"type": "file", "inputs": ["hec_in"], "path": out_path}},
    }


def wait_hec_up(port, tls_ca=None, timeout=30):
    def up():
        try:
            s, _ = hec_request(port, "/services/collector/health", method="GET", token=None, tls_ca=tls_ca)
            return s == 200
        except OSError:
            return False
    wait_for(up, timeout, f"HEC receiver on port {port}")
