"""`logship replay` through the real binary: CloudTrail archives in s3rver (behind a recording
proxy, so the list requests the server saw are counted) and directories of rotated .gz/.zst/plain
files, replayed through a splunk_hec sink into logship's own HEC receiver. Time window pruning
before listing, per-event window, original times and the replay mark, dry run, failed objects
(exit 1), usage errors (exit 2), SIGINT then --resume (exit 130, no loss, no duplicate), kill -9
then --resume (duplicates bounded), --rate accuracy, and the progress bar under a pseudo-terminal.
"""
import calendar
import collections
import glob
import gzip
import json
import os
import pty
import random
import select
import signal
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from lib import (LOGSHIP_BIN, Logship, TempDir, free_port, read_jsonl, receiver_config, wait_for,  # noqa: E402
                 wait_hec_up, write_config)
from s3lib import ACCOUNT, RecordingProxy, S3Server, clean_aws_env, ct_file, ct_key  # noqa: E402

REGION = "us-east-1"
PREFIX = f"AWSLogs/{ACCOUNT}/CloudTrail/{REGION}/"


def epoch(y, m, d, hh=0, mm=0, ss=0):
    return calendar.timegm((y, m, d, hh, mm, ss, 0, 0, 0))


def zstd_compress(data):
    return subprocess.run(["zstd", "-q", "-c"], input=data, capture_output=True, check=True).stdout


class Harness:
    """A HEC receiver (logship run: splunk_hec source -> file) and a config whose sources are
    replayed into it: `ct` (s3, CloudTrail) and `app` (file, JSON lines with a time field)."""

    def __init__(self, tc, s3_endpoint=None):
        self.tc = tc
        self.tmp = TempDir(prefix="logship-replay-")
        tc.addCleanup(self.tmp.cleanup)
        self.home = self.tmp.join("home")
        os.makedirs(self.home)
        self.env = clean_aws_env(self.home)
        self.hec_port = free_port()
        self.received_path = self.tmp.join("received.jsonl")
        rcfg = receiver_config(self.tmp, self.hec_port, self.received_path)
        self.receiver = Logship(write_config(self.tmp.join("receiver.yaml"), rcfg), "receiver").start()
        tc.addCleanup(lambda: self.receiver.alive() and self.receiver.stop())
        wait_hec_up(self.hec_port)
        self.live_dir = self.tmp.join("live")
        os.makedirs(self.live_dir)
        self.data_dir = self.tmp.join("data")
        sources = {
            "app": {"type": "file", "include": [self.live_dir + "/*.log"], "codec": "json",
                    "timestamp": {"field": "time", "format": "rfc3339"}, "sourcetype": "app:json"},
        }
        if s3_endpoint:
            sources["ct"] = {"type": "s3", "mode": "poll", "bucket": "logs", "format": "cloudtrail",
                             "endpoint": s3_endpoint, "region": REGION, "sourcetype": "aws:cloudtrail",
                             "credentials": {"access_key_id": "S3RVER", "secret_access_key": "S3RVER"}}
        self.cfg = {
            "data_dir": self.data_dir,
            "sources": sources,
            "sinks": {"hec": {"type": "splunk_hec", "inputs": list(sources),
                              "endpoints": [f"http://127.0.0.1:{self.hec_port}"], "token": "test-token",
                              "retry": {"initial_backoff": "50ms", "max_backoff": "500ms"}}},
        }
        self.cfg_path = write_config(self.tmp.join("logship.yaml"), self.cfg)

    def replay(self, *args, timeout=120, check_rc=None):
        p = subprocess.run([LOGSHIP_BIN, "replay", "-c", self.cfg_path] + list(args), capture_output=True,
                           text=True, timeout=timeout, env=self.env)
        if check_rc is not None:
            self.tc.assertEqual(p.returncode, check_rc, f"stdout:\n{p.stdout}\nstderr:\n{p.stderr[-4000:]}")
        return p

    def start_replay(self, *args):
        log = open(self.tmp.join(f"replay-{time.monotonic_ns()}.log"), "w+")
        p = subprocess.Popen([LOGSHIP_BIN, "replay", "-c", self.cfg_path] + list(args), stdout=log,
                             stderr=subprocess.STDOUT, text=True, env=self.env)
        self.tc.addCleanup(lambda: p.poll() is None and p.kill())
        p.log_file = log
        self.tc.addCleanup(log.close)
        return p

    def received(self):
        return read_jsonl(self.received_path)

    def wait_received(self, n, timeout=60, why=""):
        try:
            wait_for(lambda: len(self.received()) >= n, timeout, f"{n} events at the receiver")
        except AssertionError as e:
            self.tc.fail(f"{e}: {len(self.received())} received\n{why}\n--- receiver ---\n{self.receiver.log()[-2000:]}")
        time.sleep(0.3)  # nothing more arrives
        return self.received()


def summary(path):
    with open(path) as f:
        return json.load(f)


class CloudTrailReplay(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        pass

    def setUp(self):
        self.s3 = S3Server(self)
        self.proxy = RecordingProxy(self, self.s3.port)
        self.h = Harness(self, s3_endpoint=self.proxy.endpoint)

    def put_layout(self):
        """Ten days (2026-10-20 .. 29), three objects a day; the last object of the 24th is
        delivered 5 minutes after midnight into the 25th's prefix and holds events on both sides of
        the window's end. Returns {eventID: epoch seconds}."""
        rnd = random.Random(15)
        objects, times = [], {}
        for d in range(20, 30):
            for k, hh in enumerate((1, 9, 17)):
                body, t = ct_file(rnd, f"d{d}k{k}", 40, epoch(2026, 10, d, hh))
                objects.append((ct_key(REGION, (2026, 10, d), f"{hh:02d}05", f"d{d}k{k}"), body))
                times.update(t)
        # Events 23:59:40 .. 00:00:19 of the 24th/25th, delivered at 00:05 on the 25th.
        body, t = ct_file(rnd, "late", 40, epoch(2026, 10, 24, 23, 59, 40))
        objects.append((ct_key(REGION, (2026, 10, 25), "0005", "late"), body))
        times.update(t)
        # A digest file: never read.
        objects.append((f"AWSLogs/{ACCOUNT}/CloudTrail-Digest/{REGION}/2026/10/24/digest.json.gz",
                        gzip.compress(b"{}")))
        self.s3.put(objects)
        return times, objects

    def list_prefixes(self):
        from urllib.parse import parse_qs, urlsplit
        out = []
        for r in self.proxy.recorded():
            q = parse_qs(urlsplit(r["path"]).query, keep_blank_values=True)
            if r["method"] == "GET" and q.get("list-type") == ["2"]:
                out.append(q.get("prefix", [""])[0])
        return out

    def test_window_prunes_listing_and_events_keep_their_time(self):
        times, objects = self.put_layout()
        since, until = epoch(2026, 10, 23), epoch(2026, 10, 25)
        want = {eid: t for eid, t in times.items() if since <= t < until}
        self.assertEqual(len(want), 2 * 3 * 40 + 20)
        # Dry run first: what a real run would read, without sending.
        dry = self.h.tmp.join("dry.json")
        p = self.h.replay("--source", "ct", "--from", f"s3://logs/{PREFIX}", "--since", "2026-10-23",
                          "--until", "2026-10-25T00:00:00Z", "--dry-run", "--summary-json", dry, check_rc=0)
        self.assertIn("dry run", p.stdout)
        d = summary(dry)
        self.assertEqual(d["events"], 0)
        self.assertEqual(self.h.received(), [])
        dry_prefixes = self.list_prefixes()
        self.proxy.requests.clear()

        real = self.h.tmp.join("real.json")
        p = self.h.replay("--source", "ct", "--from", f"s3://logs/{PREFIX}", "--since", "2026-10-23",
                          "--until", "2026-10-25T00:00:00Z", "--run-id", "ct-oct", "--summary-json", real,
                          check_rc=0)
        got = self.h.wait_received(len(want), why=p.stdout + p.stderr[-3000:])
        s = summary(real)
        # Only the window's days were listed: the 23rd, the 24th and (delivery lag) the 25th.
        prefixes = self.list_prefixes()
        self.assertEqual(len(prefixes), s["list_requests"], prefixes)
        self.assertEqual(sorted(prefixes), sorted(dry_prefixes))
        days = sorted({p[len(PREFIX):] for p in prefixes if p.startswith(PREFIX + "2026/10/")})
        self.assertEqual(days, ["2026/10/", "2026/10/23/", "2026/10/24/", "2026/10/25/"], prefixes)
        self.assertLessEqual(len(prefixes), 8, prefixes)
        # Objects read: the 23rd's and 24th's (6), and the one delivered at 00:05 on the 25th; the
        # 25th's others were delivered more than an hour after the window.
        self.assertEqual(s["objects"], 7, s)
        self.assertEqual((d["objects"], d["bytes"]), (s["objects"], s["bytes"]), (d, s))
        self.assertEqual(s["failed"], 0)
        self.assertEqual(s["dead_lettered"], 0)
        self.assertEqual(s["events"], len(want))
        self.assertEqual(s["events_outside"], 20)
        self.assertEqual(s["first_time"], "2026-10-23T01:00:00Z")
        self.assertEqual(s["last_time"], "2026-10-24T23:59:59Z")
        ids = collections.Counter(e["event"]["eventID"] for e in got)
        self.assertEqual(set(ids), set(want))
        self.assertEqual(max(ids.values()), 1)
        for e in got:
            self.assertAlmostEqual(float(e["time"]), want[e["event"]["eventID"]], places=3)
            self.assertEqual(e["fields"]["logship_replay"], "ct-oct")
            self.assertEqual(e["sourcetype"], "aws:cloudtrail")
        # The live pipeline's state is not touched: the run keeps its own.
        self.assertFalse(os.path.exists(os.path.join(self.h.data_dir, "checkpoints", "ct.json")))
        self.assertTrue(os.path.exists(os.path.join(self.h.data_dir, "replay", "ct-oct", "checkpoints", "ct.json")))
        self.assertIn("time range:", p.stdout)

    def test_failed_object_exit_1_and_no_mark(self):
        rnd = random.Random(3)
        good, times = ct_file(rnd, "good", 30, epoch(2026, 10, 5, 1))
        self.s3.put([(ct_key(REGION, (2026, 10, 5), "0105", "good"), good),
                     (ct_key(REGION, (2026, 10, 5), "0205", "bad"), b"\x1f\x8b\x08\x00garbage-not-gzip")])
        js = self.h.tmp.join("s.json")
        p = self.h.replay("--source", "ct", "--from", f"s3://logs/{PREFIX}2026/10/", "--no-mark",
                          "--summary-json", js, check_rc=1)
        got = self.h.wait_received(30)
        s = summary(js)
        self.assertEqual(s["failed"], 1, s)
        self.assertEqual(s["objects"], 1, s)
        self.assertIn("_bad.json.gz", s["failures"][0]["uri"])
        self.assertIn("gzip", s["failures"][0]["reason"])
        self.assertIn("_bad.json.gz", p.stdout)
        self.assertEqual({e["event"]["eventID"] for e in got}, set(times))
        self.assertTrue(all("logship_replay" not in e.get("fields", {}) for e in got))

    def test_kill9_then_resume_duplicates_bounded(self):
        rnd = random.Random(9)
        objects, times = [], {}
        for k in range(12):
            body, t = ct_file(rnd, f"k{k}", 400, epoch(2026, 10, 6, k))
            objects.append((ct_key(REGION, (2026, 10, 6), f"{k:02d}05", f"k{k}"), body))
            times.update(t)
        self.s3.put(objects)
        p = self.h.start_replay("--source", "ct", "--from", f"s3://logs/{PREFIX}", "--run-id", "k9",
                                "--events-rate", "1000")
        wait_for(lambda: len(self.h.received()) >= 1500, 60, "part of the run delivered")
        p.kill()
        p.wait()
        time.sleep(0.5)
        before = len(self.h.received())
        self.assertLess(before, len(times))
        ck = glob.glob(os.path.join(self.h.data_dir, "replay", "k9", "**", "*.json"), recursive=True)
        state = ""
        for c in ck:
            with open(c) as f:
                state += f"{c}: {f.read()[:3000]}\n"
        r = self.h.replay("--resume", "k9", check_rc=0)
        got = self.h.wait_received(len(times), why=f"state after the kill:\n{state}\nresume:\n{r.stdout}\n{r.stderr[-3000:]}")
        ids = collections.Counter(e["event"]["eventID"] for e in got)
        self.assertEqual(set(ids), set(times))  # nothing lost
        dups = sum(n - 1 for n in ids.values())
        # At most what was in flight or acknowledged after the last checkpoint write: here about
        # a second of the rate (one batch is a tenth of a second of it).
        self.assertLessEqual(dups, 1500, dups)


class FileReplay(unittest.TestCase):
    def setUp(self):
        self.h = Harness(self)
        self.arch = self.h.tmp.join("archive")
        os.makedirs(self.arch)

    def write_files(self, n_files, per_file, pad=80, mtime_base=None):
        """app.log.N(.gz|.zst) rotated archives, oldest = highest N. Returns the expected seqs."""
        seqs = []
        seq = 0
        for i in range(n_files, 0, -1):
            lines = []
            for _ in range(per_file):
                t = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch(2026, 11, 1) + seq))
                lines.append(json.dumps({"seq": seq, "time": t, "msg": "m" * pad}))
                seqs.append(seq)
                seq += 1
            data = ("\n".join(lines) + "\n").encode()
            kind = i % 3
            path = os.path.join(self.arch, f"app.log.{i}" + (".gz" if kind == 1 else ".zst" if kind == 2 else ""))
            with open(path, "wb") as f:
                f.write(gzip.compress(data, 1) if kind == 1 else zstd_compress(data) if kind == 2 else data)
            mt = (mtime_base or time.time() - 100000) + (n_files - i) * 10
            os.utime(path, (mt, mt))
        return seqs

    def test_mixed_rotated_files_beside_a_live_run(self):
        seqs = self.write_files(6, 500)
        # The live pipeline runs on the same host with the same configuration.
        live = Logship(self.h.cfg_path, "live").start()
        self.addCleanup(lambda: live.alive() and live.stop())
        wait_for(lambda: "running" in live.log(), 30, "live pipeline running")
        js = self.h.tmp.join("s.json")
        p = self.h.replay("--source", "app", "--from", self.arch + "/app.log.*", "--summary-json", js, check_rc=0)
        got = self.h.wait_received(len(seqs))
        s = summary(js)
        self.assertEqual((s["files"], s["events"], s["failed"]), (6, len(seqs), 0), s)
        self.assertEqual(sorted(e["event"]["seq"] for e in got), seqs)
        # Oldest file first, each file in order.
        self.assertEqual([e["event"]["seq"] for e in got], seqs)
        sources = {e["source"] for e in got}
        self.assertEqual(len(sources), 6)
        self.assertTrue(any(x.endswith(".gz") for x in sources) and any(x.endswith(".zst") for x in sources))
        self.assertEqual(got[0]["time"], epoch(2026, 11, 1))
        self.assertTrue(live.alive())
        self.assertEqual(live.stop(), 0)
        self.assertIn("files:", p.stdout)

    def test_sigint_then_resume_no_loss_no_duplicate(self):
        seqs = self.write_files(4, 6000, pad=150)  # ~4 MiB of event text
        p = self.h.start_replay("--source", "app", "--from", self.arch, "--run-id", "int1", "--rate", "1MiB/s")
        wait_for(lambda: len(self.h.received()) >= len(seqs) * 0.4, 60, "40% delivered")
        p.send_signal(signal.SIGINT)
        rc = p.wait(60)
        p.log_file.seek(0)
        out = p.log_file.read()
        self.assertEqual(rc, 130, out[-3000:])
        self.assertIn("--resume int1", out)
        partial = len(self.h.received())
        self.assertLess(partial, len(seqs))
        p2 = self.h.replay("--resume", "int1", "--rate", "20MiB/s", check_rc=0)
        got = self.h.wait_received(len(seqs))
        c = collections.Counter(e["event"]["seq"] for e in got)
        self.assertEqual(sorted(c), seqs)
        self.assertEqual(max(c.values()), 1, [k for k, v in c.items() if v > 1][:10])
        self.assertIn("done by an earlier attempt", p2.stdout)

    def test_rate_limit_within_ten_percent(self):
        # 60 MiB of event text at 2 MiB/s: 30 s.
        lines_per_file = 60 * 1024 * 1024 // 4 // 1024
        path = os.path.join(self.arch, "big.log")
        text_bytes = 0
        with open(path, "w") as f:
            for i in range(4 * lines_per_file):
                line = json.dumps({"seq": i, "time": "2026-11-01T00:00:00Z", "msg": "r" * 970})[:1023]
                if not line.endswith("}"):
                    line = line[:-1] + "}"
                f.write(line + "\n")
                text_bytes += len(line)
        t0 = time.monotonic()
        js = self.h.tmp.join("s.json")
        self.h.replay("--source", "app", "--from", path, "--rate", "2MiB/s", "--summary-json", js, timeout=120,
                      check_rc=0)
        wall = time.monotonic() - t0
        rate = text_bytes / wall / (1 << 20)
        s = summary(js)
        self.assertEqual(s["event_bytes"], text_bytes)
        self.assertGreater(rate, 1.8, (rate, wall))
        self.assertLess(rate, 2.2, (rate, wall))

    def test_progress_bar_under_a_terminal(self):
        self.write_files(3, 4000, pad=150)
        master, slave = pty.openpty()
        p = subprocess.Popen([LOGSHIP_BIN, "replay", "-c", self.h.cfg_path, "--source", "app", "--from", self.arch,
                              "--rate", "1MiB/s"], stdin=slave, stdout=subprocess.PIPE, stderr=slave,
                             env=self.h.env)
        os.close(slave)
        screen = b""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            r, _, _ = select.select([master], [], [], 0.5)
            if r:
                try:
                    chunk = os.read(master, 65536)
                except OSError:
                    break
                if not chunk:
                    break
                screen += chunk
            elif p.poll() is not None:
                break
        out = p.communicate(timeout=30)[0].decode()
        os.close(master)
        self.assertEqual(p.returncode, 0, out)
        text = screen.decode("utf-8", "replace")
        frames = [f for f in text.split("\r\x1b[2K") if f.startswith("[")]
        self.assertGreater(len(frames), 3, text[-2000:])
        mid = [f for f in frames if "/3 files" in f and "#" in f and "." in f.split("]")[0]]
        self.assertTrue(mid, frames[:5])
        self.assertRegex(mid[-1], r"^\[[#.]+\] [0-3]/3 files +[\d.]+/[\d.]+ MiB +\d+k? events +[\d.]+ MiB/s +\d+k? ev/s +ETA")
        self.assertRegex(frames[-1].strip(), r"^\[#+\] 3/3 files")
        self.assertIn("files:          3", out)

    def test_usage_errors_exit_2(self):
        cases = [
            (["--source", "nope", "--from", self.arch], "no such source"),
            (["--source", "app", "--from", self.arch, "--since", "yesterday"], "--since yesterday: not a time"),
            (["--source", "app", "--from", self.arch, "--since", "2026-11-02", "--until", "2026-11-01"],
             "--until must be later"),
            (["--source", "app", "--from", "s3://logs/x/"], "is a file source"),
            (["--source", "app", "--from", self.arch, "--rate", "fast"], "--rate fast"),
            (["--source", "app", "--from", self.arch, "--sink", "nope"], "--sink nope: no such sink"),
            (["--resume", "nothing-here"], "--resume nothing-here: no such run"),
            (["--source", "app"], "--from is required"),
            (["--source", "app", "--from", self.arch, "--run-id", "../x"], "--run-id ../x"),
        ]
        for args, msg in cases:
            p = self.h.replay(*args)
            self.assertEqual(p.returncode, 2, (args, p.stdout, p.stderr))
            self.assertIn(msg, p.stderr, args)
        self.assertEqual(self.h.received(), [])


if __name__ == "__main__":
    unittest.main(verbosity=2)
