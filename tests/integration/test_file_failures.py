"""`file` source failure behaviour through the real binary: permission denied (logship run as
`nobody`: warned once per file, retried), directories / FIFOs / devices matched by the glob
(skipped with a warning, never blocking), checkpoint writes failing on a full disk (reading pauses,
nothing lost), and bytes truncated away before they were read (counted in
logship_file_abandoned_bytes_total and logged with the path)."""
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from filetail import SINK_ID, SOURCE_ID, Harness, append, lines_blob, parse  # noqa: E402
from lib import (Logship, free_port, read_jsonl, receiver_config, wait_for, wait_hec_up,  # noqa: E402
                 write_config)


def keys(fid, a, b):
    return {(fid, i) for i in range(a, b)}


def mount_tmpfs(tc, size):
    d = tempfile.mkdtemp(prefix="logship-tmpfs-")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", d], capture_output=True)
    if r.returncode != 0:
        os.rmdir(d)
        tc.skipTest(f"cannot mount a small tmpfs to fill (needs root): {r.stderr.decode().strip()}")
    tc.addCleanup(lambda: (subprocess.run(["umount", "-l", d]), shutil.rmtree(d, True)))
    return d


def fill(directory):
    """Writes a filler file until the filesystem is full; returns its path."""
    p = os.path.join(directory, "filler")
    fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        while os.write(fd, b"\0" * 4096) > 0:
            pass
    except OSError:
        pass
    finally:
        os.close(fd)
    return p


class Failures(unittest.TestCase):
    def test_permission_denied_warned_once_then_retried(self):
        """Verifies (logship as `nobody`) an unreadable file is warned about once, counted, and read
        once it becomes readable; the readable file next to it is read meanwhile."""
        if os.geteuid() != 0 or not shutil.which("setpriv"):
            self.skipTest("needs root and setpriv to run logship as nobody (root reads every file)")
        h = Harness(self, name="perm")
        for d in (h.tmp.path, h.logdir):
            os.chmod(d, 0o755)
        os.makedirs(h.data_dir, exist_ok=True)
        shutil.chown(h.data_dir, "nobody", "nogroup")
        open(h.out, "w").close()
        shutil.chown(h.out, "nobody", "nogroup")
        os.chmod(h.cfg_path, 0o644)
        ok, secret = h.path("ok.log"), h.path("secret.log")
        append(ok, lines_blob("ok", 0, 100))
        append(secret, lines_blob("sec", 0, 100))
        os.chmod(ok, 0o644)
        os.chmod(secret, 0o600)
        # The log of the process is written by the test (root), so nobody needs no access to it.
        h.start(cmd_prefix=["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"])
        h.wait_lines(keys("ok", 0, 100))
        wait_for(lambda: h.m0("logship_component_errors_total", component_id=SOURCE_ID,
                              error="permission_denied") >= 1, 10, "permission_denied counted")
        t_window = time.monotonic()
        append(ok, lines_blob("ok", 100, 200))
        h.wait_lines(keys("ok", 0, 200))
        # Observation window of at least 10 scan intervals for "warned once".
        time.sleep(max(0.0, 1.2 - (time.monotonic() - t_window)))
        warnings = [ln for ln in h.proc.log().splitlines() if secret in ln]
        self.assertEqual(len(warnings), 1, f"warned once per file, got: {warnings[:5]}")
        self.assertIn("ermission denied", warnings[0])
        os.chmod(secret, 0o644)
        h.wait_lines(keys("ok", 0, 200) | keys("sec", 0, 100), 30)
        h.settle()
        h.assert_exactly_once(keys("ok", 0, 200) | keys("sec", 0, 100))
        self.assertEqual(h.stop(), 0)

    def test_directory_fifo_and_device_are_skipped_with_a_warning(self):
        """Verifies a directory, a FIFO and a device (symlink to /dev/null) matched by the glob are
        skipped with a warning naming them, and never block reading of the regular file."""
        h = Harness(self, name="nonreg")
        os.mkdir(h.path("dir.log"))
        os.mkfifo(h.path("fifo.log"))
        os.symlink("/dev/null", h.path("dev.log"))
        append(h.path("ok.log"), lines_blob("ok", 0, 100))
        h.start()
        h.wait_lines(keys("ok", 0, 100))
        os.mkfifo(h.path("late-fifo.log"))  # appears while running
        append(h.path("ok.log"), lines_blob("ok", 100, 200))
        h.wait_lines(keys("ok", 0, 200))
        for name in ("dir.log", "fifo.log", "dev.log", "late-fifo.log"):
            try:
                wait_for(lambda: h.path(name) in h.proc.log(), 10, f"a warning naming {name}")
            except AssertionError:
                self.fail(f"no warning naming {name}\n--- log ---\n{h.proc.log()[-3000:]}")
        self.assertTrue(h.proc.alive())
        h.settle()
        h.assert_exactly_once(keys("ok", 0, 200))
        self.assertEqual(h.stop(), 0)

    def test_directory_matched_by_a_double_star_glob_is_warned_about_too(self):
        """Verifies a directory and a FIFO matched by a `**` glob are skipped with the same warning
        naming them as with `*` globs, and the regular files below are read."""
        h = Harness(self, name="nonreg-starstar", include=None)
        h.cfg["sources"][SOURCE_ID]["include"] = [h.logdir + "/**/*.log"]
        h.rewrite_config()
        os.makedirs(h.path("sub/dir.log"))
        os.mkfifo(h.path("sub/fifo.log"))
        append(h.path("sub/ok.log"), lines_blob("ok", 0, 100))
        h.start()
        h.wait_lines(keys("ok", 0, 100))
        for name in ("sub/dir.log", "sub/fifo.log"):
            wait_for(lambda: h.path(name) + " is not a regular file" in h.proc.log(), 10, f"a warning naming {name}")
        h.settle()
        h.assert_exactly_once(keys("ok", 0, 100))
        self.assertEqual(h.stop(), 0)

    def test_checkpoint_write_failure_pauses_reading_and_loses_nothing(self):
        """Verifies a full disk under data_dir: the checkpoint error is reported, reading pauses (no
        new lines read while it fails), and once space is back every line arrives, once, also after
        a restart."""
        ddir = mount_tmpfs(self, "1m")
        h = Harness(self, name="ckpt-full", data_dir=os.path.join(ddir, "data"))
        p = h.path("a.log")
        append(p, lines_blob("a", 0, 1000))
        h.start()
        h.wait_lines(keys("a", 0, 1000))
        filler = fill(ddir)
        append(p, lines_blob("a", 1000, 2000))
        wait_for(lambda: h.m0("logship_component_errors_total", component_id=SOURCE_ID, stage="checkpoint") >= 1,
                 15, "checkpoint write failure reported")
        received = h.m0("logship_component_received_events_total", component_id=SOURCE_ID)
        append(p, lines_blob("a", 2000, 3000))
        time.sleep(1.5)  # observation window: reading must stay paused
        self.assertEqual(h.m0("logship_component_received_events_total", component_id=SOURCE_ID), received,
                         "lines read while checkpoints cannot be written")
        os.unlink(filler)
        h.wait_lines(keys("a", 0, 3000), 30)
        h.settle()
        h.assert_exactly_once(keys("a", 0, 3000))
        h.stop()
        h.start()
        append(p, lines_blob("a", 3000, 3100))
        h.wait_lines(keys("a", 0, 3100))
        h.settle()
        h.assert_exactly_once(keys("a", 0, 3100), msg="after a restart (checkpoint persisted once space is back):")
        self.assertEqual(h.stop(), 0)

    def test_bytes_truncated_away_before_read_are_counted_and_logged(self):
        """Verifies (sink down, so logship stops reading part-way through a 16 MiB file) that
        truncating the file counts exactly the bytes never read in logship_file_abandoned_bytes_total
        (delivered + abandoned == the file's size), logs the path, and reads the new content."""
        h = Harness(self, name="abandon")
        port = free_port()
        h.cfg["sinks"] = {"hec": {
            "type": "splunk_hec", "inputs": [SOURCE_ID], "endpoints": [f"http://127.0.0.1:{port}"],
            "token": "t0k3n", "buffer": {"max_bytes": "64KiB"}, "batch": {"max_bytes": "16KiB"},
            "retry": {"initial_backoff": "50ms", "max_backoff": "200ms"}}}
        h.rewrite_config()
        p = h.path("big.log")
        n = 0
        with open(p, "w") as f:
            while f.tell() < 16 * 2**20:
                f.write(lines_blob("a", n, n + 1000))
                n += 1000
        size = os.path.getsize(p)
        h.start()
        wait_for(lambda: h.m0("logship_component_errors_total", component_id="hec") >= 1, 15, "sink errors")
        read = h.m0("logship_component_received_events_total", component_id=SOURCE_ID)
        self.assertLess(read, n, "the whole file was read although the sink is down (no back-pressure)")
        os.truncate(p, 0)
        append(p, lines_blob("b", 0, 100))
        # The receiver comes up: logship -> HEC -> receiver -> out.jsonl
        rout = h.tmp.join("received.jsonl")
        rcfg = receiver_config(h.tmp, port, rout, tokens=["t0k3n"])
        rcfg["data_dir"] = h.tmp.join("rdata")
        r = Logship(write_config(h.tmp.join("receiver.yaml"), rcfg), "receiver").start()
        self.addCleanup(lambda: r.alive() and r.stop())
        wait_hec_up(port)
        wait_for(lambda: keys("b", 0, 100).issubset(parse(read_jsonl(rout)).keys()), 60, "the new content")
        wait_for(lambda: h.m0("logship_file_abandoned_bytes_total", component_id=SOURCE_ID) > 0, 10,
                 "abandoned bytes counted")
        h.settle()
        got = parse(read_jsonl(rout))
        a = sorted(k[1] for k in got if k[0] == "a")
        self.assertEqual(a, list(range(len(a))), "a contiguous prefix of the old content, once")
        delivered_bytes = len(lines_blob("a", 0, len(a)).encode())
        abandoned = h.m0("logship_file_abandoned_bytes_total", component_id=SOURCE_ID)
        self.assertEqual(delivered_bytes + abandoned, size,
                         f"delivered {delivered_bytes} + abandoned {abandoned} != size {size}")
        self.assertIn(p, h.proc.log())
        self.assertEqual(h.stop(), 0)


if __name__ == "__main__":
    unittest.main()
