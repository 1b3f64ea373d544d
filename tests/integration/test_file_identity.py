"""`file` source, file identity (issue (a)-(f)), through the real binary, counting every line:

(a) a renamed file keeps its identity and offset (live and across a restart);
(b) two live files whose first `fingerprint_bytes` are identical are two files;
(c) a copytruncate copy (glob app.log*) continues from the offset already read, never re-sent;
(d) a truncated file is read again from 0, counted (also when rewritten longer while stopped);
(e) a deleted file whose inode is reused for new content is a new file (live and while stopped,
    also when the new file starts with the same first KiB); a copytruncate copy made on such an
    inode while stopped still continues from the offset read of the file it copies;
(f) a file shorter than fingerprint_bytes is tracked and keeps its identity as it grows.
"""
import json
import os
import shutil
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from filetail import Harness, SOURCE_ID, append, line, lines_blob  # noqa: E402
from lib import wait_for  # noqa: E402

HEADER = "".join(f"# identical header line {i:02d} of a CSV-like export, same in every file ....\n"
                 for i in range(16))  # 1280 bytes: longer than fingerprint_bytes (1 KiB)
assert len(HEADER) > 1024


def keys(fid, a, b):
    return {(fid, i) for i in range(a, b)}


def create_with_inode(directory, ino, content, final_path, tries=500):
    """Creates a file holding `content` whose inode number is `ino` (freed earlier), at
    final_path. Returns False when the filesystem did not hand the inode out again."""
    made, ok = [], False
    try:
        for n in range(tries):
            cand = os.path.join(directory, f".cand-{n}.tmp")
            fd = os.open(cand, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            made.append(cand)
            if os.fstat(fd).st_ino == ino:
                os.write(fd, content.encode())
                os.close(fd)
                os.rename(cand, final_path)
                made.pop()
                ok = True
                break
            os.close(fd)
    finally:
        for c in made:
            os.unlink(c)
    return ok


class Identity(unittest.TestCase):
    # (a) ------------------------------------------------------------------------------------
    def test_a_renamed_file_keeps_identity_and_offset_live_and_across_restart(self):
        """Verifies a rename (inside the glob) neither re-sends nor loses lines, running or stopped."""
        h = Harness(self, name="rename-id")
        a = h.path("a.log")
        append(a, lines_blob("a", 0, 1000))
        h.start()
        h.wait_lines(keys("a", 0, 1000))
        os.rename(a, h.path("b.log"))
        append(h.path("b.log"), lines_blob("a", 1000, 2000))
        h.wait_lines(keys("a", 0, 2000))
        h.settle()
        h.assert_exactly_once(keys("a", 0, 2000), msg="after a live rename:")
        h.stop()
        os.rename(h.path("b.log"), h.path("c.log"))
        append(h.path("c.log"), lines_blob("a", 2000, 3000))
        h.start()
        h.wait_lines(keys("a", 0, 3000))
        h.settle()
        h.assert_exactly_once(keys("a", 0, 3000), msg="after a rename while stopped:")
        self.assertEqual(h.stop(), 0)

    # (b) ------------------------------------------------------------------------------------
    def test_b_two_files_with_identical_first_kib_are_two_files(self):
        """Verifies two live files sharing their first 1280 bytes are both read fully, once each,
        and stay two files across a restart."""
        h = Harness(self, name="same-header")
        x, y = h.path("x.log"), h.path("y.log")
        append(x, HEADER + lines_blob("x", 0, 500))
        append(y, HEADER + lines_blob("y", 0, 500))
        h.start()
        h.wait_lines(keys("x", 0, 500) | keys("y", 0, 500))
        h.stop()
        append(x, lines_blob("x", 500, 1000))
        append(y, lines_blob("y", 500, 1000))
        h.start()
        # A third file with the same header appears while running.
        z = h.path("z.log")
        append(z, HEADER + lines_blob("z", 0, 500))
        expected = keys("x", 0, 1000) | keys("y", 0, 1000) | keys("z", 0, 500)
        h.wait_lines(expected)
        h.settle()
        h.assert_exactly_once(expected)
        headers = [e["source"] for e in h.events() if e["event"].startswith("# identical header line 00")]
        self.assertEqual(sorted(headers), sorted([x, y, z]), "each file's header read once")
        self.assertEqual(h.stop(), 0)

    # (c) ------------------------------------------------------------------------------------
    def test_c_copytruncate_copy_continues_from_offset_not_resent(self):
        """Verifies copytruncate (app.log -> app.log.1 with the same content, glob app.log*) does not
        re-send the copy, live; and while stopped the copy's unread tail is read from the offset."""
        h = Harness(self, name="copytrunc-id")
        h.cfg["sources"][SOURCE_ID]["include"] = [h.logdir + "/app.log*"]
        h.rewrite_config()
        app = h.path("app.log")
        append(app, lines_blob("a", 0, 1000))
        h.start()
        h.wait_lines(keys("a", 0, 1000))
        shutil.copyfile(app, h.path("app.log.1"))
        os.truncate(app, 0)
        append(app, lines_blob("a", 1000, 1500))
        h.wait_lines(keys("a", 0, 1500))
        h.settle()
        h.assert_exactly_once(keys("a", 0, 1500), msg="live copytruncate:")
        self.assertGreaterEqual(h.m0("logship_file_truncations_total", component_id=SOURCE_ID), 1)
        h.stop()
        # While stopped: app.log grows, is copied to app.log.2 (unread tail inside), truncated.
        append(app, lines_blob("a", 1500, 3000))
        os.rename(h.path("app.log.1"), h.path("app.log.3"))
        shutil.copyfile(app, h.path("app.log.2"))
        os.truncate(app, 0)
        append(app, lines_blob("a", 3000, 3200))
        h.start()
        h.wait_lines(keys("a", 0, 3200))
        h.settle()
        h.assert_exactly_once(keys("a", 0, 3200), msg="copytruncate while stopped:")
        self.assertEqual(h.stop(), 0)

    def test_c_copy_rewritten_in_place_then_stop_is_not_resent(self):
        """Verifies `cp app.log app.log.1 && : > app.log` over an existing, already read app.log.1,
        followed by new lines in app.log and a stop before any new position of the copy was
        acknowledged (the copy was read to its end through app.log): after the restart nothing is sent twice (the generation that
        placed the copy outlives the stop)."""
        h = Harness(self, name="cp-inplace-stop")
        h.cfg["sources"][SOURCE_ID]["include"] = [h.logdir + "/app.log*"]
        h.rewrite_config()
        app, copy = h.path("app.log"), h.path("app.log.1")
        append(copy, lines_blob("c", 0, 2000))  # the previous copy, read first
        h.start()
        h.wait_lines(keys("c", 0, 2000))
        append(app, lines_blob("a", 0, 50))
        h.wait_lines(keys("a", 0, 50))
        h.settle()
        shutil.copyfile(app, copy)  # rewritten in place: same inode, shorter, new content
        os.truncate(app, 0)
        size = os.path.getsize(copy)
        wait_for(lambda: f"app.log.1 (rewritten in place) starts at offset {size}" in h.proc.log(), 20,
                 "the copy placed at its end")
        append(app, lines_blob("a", 50, 60))  # app.log's entry moves on to its new generation
        h.wait_lines(keys("a", 0, 60))
        h.settle()
        h.stop()
        h.start()
        append(app, lines_blob("a", 60, 70))
        h.wait_lines(keys("a", 0, 70) | keys("c", 0, 2000))
        h.settle()
        h.assert_exactly_once(keys("a", 0, 70) | keys("c", 0, 2000), msg="copy in place, stop, start:")
        self.assertEqual(h.stop(), 0)

    def test_c_copytruncate_then_more_lines_than_before_is_not_mistaken_for_growth(self):
        """Verifies a copytruncate followed at once by more bytes than were read (the file is longer
        than our offset again before logship looks) is seen as a rewrite: the new lines are read
        from 0, none lost, and the copy is not re-sent."""
        h = Harness(self, name="copytrunc-grow", source={"poll_only": True, "scan_interval": "700ms"})
        h.cfg["sources"][SOURCE_ID]["include"] = [h.logdir + "/app.log*"]
        h.rewrite_config()
        app = h.path("app.log")
        append(app, lines_blob("a", 0, 100))
        h.start()
        h.wait_lines(keys("a", 0, 100))
        for r in range(3):
            shutil.copyfile(app, h.path(f"app.log.{r + 1}"))
            os.truncate(app, 0)
            base = 100 + r * 1000
            append(app, lines_blob("a", base, base + 1000))  # longer than what was read
            h.wait_lines(keys("a", 0, base + 1000))
        h.settle()
        h.assert_exactly_once(keys("a", 0, 3100), msg="copytruncate + rewrite past the offset:")
        self.assertIn("written again", h.proc.log())
        self.assertEqual(h.stop(), 0)

    # (d) ------------------------------------------------------------------------------------
    def test_d_truncated_file_is_read_again_from_zero_and_counted(self):
        """Verifies a truncation (live, then while stopped with longer new content) re-reads the
        file from 0 and counts each truncation."""
        h = Harness(self, name="truncate")
        t = h.path("t.log")
        append(t, lines_blob("t", 0, 1000))
        h.start()
        h.wait_lines(keys("t", 0, 1000))
        os.truncate(t, 0)
        append(t, lines_blob("t", 1000, 1100))  # shorter than before
        h.wait_lines(keys("t", 0, 1100))
        h.settle()
        h.assert_exactly_once(keys("t", 0, 1100), msg="live truncation:")
        wait_for(lambda: h.m0("logship_file_truncations_total", component_id=SOURCE_ID) == 1, 10,
                 "logship_file_truncations_total == 1")
        h.stop()
        # While stopped: truncated and rewritten LONGER than the checkpointed offset (size alone
        # does not show it: the bytes before the saved offset do).
        with open(t, "w") as f:
            f.write(lines_blob("t", 2000, 4000))
        h.start()
        h.wait_lines(keys("t", 0, 1100) | keys("t", 2000, 4000))
        h.settle()
        h.assert_exactly_once(keys("t", 0, 1100) | keys("t", 2000, 4000), msg="rewritten while stopped:")
        self.assertEqual(h.stop(), 0)

    # (e) ------------------------------------------------------------------------------------
    def _inode_reuse(self, same_header, stopped):
        # Checkpoints on another filesystem (tmpfs) so their temp files cannot take the freed inode.
        ddir = tempfile.mkdtemp(prefix="logship-inode-data-", dir="/dev/shm") if os.path.isdir("/dev/shm") else None
        if ddir:
            self.addCleanup(shutil.rmtree, ddir, True)
        h = Harness(self, name="inode-reuse", data_dir=ddir)
        p = h.path("r.log")
        prefix = HEADER if same_header else ""
        append(p, prefix + lines_blob("old", 0, 200))
        h.start()
        h.wait_lines(keys("old", 0, 200))
        ino = os.stat(p).st_ino
        if stopped:
            h.stop()
        os.unlink(p)
        if not stopped:
            # Wait until logship released the deleted file (so the inode is free again).
            wait_for(lambda: (h.metric("logship_file_open_files", component_id=SOURCE_ID) or 0) == 0, 15,
                     "the deleted file released")
        # Longer than the old offset; other payload, so the bytes before the saved offset differ.
        content = prefix + lines_blob("new", 0, 600, payload="a different application writes here, other text")
        if not create_with_inode(h.logdir, ino, content, p):
            self.skipTest("the filesystem did not hand the freed inode out again")
        if stopped:
            h.start()
        h.wait_lines(keys("old", 0, 200) | keys("new", 0, 600))
        h.settle()
        h.assert_exactly_once(keys("old", 0, 200) | keys("new", 0, 600), msg="inode reused:")
        if same_header:
            heads = [e for e in h.events() if e["event"].startswith("# identical header line 00")]
            self.assertEqual(len(heads), 2, "the new file's header is read too")
        self.assertEqual(h.stop(), 0)

    def test_e_inode_reused_for_new_content_is_a_new_file_live(self):
        """Verifies a new file on a reused inode (logship running) is read from 0."""
        self._inode_reuse(same_header=False, stopped=False)

    def test_e_inode_reused_while_stopped_stale_checkpoint_not_applied(self):
        """Verifies a stale checkpoint (same dev/inode/path, different bytes) is not applied after a
        restart: the new file is read from 0."""
        self._inode_reuse(same_header=False, stopped=True)

    def test_e_inode_reused_with_identical_first_kib_while_stopped(self):
        """Verifies inode reuse is detected from the bytes just before the saved offset even when
        the first KiB (the fingerprint) is identical."""
        self._inode_reuse(same_header=True, stopped=True)

    def _copy_on_reused_inode(self, gone_lines):
        # The filesystem hands a freed inode out again only sometimes (ext4 avoids recently freed
        # ones): the copy's inode is given to the deleted file's kept checkpoint entry instead,
        # exactly the state a reuse leaves behind.
        h = Harness(self, name="copy-reused-inode")
        h.cfg["sources"][SOURCE_ID]["include"] = [h.logdir + "/*.log*"]
        h.rewrite_config()
        gone, app = h.path("gone.log"), h.path("app.log")
        append(gone, lines_blob("g", 0, gone_lines))
        append(app, lines_blob("a", 0, 3))
        h.start()
        h.wait_lines(keys("g", 0, gone_lines) | keys("a", 0, 3))
        os.unlink(gone)
        # Released; its checkpoint entry is kept (closed_at) for a while.
        wait_for(lambda: (h.metric("logship_file_open_files", component_id=SOURCE_ID) or 0) == 1, 15,
                 "the deleted file released")
        h.settle()
        h.stop()
        # While stopped: copytruncate app.log -> app.log.1, the copy on gone.log's inode.
        shutil.copyfile(app, h.path("app.log.1"))
        os.truncate(app, 0)
        ckpt = os.path.join(h.data_dir, "checkpoints", f"{SOURCE_ID}.json")
        with open(ckpt) as f:
            text = f.read()
        end = "\n#end\n"  # checkpoint files end with this marker (a torn write lacks it)
        self.assertTrue(text.endswith(end), text)
        state = json.loads(text[:-len(end)])
        entry = [e for e in state["files"] if e["path"] == gone]
        self.assertEqual(len(entry), 1, f"the deleted file's entry is kept: {state}")
        self.assertIn("closed_at", entry[0])
        copy_size = os.path.getsize(h.path("app.log.1"))
        self.assertEqual(entry[0]["offset"] > copy_size, gone_lines > 3, (entry[0], copy_size))
        entry[0]["ino"] = os.stat(h.path("app.log.1")).st_ino
        with open(ckpt, "w") as f:
            f.write(json.dumps(state) + end)
        h.start()
        append(app, lines_blob("a", 3, 6))
        expected = keys("g", 0, gone_lines) | keys("a", 0, 6)
        h.wait_lines(expected)
        h.settle()
        h.assert_exactly_once(expected, msg="copy on a reused, still checkpointed inode:")
        self.assertEqual(h.stop(), 0)

    def test_e_copy_made_while_stopped_on_a_reused_inode_shorter_than_its_entry(self):
        """Verifies a copytruncate copy made while stopped on the inode of a deleted file whose
        checkpoint entry (offset past the copy's size) is still kept continues from the offset read
        of the file it copies: not re-sent."""
        self._copy_on_reused_inode(gone_lines=300)

    def test_e_copy_made_while_stopped_on_a_reused_inode_longer_than_its_entry(self):
        """Same, the kept entry's offset within the copy's size (other bytes before it)."""
        self._copy_on_reused_inode(gone_lines=1)

    # (f) ------------------------------------------------------------------------------------
    def test_f_file_shorter_than_fingerprint_is_tracked_as_it_grows(self):
        """Verifies an empty file, then a short one (< fingerprint_bytes), growing line by line past
        1 KiB through a rename and a restart, is read once: identity kept throughout."""
        h = Harness(self, name="short")
        s = h.path("s.log")
        open(s, "w").close()  # empty
        h.start()
        n = 0
        for step in range(40):  # ~30 bytes per line: grows past 1 KiB
            append(s, f"f=s seq={n:07d} x\n")
            n += 1
            if step % 5 == 4:
                h.wait_lines(keys("s", 0, n))
            if step == 15:
                h.stop()
                append(s, f"f=s seq={n:07d} while stopped\n")
                n += 1
                h.start()
            if step == 25:
                os.rename(s, h.path("s2.log"))
                s = h.path("s2.log")
        h.wait_lines(keys("s", 0, n))
        h.settle()
        h.assert_exactly_once(keys("s", 0, n), msg="short file growing:")
        self.assertEqual(h.stop(), 0)


if __name__ == "__main__":
    unittest.main()
