"""`file` source, rotation under continuous writing, through the real binary: every numbered line
arrives, none twice (except within the documented bound after kill -9).

- 100 rename rotations (glob `*.log`: the renamed file is drained through its open descriptor);
- 100 copytruncates (glob `app.log*`: the copy is not re-sent, the truncated file is read from 0);
- delete-and-recreate; rotation while logship is stopped (renamed file found and finished first);
- kill -9 during rotations.
"""
import os
import shutil
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from filetail import (Harness, SOURCE_ID, Writer, append, kill_dup_bound, lines_blob)  # noqa: E402
from lib import wait_for  # noqa: E402

RATE = 20_000
ROTATIONS = 100
PERIOD = 0.05  # between rotations (pacing only)


def deleted_fds(pid):
    out = []
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.endswith(" (deleted)"):
                out.append(target)
    except OSError:
        pass
    return out


def shift(h, base, keep=3):
    """logrotate's numbered shift: base.(keep) removed, base.N -> base.N+1."""
    oldest = h.path(f"{base}.{keep}")
    if os.path.exists(oldest):
        os.unlink(oldest)
    for i in range(keep - 1, 0, -1):
        src = h.path(f"{base}.{i}")
        if os.path.exists(src):
            os.rename(src, h.path(f"{base}.{i + 1}"))


class Rotation(unittest.TestCase):
    def _finish(self, h, writer, dup_bound=0, what=""):
        writer.join(60)
        self.assertIsNone(writer.error)
        h.wait_lines(writer.expected(), 90, f"every line {what}")
        h.settle()
        dups = h.assert_exactly_once(writer.expected(), dup_bound, what)
        abandoned = h.m0("logship_file_abandoned_bytes_total", component_id=SOURCE_ID)
        self.assertEqual(abandoned, 0, "bytes reported abandoned although every line arrived")
        return dups

    def test_100_rename_rotations_under_continuous_writing(self):
        """Verifies 100 rename rotations (renamed name outside the glob) lose and repeat nothing:
        each renamed file is drained through its open descriptor, then released."""
        h = Harness(self, name="rename")
        h.start()
        app = h.path("app.log")
        w = Writer(app, "a", total=int(RATE * (ROTATIONS * PERIOD + 1.5)), rate=RATE)
        w.start()
        wait_for(lambda: os.path.exists(app) and os.path.getsize(app) > 0, 10, "writer started")
        for _ in range(ROTATIONS):
            time.sleep(PERIOD)
            self.assertTrue(w.is_alive(), "the writer finished before 100 rotations: raise its total")
            shift(h, "app.log")
            os.rename(app, h.path("app.log.1"))
            w.reopen()
            self.assertTrue(w.reopened.wait(10))
        self._finish(h, w, what="after 100 rename rotations")
        # Rotated (and later deleted) files are released once drained.
        wait_for(lambda: not deleted_fds(h.proc.proc.pid), 15, "no descriptor of a deleted file held")
        wait_for(lambda: (h.metric("logship_file_open_files", component_id=SOURCE_ID) or 0) <= 1, 15,
                 "open files back to 1")
        self.assertEqual(h.stop(), 0)

    def test_100_copytruncates_under_continuous_writing(self):
        """Verifies 100 copytruncate rotations (glob app.log* covers the copies) lose and repeat
        nothing: a copy continues from the offset already read, the truncated file is read from 0."""
        h = Harness(self, include=None, name="copytruncate")
        h.cfg["sources"][SOURCE_ID]["include"] = [h.logdir + "/app.log*"]
        h.rewrite_config()
        h.start()
        app = h.path("app.log")
        lock = threading.Lock()
        w = Writer(app, "a", total=int(RATE * (ROTATIONS * PERIOD + 1.5)), rate=RATE, lock=lock)
        w.start()
        wait_for(lambda: os.path.exists(app) and os.path.getsize(app) > 0, 10, "writer started")
        for _ in range(ROTATIONS):
            time.sleep(PERIOD)
            self.assertTrue(w.is_alive(), "the writer finished before 100 rotations: raise its total")
            with lock:  # copy + truncate atomic with respect to the writer
                shift(h, "app.log")
                shutil.copyfile(app, h.path("app.log.1"))
                os.truncate(app, 0)
        self._finish(h, w, what="after 100 copytruncates")
        self.assertGreaterEqual(h.m0("logship_file_truncations_total", component_id=SOURCE_ID), 1,
                                "truncations are counted")
        self.assertEqual(h.stop(), 0)

    def test_delete_and_recreate_under_continuous_writing(self):
        """Verifies a file deleted and re-created 20 times loses and repeats nothing (the deleted
        one is drained through its descriptor, the new one read from 0) and descriptors of deleted
        files are released once drained."""
        h = Harness(self, name="delete")
        h.start()
        app = h.path("app.log")
        w = Writer(app, "a", total=int(RATE * 3), rate=RATE)
        w.start()
        wait_for(lambda: os.path.exists(app) and os.path.getsize(app) > 0, 10, "writer started")
        for _ in range(20):
            time.sleep(0.1)
            self.assertTrue(w.is_alive())
            os.unlink(app)
            w.reopen()  # lines written until the reopen go to the deleted file
            self.assertTrue(w.reopened.wait(10))
        self._finish(h, w, what="after 20 delete-and-recreate")
        wait_for(lambda: not deleted_fds(h.proc.proc.pid), 15, "descriptors of deleted files released")
        self.assertEqual(h.stop(), 0)

    def test_rotation_while_stopped_renamed_file_is_found_and_finished_first(self):
        """Verifies a rename rotation made while logship is stopped (glob app.log* covers the renamed
        file): its unread tail arrives, before the new file's lines, and nothing is re-sent."""
        h = Harness(self, name="stopped")
        h.cfg["sources"][SOURCE_ID]["include"] = [h.logdir + "/app.log*"]
        h.rewrite_config()
        app = h.path("app.log")
        append(app, lines_blob("a", 0, 5000))
        h.start()
        h.wait_lines({("a", i) for i in range(5000)}, 30)
        h.stop()
        append(app, lines_blob("a", 5000, 10000))
        os.rename(app, h.path("app.log.1"))
        append(app, lines_blob("b", 0, 5000))
        h.start()
        expected = {("a", i) for i in range(10000)} | {("b", i) for i in range(5000)}
        h.wait_lines(expected, 60)
        h.settle()
        h.assert_exactly_once(expected)
        order = [e["event"][:3] for e in h.events() if isinstance(e.get("event"), str)]
        last_a = max(i for i, p in enumerate(order) if p == "f=a")
        first_b = min(i for i, p in enumerate(order) if p == "f=b")
        self.assertLess(last_a, first_b, "the renamed file is finished before the new file is read")
        srcs = {e["source"] for e in h.events() if e["event"].startswith("f=a seq=0009999")}
        self.assertEqual(srcs, {h.path("app.log.1")}, "the tail is attributed to the renamed path")
        self.assertEqual(h.stop(), 0)

    def test_rotation_while_stopped_outside_glob_is_finished_or_reported(self):
        """Verifies a file renamed outside the glob while logship is stopped is either finished or
        its unread bytes are reported (metric + a log line with the path): never silent."""
        h = Harness(self, name="stopped-out")
        app = h.path("app.log")
        append(app, lines_blob("a", 0, 2000))
        h.start()
        h.wait_lines({("a", i) for i in range(2000)}, 30)
        h.stop()
        append(app, lines_blob("a", 2000, 3000))
        os.rename(app, h.path("app.log.1"))  # not matched by *.log
        append(app, lines_blob("b", 0, 1000))
        h.start()
        h.wait_lines({("b", i) for i in range(1000)}, 30)
        h.settle()
        got = h.counts()
        tail = {("a", i) for i in range(2000, 3000)}
        if tail.issubset(got.keys()):
            return
        wait_for(lambda: h.m0("logship_file_abandoned_bytes_total", component_id=SOURCE_ID) > 0, 10,
                 "the unread tail (1000 lines) neither delivered nor counted as abandoned")
        self.assertIn(app, h.proc.log(), "the abandoned file is logged with its path")

    def test_kill9_during_rotations_loses_nothing_and_duplicates_stay_bounded(self):
        """Verifies kill -9 in the middle of rename rotations (glob app.log*, rotations go on while
        logship is down) loses no line and re-sends at most the documented bound."""
        h = Harness(self, name="kill9")
        h.cfg["sources"][SOURCE_ID]["include"] = [h.logdir + "/app.log*"]
        h.rewrite_config()
        h.start()
        app = h.path("app.log")
        w = Writer(app, "a", total=int(RATE * 5), rate=RATE)
        w.start()
        wait_for(lambda: os.path.exists(app) and os.path.getsize(app) > 0, 10, "writer started")
        n = 0

        def rotate():
            nonlocal n
            n += 1
            os.rename(app, h.path(f"app.log.{n:04d}"))
            w.reopen()
            self.assertTrue(w.reopened.wait(10))

        for _ in range(30):
            time.sleep(PERIOD)
            rotate()
        time.sleep(0.02)
        h.kill9()
        for _ in range(5):  # rotations while it is down
            time.sleep(PERIOD)
            rotate()
        h.start()
        while w.is_alive() and n < 70:
            time.sleep(PERIOD)
            rotate()
        dups = self._finish(h, w, dup_bound=kill_dup_bound(RATE), what="after kill -9 during rotations")
        print(f"duplicates after kill -9 during rotation: {dups} (bound {kill_dup_bound(RATE)})")
        self.assertEqual(h.stop(), 0)


if __name__ == "__main__":
    unittest.main()
