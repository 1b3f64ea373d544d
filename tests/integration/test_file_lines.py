"""`file` source, line cutting, through the real binary: CRLF, a 50 MiB single line (split at
max_line_bytes, parts flagged, memory bounded), binary garbage, partial_line_timeout, a partial
last line never checkpointed as read, empty files that later grow."""
import json
import os
import random
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from filetail import Harness, SOURCE_ID, append, line, lines_blob, peak_rss_mib  # noqa: E402
from lib import wait_for  # noqa: E402


def keys(fid, a, b):
    return {(fid, i) for i in range(a, b)}


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for ln in f:
            if ln.startswith("VmRSS:"):
                return int(ln.split()[1]) / 1024.0
    return 0.0


class Lines(unittest.TestCase):
    def test_crlf_and_lf_lines_have_no_line_terminator_in_events(self):
        """Verifies \\r\\n and \\n lines (100,000, crossing many read-chunk boundaries) arrive once
        each with exactly the text between terminators."""
        h = Harness(self, name="crlf")
        p = h.path("crlf.log")
        with open(p, "w", newline="") as f:
            for i in range(100_000):
                f.write(line("c", i) + ("\r\n" if i % 3 else "\n"))
        h.start()
        h.wait_lines(keys("c", 0, 100_000), 90)
        h.settle()
        h.assert_exactly_once(keys("c", 0, 100_000))
        bad = [e["event"] for e in h.events() if e["event"] != line("c", int(e["event"][8:15]))]
        self.assertEqual(bad[:5], [], f"{len(bad)} events differ from their line (\\r kept?)")
        self.assertEqual(h.stop(), 0)

    def test_50mib_single_line_split_at_max_line_bytes_with_bounded_memory(self):
        """Verifies a 50 MiB line is split into max_line_bytes (1 MiB) parts flagged
        logship_truncated, the parts join to the line, the next lines arrive, and logship's peak
        RSS does not grow with the line (< baseline + 40 MiB)."""
        h = Harness(self, name="longline")
        p = h.path("long.log")
        h.start()
        pid = h.proc.proc.pid
        base = rss_mib(pid)
        size = 50 * 2**20 + 123
        rnd = random.Random(7)
        alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
        block = "".join(rnd.choice(alphabet) for _ in range(2**16))
        with open(p, "w") as f:
            f.write(line("l", 0) + "\n")
            written = 0
            while written < size:
                chunk = block[: min(len(block), size - written)]
                f.write(chunk)
                written += len(chunk)
            f.write("\n")
            f.write(lines_blob("l", 1, 100))
        h.wait_lines(keys("l", 0, 100), 120)
        h.settle()
        h.assert_exactly_once(keys("l", 0, 100))
        peak = peak_rss_mib(pid)
        print(f"50 MiB line: baseline RSS {base:.1f} MiB, peak RSS {peak:.1f} MiB")
        parts = [e for e in h.events() if not e["event"].startswith("f=l ")]
        limit = 2**20
        self.assertTrue(all(len(e["event"].encode()) <= limit for e in parts), "a part exceeds max_line_bytes")
        self.assertEqual(len(parts), (size + limit - 1) // limit, "number of parts")
        joined = "".join(e["event"] for e in parts)
        self.assertEqual(len(joined), size)
        self.assertTrue(joined.startswith(block[:1000]))
        # Every part, the last one included, carries the flag.
        unflagged = [i for i, e in enumerate(parts) if "logship_truncated" not in (e.get("fields") or {})]
        self.assertEqual(unflagged, [], f"parts without logship_truncated in fields (first part: "
                                        f"{ {k: v for k, v in parts[0].items() if k != 'event'} })")
        self.assertLess(peak, base + 40, "peak RSS grows with the line length")
        self.assertEqual(h.stop(), 0)

    def test_every_part_of_a_split_line_is_flagged_whichever_way_it_arrives(self):
        """Verifies that a line longer than max_line_bytes (1KiB) is split and every part carries
        logship_truncated, the last one included. This holds when the line arrives whole, when it
        arrives in pieces (split while incomplete), and when it is an unterminated last line
        emitted by partial_line_timeout. Lines of exactly max_line_bytes are not flagged."""
        h = Harness(self, name="splitflag", source={"max_line_bytes": "1KiB", "partial_line_timeout": "300ms"})
        p = h.path("s.log")
        h.start()
        whole = "A" * 2500
        pieces = "B" * 3100
        exact = "C" * 1024
        tail = "D" * 2100
        append(p, whole + "\n" + exact + "\n")
        append(p, pieces[:1500])  # the first part is cut while the line is incomplete
        wait_for(lambda: any(e["event"].startswith("B") for e in h.events()), 10, "the first part of B")
        append(p, pieces[1500:] + "\n" + line("s", 0) + "\n")
        append(p, tail)  # no newline: emitted after partial_line_timeout
        wait_for(lambda: sum(len(e["event"]) for e in h.events() if e["event"].startswith("D")) == len(tail),
                 10, "the unterminated last line, in parts")
        h.settle()
        for letter, text in (("A", whole), ("B", pieces), ("D", tail)):
            parts = [e for e in h.events() if e["event"].startswith(letter)]
            self.assertEqual("".join(e["event"] for e in parts), text, f"{letter}: the parts join to the line")
            self.assertGreater(len(parts), 1, f"{letter} was split")
            unflagged = [i for i, e in enumerate(parts) if "logship_truncated" not in (e.get("fields") or {})]
            self.assertEqual(unflagged, [], f"{letter}: parts without logship_truncated ({len(parts)} parts)")
        c = [e for e in h.events() if e["event"].startswith("C")]
        self.assertEqual(len(c), 1)
        self.assertNotIn("logship_truncated", c[0].get("fields") or {}, "a line of exactly max_line_bytes")
        self.assertEqual(h.stop(), 0)

    def test_binary_garbage_is_cut_into_lines_and_output_stays_valid_json(self):
        """Verifies random bytes (NUL, invalid UTF-8, control bytes) are cut at \\n into exactly as
        many events, every output line is valid JSON, and numbered lines after it all arrive."""
        h = Harness(self, name="garbage")
        p = h.path("bin.log")
        rnd = random.Random(1234)
        segs = 2000
        with open(p, "wb") as f:
            for _ in range(segs):
                n = rnd.randrange(1, 300)
                b = bytes(rnd.choice([x for x in range(256) if x != 10]) for _ in range(n))
                if b.endswith(b"\r"):
                    b = b[:-1] + b"x"
                f.write(b + b"\n")
            f.write(lines_blob("g", 0, 1000).encode())
        h.start()
        h.wait_lines(keys("g", 0, 1000), 60)
        h.settle()
        h.assert_exactly_once(keys("g", 0, 1000))
        with open(h.out, "rb") as f:
            raw = f.read().split(b"\n")
        raw = [r for r in raw if r]
        for r in raw:
            json.loads(r)  # raises on invalid JSON
        self.assertEqual(len(raw), segs + 1000, "one event per garbage line")
        self.assertEqual(h.stop(), 0)

    def test_partial_line_timeout_emits_an_unterminated_last_line_once(self):
        """Verifies an unterminated last line is emitted after partial_line_timeout (500ms), not
        before, once; lines appended afterwards arrive as their own events."""
        h = Harness(self, name="partial", source={"partial_line_timeout": "500ms"})
        p = h.path("p.log")
        h.start()
        append(p, lines_blob("p", 0, 10))
        h.wait_lines(keys("p", 0, 10))
        t0 = time.monotonic()
        append(p, line("p", 10))  # no newline
        wait_for(lambda: ("p", 10) in h.counts(), 10, "the unterminated line", interval=0.02)
        waited = time.monotonic() - t0
        self.assertGreaterEqual(waited, 0.4, "emitted before partial_line_timeout")
        append(p, lines_blob("p", 11, 20))
        h.wait_lines(keys("p", 0, 20))
        h.settle()
        h.assert_exactly_once(keys("p", 0, 20))
        self.assertIn(line("p", 10), [e["event"] for e in h.events()])
        self.assertEqual(h.stop(), 0)

    def test_partial_last_line_is_not_checkpointed_across_restart(self):
        """Verifies a partial last line at shutdown is neither emitted nor checkpointed: after the
        restart its completed text arrives once, whole."""
        h = Harness(self, name="partial-restart", source={"partial_line_timeout": "60s"})
        p = h.path("q.log")
        append(p, lines_blob("q", 0, 100) + "f=q seq=0000100 first-half")
        h.start()
        h.wait_lines(keys("q", 0, 100))
        h.stop()
        append(p, " second-half\n" + lines_blob("q", 101, 200))
        h.start()
        h.wait_lines(keys("q", 0, 200))
        h.settle()
        h.assert_exactly_once(keys("q", 0, 200))
        texts = [e["event"] for e in h.events() if e["event"].startswith("f=q seq=0000100")]
        self.assertEqual(texts, ["f=q seq=0000100 first-half second-half"])
        # Same after kill -9.
        # One write: once seq 200 arrived, logship has read the partial that follows it.
        append(p, line("q", 200) + "\nf=q seq=0000201 head")
        h.wait_lines(keys("q", 0, 201))
        h.kill9()
        append(p, " tail\n")
        h.start()
        h.wait_lines(keys("q", 0, 202))
        h.settle()
        texts = [e["event"] for e in h.events() if e["event"].startswith("f=q seq=0000201")]
        self.assertEqual(texts, ["f=q seq=0000201 head tail"])
        self.assertEqual(h.stop(), 0)

    def test_empty_files_that_later_grow(self):
        """Verifies 20 files empty at start-up are read once they grow, and once only across a
        restart."""
        h = Harness(self, name="empty")
        for i in range(20):
            open(h.path(f"e{i:02d}.log"), "w").close()
        append(h.path("marker.log"), line("m", 0) + "\n")
        h.start()
        h.wait_lines({("m", 0)})
        for i in range(20):
            append(h.path(f"e{i:02d}.log"), lines_blob(f"e{i:02d}", 0, 50))
        exp = {("m", 0)} | {(f"e{i:02d}", j) for i in range(20) for j in range(50)}
        h.wait_lines(exp)
        h.stop()
        for i in range(20):
            append(h.path(f"e{i:02d}.log"), lines_blob(f"e{i:02d}", 50, 60))
        h.start()
        exp |= {(f"e{i:02d}", j) for i in range(20) for j in range(50, 60)}
        h.wait_lines(exp)
        h.settle()
        h.assert_exactly_once(exp)
        self.assertEqual(h.m0("logship_component_received_events_total", component_id=SOURCE_ID), 200)
        self.assertEqual(h.stop(), 0)


if __name__ == "__main__":
    unittest.main()
