"""kill -9 of the forwarder mid-stream: after a restart every line arrives, and duplicates stay
within the documented bound (README, "Delivery guarantees"):

  duplicates <= events the sink's buffer can hold (buffer.max_bytes, or one source batch of at most
                8192 lines when larger)
              + events in flight (request.concurrency x batch.max_bytes worth)
              + events acknowledged in the last checkpoint interval (100 ms) and its fsync
"""
import collections
import os
import sys
import threading
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from lib import Logship, count_lines, read_jsonl, wait_for  # noqa: E402
from test_end_to_end import Pipeline, line_text, seqs, write_lines  # noqa: E402

BUFFER = 256 * 1024
BATCH = 64 * 1024
CONCURRENCY = 2
RATE = 20_000  # lines/s written


class CrashRecovery(unittest.TestCase):
    def test_kill9_mid_stream_loses_nothing_and_duplicates_stay_bounded(self):
        """Verifies a kill -9 of the forwarder loses no line and re-sends at most the documented bound."""
        p = Pipeline(self, tls=False, sink_extra={
            "buffer": {"max_bytes": "256KiB"},
            "batch": {"max_bytes": "64KiB"},
            "request": {"concurrency": CONCURRENCY},
        })
        p.start_receiver()
        p.start_forwarder()
        n = 100_000
        writer = threading.Thread(target=write_lines, args=(p.logfile, 0, n), kwargs={"rate": RATE})
        writer.start()
        wait_for(lambda: count_lines(p.out) >= 30_000, 60, "30,000 events before the crash", interval=0.02)
        p.forwarder.kill9()
        forwarder2 = Logship(p.fcfg_path, "forwarder2").start()
        self.addCleanup(lambda: forwarder2.alive() and forwarder2.stop())
        writer.join()
        try:
            wait_for(lambda: len(set(seqs(read_jsonl(p.out)))) >= n, 120, "every line after the restart", interval=0.3)
        except AssertionError:
            self.fail(f"lost {n - len(set(seqs(read_jsonl(p.out))))} lines\n{forwarder2.log()[-3000:]}")
        got = seqs(read_jsonl(p.out))
        self.assertEqual(sorted(set(got)), list(range(n)))
        dups = sum(c - 1 for c in collections.Counter(got).values() if c > 1)
        line = len(line_text(0).encode()) + 1
        bound = max(BUFFER // line, 8192) + CONCURRENCY * (BATCH // line) + int(RATE * 0.2)
        print(f"duplicates after kill -9: {dups} (bound {bound})")
        self.assertLessEqual(dups, bound)
        self.assertEqual(forwarder2.stop(), 0)


if __name__ == "__main__":
    unittest.main()
