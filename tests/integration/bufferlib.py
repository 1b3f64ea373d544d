"""Shared pieces of the disk buffer integration tests (test_disk_buffer.py).

A shipper: `file` source "app" -> `splunk_hec` sink "out" with `buffer: {type: disk}` and the
top-level `encryption`, against either the fault-injecting HEC server (hec_fault_server.py: exact
per-event counts, `down` switch) or logship's own receiver (splunk_hec source -> file sink, for the
1 GiB run whose events the fault server could not hold in memory).

Events are numbered lines `seq=<8 digits> <marker> ...`; the helpers count them at the receiver.
Also here: reading the buffer's files as the contract describes them (segments of blocks, each a
64-byte header starting with b"LSBK", ciphertext, a 16-byte tag), the file checkpoint, RSS
sampling, and a scanner that looks for a marker in clear text and inside anything that zstd or gzip
can decompress.
"""
import collections
import glob
import hashlib
import hmac
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import (LOGSHIP_BIN, Logship, TempDir, free_port, http_get, parse_metrics, receiver_config,  # noqa: E402,F401
                 wait_for, wait_hec_up, write_config)
from hec_fault_server import HecServerProcess  # noqa: E402

TOKEN = "test-token"
SOURCE = "app"
SINK = "out"
BLOCK_MAGIC = b"LSBK"
HEADER_BYTES = 64
TAG_BYTES = 16
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
GZIP_MAGIC = b"\x1f\x8b"
SEQ_RE = re.compile(rb"seq=(\d{8})")
# What the implementation reads ahead between the buffer's reader and the sink (contract).
READ_AHEAD_BYTES = 8 << 20
# A file source batch: up to 1 MiB of text or 8192 lines (one block per batch).
SOURCE_BATCH_BYTES = 1 << 20
SOURCE_BATCH_LINES = 8192
CHECKPOINT_INTERVAL_S = 0.1


# ---------------------------------------------------------------------------------------------
# Events
# ---------------------------------------------------------------------------------------------
def line_text(i, marker, pad=""):
    return f"seq={i:08d} {marker} {pad}"


def write_events(path, start, end, marker, pad_fn=None, chunk=5000, rate=None, stop=None, progress=None):
    """Appends events [start, end) in chunks; `pad_fn(i)` adds a payload; `rate` caps lines/s.
    `stop` (threading.Event) ends early; `progress` (list of one int) holds the next seq to write.
    Returns the next seq not written."""
    t0 = time.monotonic()
    i = start
    with open(path, "a", encoding="utf-8") as f:
        while i < end:
            if stop is not None and stop.is_set():
                break
            j = min(end, i + chunk)
            if pad_fn is None:
                f.write("".join(f"seq={k:08d} {marker}\n" for k in range(i, j)))
            else:
                f.write("".join(f"seq={k:08d} {marker} {pad_fn(k)}\n" for k in range(i, j)))
            f.flush()
            i = j
            if progress is not None:
                progress[0] = i
            if rate:
                ahead = (i - start) / rate - (time.monotonic() - t0)
                if ahead > 0:
                    time.sleep(ahead)
    return i


def random_pad(nbytes):
    """A payload of `nbytes` hex characters that zstd cannot shrink much (fresh random per call)."""
    return os.urandom(nbytes // 2).hex()


def count_seqs_in_file(path, n):
    """Counts `seq=` ids in a (large) JSON-lines file in chunks: a bytearray of per-id counts
    (saturating at 255) for ids < n, plus the number of ids >= n."""
    counts = bytearray(n)
    foreign = 0
    rest = b""
    with open(path, "rb") as f:
        while True:
            data = f.read(64 << 20)
            if not data:
                break
            data = rest + data
            cut = data.rfind(b"\n") + 1
            rest = data[cut:]
            for m in SEQ_RE.findall(data, 0, cut):
                k = int(m)
                if k < n:
                    if counts[k] < 255:
                        counts[k] += 1
                else:
                    foreign += 1
    return counts, foreign


def summarize_counts(counts):
    """(missing ids (first 20), number missing, duplicates = sum(c - 1 for c > 1))."""
    missing = [i for i, c in enumerate(counts) if c == 0]
    dups = sum(c - 1 for c in counts if c > 1)
    return missing[:20], len(missing), dups


# ---------------------------------------------------------------------------------------------
# Keys
# ---------------------------------------------------------------------------------------------
def make_key_file(path, form="raw", mode=0o600, nbytes=32):
    """A key file: `raw` 32 random bytes or `hex` 64 hex characters (+ newline). Returns the key."""
    key = os.urandom(nbytes)
    data = key if form == "raw" else (key.hex() + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(path, mode)
    return key


def key_id(key):
    """The contract's key id: first 16 hex digits of HMAC-SHA256(key, b"logship key id v1")."""
    return hmac.new(key, b"logship key id v1", hashlib.sha256).hexdigest()[:16]


# ---------------------------------------------------------------------------------------------
# The buffer's files
# ---------------------------------------------------------------------------------------------
def segment_files(buffer_dir):
    return sorted(p for p in glob.glob(os.path.join(buffer_dir, "*.seg"))
                  if re.fullmatch(r"[0-9a-f]{16}\.seg", os.path.basename(p)))


def parse_blocks(data):
    """Blocks of a segment's bytes: [{off, end, events, header, torn}].

    Uses the header layout of agent/crypto/at_rest.h (sealed length u32 LE at 52, events u32 LE at
    56) but checks it against the contract: every block starts with the magic and the chain ends
    exactly at the end of the data (or in a torn last block). When that does not hold, falls back
    to the magic bytes alone (block = from one magic to the next; events unknown: None)."""
    blocks, off, ok = [], 0, True
    while off < len(data):
        if off + HEADER_BYTES > len(data) or data[off:off + 4] != BLOCK_MAGIC:
            ok = False
            break
        sealed = int.from_bytes(data[off + 52:off + 56], "little")
        events = int.from_bytes(data[off + 56:off + 60], "little")
        end = off + HEADER_BYTES + sealed + TAG_BYTES
        blocks.append({"off": off, "end": min(end, len(data)), "events": events,
                       "header": data[off:off + HEADER_BYTES], "torn": end > len(data)})
        off = end
    if ok and blocks and all(not b["torn"] for b in blocks[:-1]):
        return blocks
    starts = [m.start() for m in re.finditer(re.escape(BLOCK_MAGIC), data)]
    out = []
    for k, s in enumerate(starts):
        e = starts[k + 1] if k + 1 < len(starts) else len(data)
        out.append({"off": s, "end": e, "events": None, "header": data[s:s + HEADER_BYTES], "torn": False})
    return out


def read_blocks(path):
    with open(path, "rb") as f:
        return parse_blocks(f.read())


def tree_digest(root):
    """{relative path: sha256} of every file under `root`."""
    out = {}
    for d, _, files in os.walk(root):
        for name in files:
            p = os.path.join(d, name)
            with open(p, "rb") as f:
                out[os.path.relpath(p, root)] = hashlib.sha256(f.read()).hexdigest()
    return out


# ---------------------------------------------------------------------------------------------
# Marker scanner
# ---------------------------------------------------------------------------------------------
def zstd_tool():
    """'zstandard' (python module), 'cli' (/usr/bin/zstd) or None."""
    try:
        import zstandard  # noqa: F401
        return "zstandard"
    except ImportError:
        pass
    return "cli" if shutil.which("zstd") else None


def _zstd_decompress(data, limit=256 << 20):
    """Whatever zstd decodes from the start of `data` (partial output kept when it then fails)."""
    tool = zstd_tool()
    if tool == "zstandard":
        import zstandard
        out = bytearray()
        try:
            d = zstandard.ZstdDecompressor().decompressobj()
            for i in range(0, len(data), 1 << 16):
                out += d.decompress(data[i:i + (1 << 16)])
                if len(out) > limit:
                    break
        except zstandard.ZstdError:
            pass
        return bytes(out)
    if tool == "cli":
        r = subprocess.run(["zstd", "-q", "-d", "-c", "--no-progress"], input=data, capture_output=True, timeout=60)
        return r.stdout
    raise AssertionError("no zstd decoder: install the Debian package zstd (CLI) or python3-zstandard")


def _gzip_decompress(data, limit=256 << 20):
    """Whatever zlib decodes as gzip (wbits 31) from the start of `data`, members chained."""
    out = bytearray()
    rest = data
    while rest:
        d = zlib.decompressobj(31)
        try:
            for i in range(0, len(rest), 1 << 16):
                out += d.decompress(rest[i:i + (1 << 16)])
                if d.eof or len(out) > limit:
                    break
        except zlib.error:
            break
        if not d.eof or len(out) > limit:
            break
        rest = d.unused_data
        if rest[:2] != GZIP_MAGIC:
            break
    return bytes(out)


def encoded_forms(marker):
    """The marker as bytes, hex text and base64 text (three alignments: the stable middle part)."""
    import base64
    m = marker.encode()
    forms = {"plain": m, "hex": m.hex().encode(), "HEX": m.hex().upper().encode(), "utf16": marker.encode("utf-16-le")}
    for shift in range(3):
        b = base64.b64encode(b"\0" * shift + m)
        forms[f"base64/{shift}"] = b[4:-4]
    return forms


def scan_for_marker(root, marker):
    """Looks for `marker` in every file under `root`: as is (and hex/base64/UTF-16), and in what zstd
    and gzip decompress from the start of each file and from every offset where a zstd (28 b5 2f fd)
    or gzip (1f 8b) magic appears. Returns (findings, stats)."""
    forms = encoded_forms(marker)
    findings = []
    stats = collections.Counter()

    def check(blob, where):
        for name, f in forms.items():
            if f in blob:
                findings.append(f"{where}: marker ({name})")

    for d, _, files in os.walk(root):
        for name in files:
            p = os.path.join(d, name)
            try:
                with open(p, "rb") as fh:
                    data = fh.read()
            except FileNotFoundError:  # vanished meanwhile (a temp file renamed)
                stats["vanished"] += 1
                continue
            except OSError as e:
                findings.append(f"{p}: unreadable ({e})")
                continue
            rel = os.path.relpath(p, root)
            stats["files"] += 1
            stats["bytes"] += len(data)
            check(data, rel)
            offsets_z = {0} | {m.start() for m in re.finditer(re.escape(ZSTD_MAGIC), data)}
            offsets_g = {0} | {m.start() for m in re.finditer(re.escape(GZIP_MAGIC), data)}
            for off in sorted(offsets_z):
                if off >= len(data):
                    continue
                stats["zstd_tries"] += 1
                out = _zstd_decompress(data[off:])
                if out:
                    stats["zstd_decoded"] += 1
                    check(out, f"{rel} zstd@{off}")
            for off in sorted(offsets_g):
                if off >= len(data):
                    continue
                stats["gzip_tries"] += 1
                out = _gzip_decompress(data[off:])
                if out:
                    stats["gzip_decoded"] += 1
                    check(out, f"{rel} gzip@{off}")
    return findings, dict(stats)


# ---------------------------------------------------------------------------------------------
# Processes and probes
# ---------------------------------------------------------------------------------------------
class PortHold:
    """A port bound but not listening: connections are refused (the receiver is down), and no other
    process can take it until release()."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]

    def release(self):
        if self.sock:
            self.sock.close()
            self.sock = None


def proc_status_kib(pid, field):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None


class RssSampler(threading.Thread):
    """Samples VmRSS (and VmHWM) of a process every `interval` s until stop()."""

    def __init__(self, pid, interval=0.02):
        super().__init__(daemon=True)
        self.pid, self.interval = pid, interval
        self.peak_rss_kib = 0
        self.hwm_kib = 0
        self.samples = 0
        self._halt = threading.Event()

    def run(self):
        while not self._halt.is_set():
            rss = proc_status_kib(self.pid, "VmRSS")
            hwm = proc_status_kib(self.pid, "VmHWM")
            if rss is None:
                break
            self.samples += 1
            self.peak_rss_kib = max(self.peak_rss_kib, rss)
            self.hwm_kib = max(self.hwm_kib, hwm or 0)
            self._halt.wait(self.interval)

    def stop(self):
        self._halt.set()
        self.join(5)


def holds_for(cond, duration, interval=0.05, what="condition"):
    """Asserts cond() stays truthy for `duration` seconds (a check of stability, not a wait)."""
    deadline = time.monotonic() + duration
    while time.monotonic() < deadline:
        v = cond()
        if not v:
            raise AssertionError(f"{what} stopped holding (got {v!r})")
        time.sleep(interval)
    return True


def checkpoint_offset(data_dir, path, source=SOURCE):
    """The file source's persisted offset for `path` (None when there is no complete checkpoint)."""
    p = os.path.join(data_dir, "checkpoints", f"{source}.json")
    try:
        with open(p) as f:
            text = f.read()
    except FileNotFoundError:
        return None
    end = "\n#end\n"
    if not text.endswith(end):
        return None
    try:
        state = json.loads(text[:-len(end)])
    except ValueError:
        return None
    offs = [e.get("offset", 0) for e in state.get("files", []) if e.get("path") == path]
    return max(offs) if offs else None


class Rig:
    """One test's temp dir, keys, configs and processes."""

    def __init__(self, tc, prefix="logship-diskbuf-"):
        self.tc = tc
        self.tmp = TempDir(prefix=prefix)
        tc.addCleanup(self.tmp.cleanup)
        self.logdir = self.tmp.join("logs")
        os.makedirs(self.logdir)
        self.logfile = os.path.join(self.logdir, "app.log")
        self.data_dir = self.tmp.join("data")
        self.buffer_dir = os.path.join(self.data_dir, "buffer", SINK)
        self.admin_port = free_port()
        self.key_a_path = self.tmp.join("key-a.bin")
        self.key_b_path = self.tmp.join("key-b.hex")
        self.key_a = make_key_file(self.key_a_path, "raw")
        self.key_b = make_key_file(self.key_b_path, "hex")
        self.marker = "MARK" + os.urandom(8).hex().upper() + "KRAM"
        self.encryption = {"key_file": self.key_a_path}
        self.buffer = {"type": "disk", "segment_bytes": "1MiB", "sync": "100ms", "max_bytes": "1GiB",
                       "when_full": "block", "compression": "zstd"}
        self.sink_extra = {"batch": {"max_bytes": "256KiB"}, "request": {"concurrency": 2}}
        self.endpoints = []
        self.shipper = None
        self.shippers = []
        self.server = None
        self.receiver = None
        self.hold = None
        self.out = self.tmp.join("received.jsonl")
        self.receiver_admin = free_port()
        self.receiver_port = None
        self.starts = 0

    # -- configs --------------------------------------------------------------------------------
    def shipper_config(self, path=None, encryption="default", buffer="default"):
        sink = {
            "type": "splunk_hec",
            "inputs": [SOURCE],
            "endpoints": list(self.endpoints),
            "token": TOKEN,
            "acknowledgements": {"enabled": False},
            "retry": {"initial_backoff": "50ms", "max_backoff": "500ms"},
            "buffer": dict(self.buffer if buffer == "default" else buffer),
        }
        for k, v in self.sink_extra.items():
            sink[k] = v
        cfg = {
            "data_dir": self.data_dir,
            "admin": {"address": f"127.0.0.1:{self.admin_port}"},
            "sources": {SOURCE: {"type": "file", "include": [self.logdir + "/*.log"], "host": "test-host",
                                 "sourcetype": "app:log", "index": "main", "scan_interval": "200ms"}},
            "sinks": {SINK: sink},
        }
        enc = self.encryption if encryption == "default" else encryption
        if enc is not None:
            cfg["encryption"] = dict(enc)
        return write_config(path or self.tmp.join("shipper.yaml"), cfg)

    # -- receivers ------------------------------------------------------------------------------
    def fault_server(self, down=True, **switches):
        """The fault-injecting HEC server (acks off), `down` (RST every new connection) at first."""
        self.server = HecServerProcess(self.tmp.path, name="hec", token=TOKEN, acks=False,
                                       switches=dict(switches, down=down))
        self.tc.addCleanup(self.server.stop)
        self.endpoints = [self.server.url]
        return self.server

    def closed_port_endpoint(self):
        """An endpoint nothing listens on (held bound until release_port())."""
        self.hold = PortHold()
        self.tc.addCleanup(self.hold.release)
        self.receiver_port = self.hold.port
        self.endpoints = [f"http://127.0.0.1:{self.hold.port}"]
        return self.hold.port

    def start_receiver(self):
        """logship as the receiver (splunk_hec source -> file sink) on the held port."""
        if self.hold:
            self.hold.release()
        rcfg = receiver_config(self.tmp, self.receiver_port, self.out)
        rcfg["admin"] = {"address": f"127.0.0.1:{self.receiver_admin}"}
        path = write_config(self.tmp.join("receiver.yaml"), rcfg)
        self.receiver = Logship(path, "receiver").start()
        self.tc.addCleanup(lambda r=self.receiver: r.alive() and r.stop())
        wait_hec_up(self.receiver_port)
        return self.receiver

    def receiver_written(self):
        return self.metric("logship_component_sent_events_total", port=self.receiver_admin, component_id="out")

    # -- the shipper ----------------------------------------------------------------------------
    def start_shipper(self, config=None, env=None, wait=True, drain_timeout="2s"):
        self.starts += 1
        path = config or self.tmp.join("shipper.yaml")
        if not os.path.exists(path):
            self.shipper_config(path)
        sh = Logship(path, f"shipper{self.starts}", env=env, args=["--drain-timeout", drain_timeout])
        sh.start()
        self.shipper = sh
        self.shippers.append(sh)
        self.tc.addCleanup(lambda s=sh: s.alive() and s.stop(timeout=30))
        if wait:
            wait_for(lambda: http_get(f"http://127.0.0.1:{self.admin_port}/metrics")[0] == 200 or not sh.alive(),
                     60, "shipper admin port")
            if not sh.alive():
                self.tc.fail(f"shipper exited at start (rc {sh.proc.returncode})" + self.diag())
        return sh

    def stop_shipper(self, timeout=30):
        rc = self.shipper.stop(timeout=timeout)
        return rc

    def kill_shipper(self):
        return self.shipper.kill9()

    # -- metrics --------------------------------------------------------------------------------
    def samples(self, name, port=None):
        status, text = http_get(f"http://127.0.0.1:{port or self.admin_port}/metrics")
        if status != 200:
            return None
        return [(l, v) for n, l, v in parse_metrics(text) if n == name]

    def metric(self, name, port=None, **labels):
        """Sum of matching samples; 0 when absent; None when the admin port does not answer."""
        s = self.samples(name, port)
        if s is None:
            return None
        return sum(v for l, v in s if all(l.get(k) == str(x) for k, x in labels.items()))

    def has_metric(self, name):
        s = self.samples(name)
        return bool(s)

    def bm(self, name):
        """A buffer metric of sink `out`."""
        return self.metric(name, component_id=SINK)

    def buffer_events(self):
        return self.bm("logship_buffer_events")

    def ready_status(self):
        return http_get(f"http://127.0.0.1:{self.admin_port}/ready")[0]

    def checkpoint(self):
        return checkpoint_offset(self.data_dir, self.logfile)

    def file_size(self):
        try:
            return os.path.getsize(self.logfile)
        except FileNotFoundError:
            return 0

    def checkpoint_at_end(self):
        size = self.file_size()
        return size > 0 and self.checkpoint() == size

    def wait_buffered(self, n, timeout=60):
        """Waits until the buffer holds `n` events and the file checkpoint reached the file's end
        (the source's acknowledgement once the batches were synced into the buffer)."""
        try:
            wait_for(lambda: (self.buffer_events() or 0) >= n and self.checkpoint_at_end(), timeout,
                     f"{n} events in the disk buffer and the checkpoint at the end of the file", interval=0.1)
        except AssertionError as e:
            self.tc.fail(f"{e}; buffer_events={self.buffer_events()} checkpoint={self.checkpoint()} "
                         f"size={self.file_size()}" + self.diag())

    def segments(self):
        return segment_files(self.buffer_dir)

    def wait_delivered(self, n, timeout=120, what=None, expected=None):
        """Fault server: waits until the seqs `expected` (default range(n)) are all present."""
        expected = set(range(n)) if expected is None else set(expected)

        def done():
            c = self.server.seq_counts()
            return len(expected - set(c)) == 0
        try:
            wait_for(done, timeout, what or f"{len(expected)} events at the server", interval=0.25)
        except AssertionError as e:
            c = self.server.seq_counts()
            miss = sorted(expected - set(c))
            self.tc.fail(f"{e}: missing {len(miss)} {miss[:10]}" + self.diag())
        return self.server.seq_counts()

    def diag(self):
        out = []
        for m in ("logship_buffer_events", "logship_buffer_bytes", "logship_buffer_blocks_written_total",
                  "logship_buffer_blocks_read_total", "logship_buffer_corrupt_blocks_total"):
            try:
                out.append(f"{m}={self.bm(m)}")
            except Exception:  # noqa: BLE001
                pass
        if self.server:
            try:
                st = self.server.stats()
                out.append(f"server: unique={st['unique_seqs']} total={st['events_total']} "
                           f"by_status={st['requests_by_status']} down_refused={st['down_refused']}")
            except Exception as e:  # noqa: BLE001
                out.append(f"server: {e}")
        try:
            out.append(f"segments: {[(os.path.basename(p), os.path.getsize(p)) for p in self.segments()]}")
        except OSError:
            pass
        for sh in self.shippers[-2:]:
            out.append(f"--- {sh.name} log (tail) ---\n{sh.log()[-4000:]}")
        if self.receiver:
            out.append(f"--- receiver log (tail) ---\n{self.receiver.log()[-2000:]}")
        return "\n" + "\n".join(out)


def run_check(config_path):
    """`logship check -c`: (exit code, stdout + stderr)."""
    r = subprocess.run([LOGSHIP_BIN, "check", "-c", config_path], capture_output=True, text=True, timeout=30)
    return r.returncode, r.stdout + r.stderr


def disk_buffer_available(tmpdir):
    """False while `logship check` says the disk buffer is not in this build yet."""
    key = os.path.join(tmpdir, "probe.key")
    make_key_file(key)
    cfg = {"data_dir": os.path.join(tmpdir, "probe-data"), "encryption": {"key_file": key},
           "sources": {"app": {"type": "file", "include": [tmpdir + "/*.log"]}},
           "sinks": {"out": {"type": "splunk_hec", "inputs": ["app"], "endpoints": ["http://127.0.0.1:9"],
                             "token": TOKEN, "buffer": {"type": "disk"}}}}
    rc, out = run_check(write_config(os.path.join(tmpdir, "probe.yaml"), cfg))
    return rc == 0, out
