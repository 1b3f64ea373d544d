"""Shared pieces of the `file` source integration tests (tests/integration/test_file_*.py).

One logship process: `file` source "app" -> `file` sink "out" (one HEC envelope per line), with an
admin port for metrics. Lines are numbered `f=<file id> seq=<n> <payload>` so that every line can
be counted: each test checks that every number is present and none twice (except within the
documented bound after a kill -9, README "Delivery guarantees").
"""
import collections
import os
import re
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
from lib import (Logship, TempDir, free_port, metric, read_jsonl, wait_for, write_config)  # noqa: E402,F401

PAYLOAD = "lorem ipsum dolor sit amet quote=\" backslash=\\ unicode=é日本"
LINE_RE = re.compile(r"^f=(\w+) seq=(\d+) ")
SOURCE_ID = "app"
SINK_ID = "out"

# README "Delivery guarantees": duplicates after kill -9 <= the sink buffer (or one source batch of
# <= 8192 lines / 1 MiB when larger) + in flight + the events acknowledged during one checkpoint
# interval (100 ms) and its fsync. The file sink has no request concurrency; we count one source
# batch per file being read at the kill (a rotated file and its successor can both have one).
SOURCE_BATCH_LINES = 8192
CHECKPOINT_INTERVAL_S = 0.1


def line(fid, seq, payload=PAYLOAD):
    return f"f={fid} seq={seq:07d} {payload}"


def lines_blob(fid, start, end, payload=PAYLOAD, eol="\n"):
    return "".join(line(fid, i, payload) + eol for i in range(start, end))


def append(path, text, mode="a"):
    with open(path, mode, encoding="utf-8", newline="") as f:
        f.write(text)
        f.flush()


def parse(events):
    """Counter of (file id, seq) over numbered events; other events are ignored."""
    c = collections.Counter()
    for e in events:
        ev = e.get("event")
        if isinstance(ev, str):
            m = LINE_RE.match(ev)
            if m:
                c[(m.group(1), int(m.group(2)))] += 1
    return c


def ranges(keys):
    """[(fid, first, last), ...] runs of consecutive sequence numbers."""
    out = []
    for fid, seq in sorted(keys):
        if out and out[-1][0] == fid and out[-1][2] == seq - 1:
            out[-1][2] = seq
        else:
            out.append([fid, seq, seq])
    return [tuple(r) for r in out]


def describe_gaps(expected, got, limit=12):
    """Human summary of what is missing / duplicated / unexpected."""
    missing = sorted(k for k in expected if got.get(k, 0) == 0)
    dups = sorted((k, n) for k, n in got.items() if n > 1)
    extra = sorted(k for k in got if k not in expected)
    by_file = collections.Counter(k[0] for k in missing)
    parts = [f"expected {len(expected)}, distinct delivered {sum(1 for k in expected if got.get(k))}"]
    if missing:
        parts.append(f"missing {len(missing)} (per file: {dict(list(by_file.most_common(8)))}; "
                     f"ranges: {ranges(missing)[:limit]})")
    if dups:
        parts.append(f"duplicated {sum(n - 1 for _, n in dups)} extra copies of {len(dups)} lines "
                     f"(first: {dups[:limit]})")
    if extra:
        parts.append(f"unexpected {len(extra)} (first: {extra[:limit]})")
    return "; ".join(parts)


class Harness:
    """A temp dir with logs/, data/, out.jsonl and one logship process (restartable)."""

    def __init__(self, tc, include=None, source=None, data_dir=None, name="filetail"):
        self.tc = tc
        self.tmp = TempDir(prefix=f"logship-{name}-")
        tc.addCleanup(self.tmp.cleanup)
        self.logdir = self.tmp.join("logs")
        os.makedirs(self.logdir)
        self.out = self.tmp.join("out.jsonl")
        self.data_dir = data_dir or self.tmp.join("data")
        self.admin_port = free_port()
        src = {"type": "file", "include": include or [self.logdir + "/*.log"], "scan_interval": "100ms",
               "host": "test-host"}
        if source:
            src.update(source)
        self.cfg = {
            "data_dir": self.data_dir,
            "admin": {"address": f"127.0.0.1:{self.admin_port}"},
            "sources": {SOURCE_ID: src},
            "sinks": {SINK_ID: {"type": "file", "inputs": [SOURCE_ID], "path": self.out}},
        }
        self.cfg_path = write_config(self.tmp.join("logship.yaml"), self.cfg)
        self.proc = None
        self.runs = 0
        self.logs = []  # logs of earlier runs

    def path(self, name):
        return os.path.join(self.logdir, name)

    def rewrite_config(self):
        write_config(self.cfg_path, self.cfg)

    # --- process -------------------------------------------------------------------------------
    def start(self, wait_ready=True, env=None, cmd_prefix=None):
        self.runs += 1
        self.proc = Logship(self.cfg_path, f"run{self.runs}", env=env)
        if cmd_prefix:
            import subprocess
            from lib import LOGSHIP_BIN
            self.proc._log = open(self.proc.log_path, "ab")
            self.proc.proc = subprocess.Popen(list(cmd_prefix) + [LOGSHIP_BIN, "run", "-c", self.cfg_path],
                                              stdout=self.proc._log, stderr=subprocess.STDOUT, env=self.proc.env)
        else:
            self.proc.start()
        p = self.proc
        self.tc.addCleanup(lambda: p.alive() and p.stop())
        if wait_ready:
            wait_for(lambda: self.metric("logship_component_received_events_total", component_id=SOURCE_ID) is not None
                     or not p.alive(), 30, "logship admin /metrics")
            if not p.alive():
                self.tc.fail(f"logship exited at start (rc {p.proc.returncode})\n{p.log()[-3000:]}")
        return p

    def stop(self):
        p = self.proc
        rc = p.stop()
        self.logs.append(p.log())
        self.tc.assertEqual(rc, 0, f"logship exit code\n{p.log()[-3000:]}")
        return rc

    def kill9(self):
        p = self.proc
        p.kill9()
        self.logs.append(p.log())

    def all_logs(self):
        seen = list(self.logs)
        if self.proc and (not seen or seen[-1] != self.proc.log()):
            seen.append(self.proc.log())
        return "\n".join(seen)

    def metric(self, name, **labels):
        return metric(self.admin_port, name, **labels)

    def m0(self, name, **labels):
        return self.metric(name, **labels) or 0

    # --- output --------------------------------------------------------------------------------
    def events(self):
        return read_jsonl(self.out)

    def counts(self):
        return parse(self.events())

    def wait_lines(self, expected, timeout=60, what=None):
        """Waits until every key of `expected` was delivered at least once; fails with a summary."""
        expected = set(expected)
        try:
            wait_for(lambda: expected.issubset(self.counts().keys()), timeout,
                     what or f"{len(expected)} numbered lines", interval=0.2)
        except AssertionError:
            self.tc.fail(f"not every line arrived within {timeout}s: "
                         f"{describe_gaps(expected, self.counts())}\n--- logship log ---\n{self.all_logs()[-4000:]}")

    def settle(self, quiet=0.6, timeout=30):
        """Waits until the output stopped growing for `quiet` seconds (used before asserting 'none
        twice': a duplicate would come right after the lines it repeats)."""
        state = {"size": -1, "t": time.monotonic()}

        def cond():
            try:
                s = os.path.getsize(self.out)
            except FileNotFoundError:
                s = 0
            now = time.monotonic()
            if s != state["size"]:
                state["size"], state["t"] = s, now
                return False
            return now - state["t"] >= quiet

        wait_for(cond, timeout, "output to settle", interval=0.1)

    def assert_exactly_once(self, expected, dup_bound=0, msg=""):
        got = self.counts()
        expected = set(expected)
        missing = [k for k in expected if got.get(k, 0) == 0]
        extra = [k for k in got if k not in expected]
        dups = sum(n - 1 for k, n in got.items() if n > 1)
        summary = describe_gaps(expected, got)
        self.tc.assertEqual(missing, [], f"{msg} {summary}\n{self.all_logs()[-3000:]}")
        self.tc.assertEqual(extra, [], f"{msg} {summary}")
        self.tc.assertLessEqual(dups, dup_bound, f"{msg} duplicates above the bound {dup_bound}: {summary}")
        return dups


class Writer(threading.Thread):
    """Appends numbered lines to `path` (file id `fid`) at `rate` lines/s through a descriptor it
    keeps, as a logger does; `reopen()` asks it to reopen the path (after a rename rotation).
    `lock` (optional) is held around every write so a copytruncate can be made atomic with respect
    to the writer (the copy/truncate race of copytruncate itself is not what is under test)."""

    def __init__(self, path, fid="a", total=10_000, rate=20_000, chunk=50, lock=None, payload=PAYLOAD):
        super().__init__(daemon=True)
        self.path, self.fid, self.total, self.rate, self.chunk = path, fid, total, rate, chunk
        self.lock = lock or threading.Lock()
        self.payload = payload
        self.written = 0
        self._reopen = threading.Event()
        self.reopened = threading.Event()
        self.error = None

    def reopen(self):
        self.reopened.clear()
        self._reopen.set()

    def run(self):
        try:
            t0 = time.monotonic()
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            while self.written < self.total:
                if self._reopen.is_set():
                    os.close(fd)
                    fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
                    self._reopen.clear()
                    self.reopened.set()
                end = min(self.total, self.written + self.chunk)
                data = lines_blob(self.fid, self.written, end, self.payload).encode()
                with self.lock:
                    os.write(fd, data)
                self.written = end
                ahead = self.written / self.rate - (time.monotonic() - t0)
                if ahead > 0:
                    time.sleep(ahead)
            os.close(fd)
            self.reopened.set()
        except Exception as e:  # surfaced by the test
            self.error = e
            self.reopened.set()

    def expected(self):
        return {(self.fid, i) for i in range(self.total)}


def kill_dup_bound(rate_lines_s, files_open=2):
    """Duplicates allowed after one kill -9 (README "Delivery guarantees" for a file sink)."""
    return files_open * SOURCE_BATCH_LINES + int(rate_lines_s * 2 * CHECKPOINT_INTERVAL_S)


def open_fds(pid):
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0


def peak_rss_mib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for ln in f:
                if ln.startswith("VmHWM:"):
                    return int(ln.split()[1]) / 1024.0
    except OSError:
        pass
    return 0.0
