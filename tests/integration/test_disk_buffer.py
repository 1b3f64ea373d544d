"""The splunk_hec sink's encrypted disk buffer (`buffer: {type: disk}` + top-level `encryption`).

A shipper: file source "app" -> splunk_hec sink "out" with a disk buffer, against the fault HEC
server (hec_fault_server.py; `down` = every new connection reset) or, for the 1 GiB outage, logship
itself as the receiver (splunk_hec source -> file sink) on a port held closed until it starts.

  1. no plaintext at rest (clear text, zstd and gzip forms, every file under data_dir)
  2. a 1 GiB outage with bounded RSS, then everything delivered and the buffer drained
  3. kill -9 at 20 seeded random points while writing and while draining: at least once, duplicates
     within the bound computed from the config
  4. self-repair: a bit flip mid-segment, a torn tail, a deleted index
  5. a full disk (LOGSHIP_FAULT_ENOSPC_FILE): backpressure, a clear error, /ready 503, recovery
  6. key rotation across a restart; a missing key stops the start (exit 1) naming its id
  7. max_age expiry
  8. dead letters encrypted, read back with `logship dead-letters [--follow]`
  9. config errors (exit 2, file:line:col)
 10. max_bytes: when_full block (backpressure) and drop_newest (counted)

LOGSHIP_TEST_SEED fixes the kill -9 schedule (the seed is printed either way).
"""
import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import LOGSHIP_BIN, wait_for  # noqa: E402
from bufferlib import (GZIP_MAGIC, HEADER_BYTES, READ_AHEAD_BYTES, SINK, SOURCE_BATCH_BYTES,  # noqa: E402
                       SOURCE_BATCH_LINES, TAG_BYTES, ZSTD_MAGIC, CHECKPOINT_INTERVAL_S, Rig, RssSampler,
                       count_seqs_in_file, holds_for, key_id, line_text, make_key_file, proc_status_kib,
                       random_pad, read_blocks, run_check, scan_for_marker, summarize_counts, tree_digest,
                       write_events, zstd_tool)

MiB = 1 << 20
LOREM = ("lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt ut labore "
         "et dolore magna aliqua ut enim ad minim veniam quis nostrud exercitation ullamco laboris nisi ")


def contiguous(ids):
    ids = sorted(ids)
    return not ids or ids[-1] - ids[0] + 1 == len(ids)


def log_lines_with(text, needle):
    return [ln for ln in text.splitlines() if needle in ln]


class DiskBufferBase(unittest.TestCase):
    """setUp builds the rig: temp dir, keys A (raw) and B (hex), the default shipper config
    (disk buffer, 1 MiB segments, sync 100ms, zstd), nothing started."""

    def setUp(self):
        self.t0 = time.monotonic()
        self.rig = Rig(self)

    def tearDown(self):
        print(f"[{self.id().rsplit('.', 1)[-1]}] {time.monotonic() - self.t0:.1f} s", flush=True)

    # -- helpers --------------------------------------------------------------------------------
    def fill_in_chunks(self, chunks, lines, start=0, pad=200):
        """Writes `chunks` chunks of `lines` events (random payload), each waited into the buffer
        (blocks_written grew, the checkpoint at the end of the file): several blocks per segment."""
        r = self.rig
        seq = start
        for _ in range(chunks):
            before = r.bm("logship_buffer_blocks_written_total") or 0
            write_events(r.logfile, seq, seq + lines, r.marker, pad_fn=lambda k: random_pad(pad))
            seq += lines
            wait_for(lambda: (r.bm("logship_buffer_blocks_written_total") or 0) > before and r.checkpoint_at_end(),
                     30, f"chunk up to {seq} in the buffer", interval=0.02)
        return seq

    def blocks_by_segment(self):
        return [(p, read_blocks(p)) for p in self.rig.segments()]

    def assert_exactly_once(self, counts, expected, msg=""):
        expected = set(expected)
        missing = sorted(expected - set(counts))
        extra = sorted(set(counts) - expected)
        dups = {s: c for s, c in counts.items() if c > 1}
        if missing or extra or dups:
            self.fail(f"{msg} missing {len(missing)} {missing[:10]}, unexpected {len(extra)} {extra[:10]}, "
                      f"duplicated {len(dups)} {list(dups.items())[:10]}" + self.rig.diag())


# ---------------------------------------------------------------------------------------------
# 1. No plaintext at rest
# ---------------------------------------------------------------------------------------------
class NoPlaintextAtRest(DiskBufferBase):
    def test_scanner_finds_the_marker_in_compressed_forms(self):
        """Positive control of the scanner: the marker zstd- and gzip-compressed at odd offsets inside
        random bytes, and in clear text, is found; random bytes alone are clean."""
        import gzip
        tool = zstd_tool()
        print(f"zstd decoder: {tool} (python zstandard module or the zstd CLI of Debian package zstd)")
        self.assertIsNotNone(tool, "no zstd decoder: install Debian package zstd (or python3-zstandard)")
        d = self.rig.tmp.join("scan-control")
        os.makedirs(d)
        text = (self.rig.marker + " some event text\n").encode() * 50
        z = subprocess.run(["zstd", "-q", "-c"], input=text, capture_output=True, check=True).stdout \
            if tool == "cli" else __import__("zstandard").ZstdCompressor().compress(text)
        self.assertEqual(z[:4], ZSTD_MAGIC)
        g = gzip.compress(text)
        self.assertEqual(g[:2], GZIP_MAGIC)
        for name, blob in (("z", os.urandom(1001) + z + os.urandom(77)), ("g", os.urandom(333) + g + os.urandom(5)),
                           ("plain", os.urandom(10) + text), ("clean", os.urandom(200_000))):
            with open(os.path.join(d, name), "wb") as f:
                f.write(blob)
        findings, stats = scan_for_marker(d, self.rig.marker)
        print(f"scanner control: {stats}; {findings}")
        self.assertTrue(any(f.startswith("z zstd@1001") for f in findings), findings)
        self.assertTrue(any(f.startswith("g gzip@333") for f in findings), findings)
        self.assertTrue(any(f.startswith("plain:") for f in findings), findings)
        self.assertFalse(any(f.startswith("clean") for f in findings), findings)

    def _no_plaintext(self, compression):
        r = self.rig
        r.closed_port_endpoint()
        r.buffer["compression"] = compression
        r.shipper_config()
        r.start_shipper()
        n = 20_000
        write_events(r.logfile, 0, n, r.marker, pad_fn=lambda k: random_pad(160))
        r.wait_buffered(n)
        self.assertGreater(r.bm("logship_buffer_bytes"), 0)
        segs = r.segments()
        self.assertGreaterEqual(len(segs), 2, f"several 1 MiB segments expected: {segs}")
        for p in segs:
            with open(p, "rb") as f:
                head = f.read(4)
            self.assertIn(head, (b"LSBK", b""), f"{p} does not start with a block")
        # While running (temp files included), then after a stop.
        findings, stats = scan_for_marker(r.data_dir, r.marker)
        print(f"no plaintext ({compression}), running: {stats}")
        self.assertEqual(findings, [], f"marker found at rest: {findings[:20]}")
        wait_for(lambda: (r.bm("logship_buffer_oldest_event_age_seconds") or 0) >= 1, 15,
                 "logship_buffer_oldest_event_age_seconds >= 1 while the receiver is down")
        r.stop_shipper()
        findings, stats = scan_for_marker(r.data_dir, r.marker)
        files = sorted(os.path.relpath(os.path.join(d, f), r.data_dir) for d, _, fs in os.walk(r.data_dir) for f in fs)
        print(f"no plaintext ({compression}), stopped: {stats}; files: {files}")
        self.assertEqual(findings, [], f"marker found at rest: {findings[:20]}")
        self.assertTrue(os.path.exists(os.path.join(r.buffer_dir, "index")), files)

    def test_no_plaintext_at_rest_zstd(self):
        """Marker-carrying events, receiver down: no file under data_dir holds the marker in clear,
        nor inside anything zstd or gzip decompresses (whole files and every magic offset)."""
        self._no_plaintext("zstd")

    def test_no_plaintext_at_rest_uncompressed(self):
        """The same with buffer.compression: none (encryption alone must hide the text)."""
        self._no_plaintext("none")


# ---------------------------------------------------------------------------------------------
# 2. 1 GiB outage, bounded RSS
# ---------------------------------------------------------------------------------------------
class Outage(DiskBufferBase):
    RSS_LIMIT_MIB = 96

    def test_1gib_outage_bounded_rss_then_all_delivered_and_drained(self):
        """1 GiB of ~250-byte events into the buffer while the receiver is down; peak RSS < 96 MiB over
        the whole run; then the receiver (logship) comes up: every id delivered, the buffer drains
        (buffer_events == 0, at most the current segment left)."""
        r = self.rig
        r.closed_port_endpoint()
        r.buffer["segment_bytes"] = "16MiB"
        r.sink_extra = {}  # the sink's defaults: batch 1MiB, concurrency 4
        r.shipper_config()
        t0 = time.monotonic()
        sh = r.start_shipper()
        rss = RssSampler(sh.proc.pid)
        rss.start()
        # ~250-byte lines: 50 fresh random bytes (100 hex digits) each, so that zstd keeps a few
        # hundred MiB on disk, and some text.
        tail = LOREM[:110]
        one = len(line_text(0, r.marker, "r=" + "0" * 100 + " " + tail)) + 1
        n = (1 << 30) // one
        chunk = 20_000
        with open(r.logfile, "a") as f:
            for c in range(0, n, chunk):
                m = min(n, c + chunk) - c
                rnd = os.urandom(50 * m).hex()
                f.write("".join(f"seq={c + j:08d} {r.marker} r={rnd[100 * j:100 * j + 100]} {tail}\n"
                                for j in range(m)))
        t_written = time.monotonic()
        r.wait_buffered(n, timeout=240)
        t_buffered = time.monotonic()
        segs = r.segments()
        disk = sum(os.path.getsize(p) for p in segs)
        print(f"1 GiB outage: {n} events of {one} bytes ({n * one / MiB:.0f} MiB) written in {t_written - t0:.1f} s, "
              f"in the buffer after {t_buffered - t0:.1f} s: {len(segs)} segments, {disk / MiB:.1f} MiB on disk, "
              f"RSS so far {rss.peak_rss_kib / 1024:.1f} MiB")
        self.assertTrue(sh.alive())
        r.start_receiver()
        try:
            wait_for(lambda: (r.buffer_events() == 0 and (r.receiver_written() or 0) >= n), 300,
                     "the buffer drained into the receiver", interval=0.5)
        except AssertionError as e:
            self.fail(f"{e}: receiver wrote {r.receiver_written()}" + r.diag())
        t_drained = time.monotonic()
        wait_for(lambda: len(r.segments()) <= 1 and r.bm("logship_buffer_bytes") == 0, 30,
                 "segment files deleted (at most the current one left)", interval=0.2)
        written, read = r.bm("logship_buffer_blocks_written_total"), r.bm("logship_buffer_blocks_read_total")
        sync_n, sync_sum = r.bm("logship_buffer_sync_seconds_count"), r.bm("logship_buffer_sync_seconds_sum")
        buckets = [s for s in (r.samples("logship_buffer_sync_seconds_bucket") or []) if s[0].get("component_id") == SINK]
        print(f"1 GiB outage: blocks written {written:.0f}, read {read:.0f}; {sync_n:.0f} syncs, "
              f"{sync_sum / max(sync_n, 1) * 1000:.2f} ms each on average, {len(buckets)} histogram buckets")
        self.assertGreater(written, 0)
        self.assertGreaterEqual(read, written)
        self.assertGreater(sync_n, 0)
        self.assertTrue(buckets, "logship_buffer_sync_seconds_bucket")
        hwm = proc_status_kib(sh.proc.pid, "VmHWM") or 0
        rss.stop()
        peak = max(hwm, rss.hwm_kib, rss.peak_rss_kib)
        print(f"1 GiB outage: drained in {t_drained - t_buffered:.1f} s; peak RSS {peak / 1024:.1f} MiB "
              f"(VmHWM {hwm / 1024:.1f}, max sampled VmRSS {rss.peak_rss_kib / 1024:.1f} over {rss.samples} samples); "
              f"segments left {[os.path.basename(p) for p in r.segments()]}")
        self.assertEqual(r.stop_shipper(), 0, r.diag())
        r.receiver.stop()
        t_count = time.monotonic()
        counts, foreign = count_seqs_in_file(r.out, n)
        missing, n_missing, dups = summarize_counts(counts)
        print(f"1 GiB outage: counted in {time.monotonic() - t_count:.1f} s: missing {n_missing}, duplicates {dups}, "
              f"foreign {foreign}; total {time.monotonic() - t0:.1f} s")
        self.assertEqual(n_missing, 0, f"missing ids, first: {missing}")
        self.assertEqual(foreign, 0)
        self.assertEqual(dups, 0, "duplicates without any crash")
        self.assertLess(peak, self.RSS_LIMIT_MIB * 1024, f"peak RSS {peak / 1024:.1f} MiB")


# ---------------------------------------------------------------------------------------------
# 3. kill -9 at 20 random points
# ---------------------------------------------------------------------------------------------
class Kill9(DiskBufferBase):
    RATE = 10_000          # lines/s written during the write phase
    BATCH = 64 << 10       # sink batch.max_bytes
    CONCURRENCY = 2
    DELAY_S = 0.02         # the fault server answers each request after this (bounds delivery rate)
    SYNC_S = 0.1

    def test_kill9_while_writing_and_draining(self):
        """10 kill -9 while writing (receiver down), 10 while draining (receiver up): every event
        delivered at least once, duplicates within the bound computed from the config."""
        seed = int(os.environ.get("LOGSHIP_TEST_SEED") or (time.time_ns() % (1 << 32)))
        print(f"kill -9 schedule seed: {seed} (LOGSHIP_TEST_SEED={seed} replays it)")
        rng = random.Random(seed)
        r = self.rig
        srv = r.fault_server(down=True, delay_ms=int(self.DELAY_S * 1000))
        r.sink_extra = {"batch": {"max_bytes": self.BATCH}, "request": {"concurrency": self.CONCURRENCY}}
        r.shipper_config()
        pad_text = random_pad(400)
        one = len(line_text(0, r.marker, pad_text)) + 1
        gaps = []

        def restart():
            t = time.monotonic()
            r.start_shipper()
            gaps.append(time.monotonic() - t)

        r.start_shipper()
        stop, progress = threading.Event(), [0]
        writer = threading.Thread(target=write_events, args=(r.logfile, 0, 10 ** 8 - 1, r.marker),
                                  kwargs={"pad_fn": lambda k: pad_text, "chunk": 500, "rate": self.RATE,
                                          "stop": stop, "progress": progress})
        writer.start()
        try:
            for k in range(10):
                target = rng.randint(5, 25)  # ~20 blocks/s: each run lasts 0.25-1.25 s
                wait_for(lambda: (r.bm("logship_buffer_blocks_written_total") or 0) >= target, 60,
                         f"{target} blocks written before write-phase kill {k}", interval=0.01)
                r.kill_shipper()
                restart()
        finally:
            stop.set()
            writer.join()
        n = progress[0]
        r.wait_buffered(n, timeout=120)
        print(f"write phase: {n} events of {one} bytes, 10 kills, restart gaps max {max(gaps):.2f} s")
        # Drain phase.
        srv.control(down=False)
        targets = sorted(rng.uniform(0.05, 0.9) * n for _ in range(10))
        dup_marks = []
        for k, target in enumerate(targets):
            wait_for(lambda: srv.stats()["unique_seqs"] >= target and (r.bm("logship_buffer_blocks_read_total") or 0) >= 1,
                     120, f"drain-phase kill {k} at {target:.0f} distinct events", interval=0.02)
            dup_marks.append(srv.stats()["duplicates"])
            r.kill_shipper()
            restart()
        counts = r.wait_delivered(n, timeout=240)
        wait_for(lambda: r.buffer_events() == 0, 60, "the buffer drained")
        self.assertEqual(r.stop_shipper(), 0, r.diag())
        counts = srv.seq_counts()
        self.assertEqual(set(range(n)) - set(counts), set(), "lost events")
        self.assertEqual(set(counts) - set(range(n)), set(), "foreign events")
        dups = sum(c - 1 for c in counts.values() if c > 1)
        # The bound (contract): per kill while writing, the events the source read since its last
        # persisted checkpoint (one sync + one checkpoint interval + the restart's backlog, at the
        # write rate) plus two source batches; per kill while draining, the blocks between the
        # buffer's reader and the sink (8 MiB read-ahead + the blocks the sink works on:
        # concurrency + 2 source batches) plus what was delivered during one index interval (sync).
        block = min(SOURCE_BATCH_LINES, SOURCE_BATCH_BYTES // one + 1)
        req_events = self.BATCH // one + 1
        rate_out = self.CONCURRENCY * req_events / self.DELAY_S
        per_write = self.RATE * (self.SYNC_S + CHECKPOINT_INTERVAL_S + max(gaps) + 0.2) + 2 * block
        per_drain = READ_AHEAD_BYTES // one + (self.CONCURRENCY + 2) * block + rate_out * (self.SYNC_S + 0.2)
        bound = int(10 * per_write + 10 * per_drain)
        print(f"kill -9 x20: {n} events, {dups} duplicates ({dups / n:.1%}), bound {bound} "
              f"(per write-phase kill {per_write:.0f}, per drain-phase kill {per_drain:.0f}); "
              f"server duplicates at each drain kill {dup_marks}; seed {seed}")
        self.assertLessEqual(dups, bound)


# ---------------------------------------------------------------------------------------------
# 4. Self-repair
# ---------------------------------------------------------------------------------------------
class SelfRepair(DiskBufferBase):
    CHUNKS, LINES = 24, 800

    def _fill_and_stop(self, chunks=None, lines=None):
        r = self.rig
        r.fault_server(down=True)
        r.shipper_config()
        r.start_shipper()
        n = self.fill_in_chunks(chunks or self.CHUNKS, lines or self.LINES)
        r.wait_buffered(n)
        r.stop_shipper()
        return n

    def test_bit_flip_mid_segment_skips_only_that_block(self):
        """A bit flipped in the ciphertext of a block in the middle of a segment (agent stopped): the
        agent starts, skips that block alone (error naming segment and offset, corrupt_blocks == 1)
        and delivers every other event exactly once."""
        r = self.rig
        n = self._fill_and_stop()
        segs = self.blocks_by_segment()
        cand = [(p, b) for p, b in segs if len(b) >= 3]
        self.assertTrue(cand, f"no segment with 3 blocks: {[(os.path.basename(p), len(b)) for p, b in segs]}")
        path, blocks = cand[0]
        victim = blocks[len(blocks) // 2]
        at = victim["off"] + HEADER_BYTES + (victim["end"] - TAG_BYTES - victim["off"] - HEADER_BYTES) // 2
        with open(path, "r+b") as f:
            f.seek(at)
            byte = f.read(1)[0]
            f.seek(at)
            f.write(bytes([byte ^ 0x10]))
        print(f"bit flip: {os.path.basename(path)} block at offset {victim['off']} ({victim['events']} events), "
              f"byte {at}; segments {[(os.path.basename(p), len(b)) for p, b in segs]}")
        r.server.control(down=False)
        r.start_shipper()
        ev = victim["events"]
        wait_for(lambda: (r.bm("logship_buffer_corrupt_blocks_total") or 0) >= 1 and r.buffer_events() == 0,
                 60, "the corrupt block counted and the buffer drained", interval=0.1)
        expected_n = n - ev if ev is not None else None
        if expected_n is not None:
            wait_for(lambda: r.server.stats()["unique_seqs"] >= expected_n, 60, f"{expected_n} events delivered")
        wait_for(lambda: r.server.stats()["in_flight"] == 0, 30, "no request in progress")
        counts = r.server.seq_counts()
        missing = set(range(n)) - set(counts)
        print(f"bit flip: missing {len(missing)} (block had {ev}), corrupt_blocks_total "
              f"{r.bm('logship_buffer_corrupt_blocks_total')}")
        self.assertEqual(r.bm("logship_buffer_corrupt_blocks_total"), 1)
        if ev is not None:
            self.assertEqual(len(missing), ev, "exactly the damaged block's events are lost")
        self.assertTrue(contiguous(missing), f"the lost events are one block: {sorted(missing)[:5]}..")
        self.assertLessEqual(len(missing), SOURCE_BATCH_LINES)
        self.assert_exactly_once(counts, set(range(n)) - missing)
        lines = [ln for ln in log_lines_with(r.shipper.log(), os.path.basename(path)) if str(victim["off"]) in ln]
        self.assertTrue(lines, f"no log line names {os.path.basename(path)} and offset {victim['off']}" + r.diag())
        print(f"bit flip log: {lines[0]}")
        self.assertEqual(r.stop_shipper(), 0)
        # The contract: an *error* log (level error) names the segment and offset.
        self.assertTrue(any(" error " in f" {ln.lower()} " for ln in lines), f"not logged at level error: {lines}")

    def test_torn_tail_is_cut_and_the_rest_delivered(self):
        """The last segment cut in the middle of its last block (agent stopped): the agent starts, cuts
        the torn block, delivers every other event exactly once."""
        r = self.rig
        n = self._fill_and_stop()
        segs = [(p, b) for p, b in self.blocks_by_segment() if b]
        path, blocks = segs[-1]
        last = blocks[-1]
        cut = last["off"] + HEADER_BYTES + (last["end"] - last["off"] - HEADER_BYTES) // 2
        os.truncate(path, cut)
        print(f"torn tail: {os.path.basename(path)} cut at {cut} (last block at {last['off']}, {last['events']} events)")
        r.server.control(down=False)
        r.start_shipper()
        ev = last["events"]
        wait_for(lambda: r.buffer_events() == 0 and r.server.stats()["unique_seqs"] >= n - (ev or 0), 60,
                 "the rest delivered", interval=0.1)
        wait_for(lambda: r.server.stats()["in_flight"] == 0, 30, "no request in progress")
        counts = r.server.seq_counts()
        missing = set(range(n)) - set(counts)
        metrics = {name: r.bm(name) for name in ("logship_buffer_corrupt_blocks_total",
                                                 "logship_buffer_torn_blocks_cut_total")}
        print(f"torn tail: missing {len(missing)} (the torn block had {ev}); {metrics}")
        if ev is not None:
            self.assertEqual(missing, set(range(n - ev, n)), "exactly the torn (last) block's events are lost")
        self.assertTrue(contiguous(missing))
        self.assert_exactly_once(counts, set(range(n)) - missing)
        self.assertGreaterEqual(sum(v or 0 for v in metrics.values()), 1, f"the torn block is not counted: {metrics}")
        lines = log_lines_with(r.shipper.log(), os.path.basename(path))
        self.assertTrue(lines, f"no log line names {os.path.basename(path)}" + r.diag())
        print(f"torn tail log: {lines[0]}")
        if os.path.exists(path):
            self.assertEqual(os.path.getsize(path), last["off"], "cut at the torn block's start")
        self.assertEqual(r.stop_shipper(), 0)

    def test_deleted_index_is_rebuilt_nothing_lost(self):
        """Some events delivered (their blocks still in the current segment), more buffered while
        the server answers 503, the index deleted (agent stopped): the agent starts, rebuilds the
        index, delivers everything; duplicates only among the events delivered before."""
        r = self.rig
        srv = r.fault_server(down=False)
        r.shipper_config()
        r.start_shipper()
        n1 = self.fill_in_chunks(3, self.LINES)  # < half a segment: the drained segment is not rolled
        r.wait_delivered(n1)
        wait_for(lambda: r.buffer_events() == 0, 30, "delivered part released")
        srv.control(fail_503=10 ** 9)
        n = self.fill_in_chunks(12, self.LINES, start=n1)
        r.wait_buffered(n - n1)
        r.stop_shipper()
        index = os.path.join(r.buffer_dir, "index")
        self.assertTrue(os.path.exists(index), os.listdir(r.buffer_dir))
        os.unlink(index)
        print(f"deleted index: segments {[(os.path.basename(p), len(b)) for p, b in self.blocks_by_segment()]}")
        srv.control(fail_503=0)
        r.start_shipper()
        r.wait_delivered(n, 90)
        wait_for(lambda: r.buffer_events() == 0, 30, "the buffer drained")
        wait_for(lambda: os.path.exists(index), 10, "the index written again")
        wait_for(lambda: srv.stats()["in_flight"] == 0, 30, "no request in progress")
        counts = srv.seq_counts()
        dups = {s: c for s, c in counts.items() if c > 1}
        print(f"deleted index: {len(dups)} events duplicated (of {n1} delivered before the index was deleted)")
        self.assertEqual(set(range(n)) - set(counts), set())
        self.assertTrue(all(s < n1 for s in dups), f"only events delivered before may be duplicated: "
                                                    f"{sorted(s for s in dups if s >= n1)[:10]}")
        self.assertTrue(all(c <= 2 for c in dups.values()), list(dups.items())[:10])
        self.assertTrue(log_lines_with(r.shipper.log(), "index"), "the rebuilt index is not logged" + r.diag())
        print(f"deleted index log: {log_lines_with(r.shipper.log(), 'index')[0]}")
        self.assertEqual(r.stop_shipper(), 0)


# ---------------------------------------------------------------------------------------------
# 5. Full disk
# ---------------------------------------------------------------------------------------------
class DiskFull(DiskBufferBase):
    def test_enospc_backpressure_error_not_ready_then_recovery(self):
        """While LOGSHIP_FAULT_ENOSPC_FILE exists every buffer write fails with ENOSPC: input stops
        (checkpoint held, nothing new delivered), an error says "No space left on device", /ready is
        503. The file removed: /ready 200, everything delivered exactly once."""
        r = self.rig
        srv = r.fault_server(down=False)
        r.shipper_config()
        flag = r.tmp.join("enospc")
        r.start_shipper(env={"LOGSHIP_FAULT_ENOSPC_FILE": flag})
        wait_for(lambda: r.ready_status() == 200, 20, "/ready 200 at first")
        n1, n = 5_000, 65_000  # the 60,000 after the fault: ~14 MiB, more than the 8 MiB input channel
        write_events(r.logfile, 0, n1, r.marker, pad_fn=lambda k: LOREM)
        r.wait_delivered(n1)
        with open(flag, "w"):
            pass
        write_events(r.logfile, n1, n, r.marker, pad_fn=lambda k: LOREM)
        log_has = lambda: any(s in r.shipper.log() for s in ("No space left on device", "disk full"))  # noqa: E731
        try:
            wait_for(lambda: log_has() and r.ready_status() == 503, 30, "the ENOSPC error logged and /ready 503")
        except AssertionError as e:
            self.fail(f"{e}: /ready {r.ready_status()}" + r.diag())
        line = [ln for ln in r.shipper.log().splitlines() if "No space left on device" in ln or "disk full" in ln][0]
        print(f"disk full: {line}")
        received = lambda: r.metric("logship_component_received_events_total", component_id="app")  # noqa: E731
        wait_for(lambda: received() is not None, 5, "metrics")
        holds_for(lambda: (r.checkpoint() or 0) < r.file_size() and srv.stats()["unique_seqs"] == n1
                  and r.ready_status() == 503 and received() < n, 1.5, what="backpressure while the disk is full")
        print(f"disk full: checkpoint {r.checkpoint()} of {r.file_size()} bytes, source read {received():.0f} of {n}, "
              f"{srv.stats()['unique_seqs']} delivered")
        os.unlink(flag)
        wait_for(lambda: r.ready_status() == 200, 30, "/ready 200 once writes succeed")
        counts = r.wait_delivered(n, 60)
        wait_for(lambda: r.checkpoint_at_end() and r.buffer_events() == 0, 30, "checkpoint at the end, buffer empty")
        self.assert_exactly_once(srv.seq_counts(), range(n))
        self.assertEqual(r.stop_shipper(), 0)
        # The contract: an *error* log (level error) says the disk is full.
        self.assertIn(" error ", f" {line.lower()} ", f"not logged at level error: {line}")


# ---------------------------------------------------------------------------------------------
# 6. Key rotation
# ---------------------------------------------------------------------------------------------
class KeyRotation(DiskBufferBase):
    def test_rotation_across_restart_and_missing_key(self):
        """Blocks written under key A; a start with only key B exits 1 naming A's key id and changes
        nothing on disk; a start with key_file B + previous_key_files [A] delivers everything, new
        blocks under B."""
        r = self.rig
        srv = r.fault_server(down=True)
        r.shipper_config()
        r.start_shipper()
        n1 = self.fill_in_chunks(6, 1000)
        r.wait_buffered(n1)
        r.stop_shipper()
        id_a, id_b = key_id(r.key_a), key_id(r.key_b)
        before = tree_digest(r.buffer_dir)
        old_segs = set(r.segments())
        self.assertTrue(old_segs)
        for p in old_segs:
            for b in read_blocks(p):
                self.assertIn(bytes.fromhex(id_a), b["header"], f"block of {p} at {b['off']}: key A's id not in its header")
        # Only key B: exit 1, A's id named, nothing changed.
        r.encryption = {"key_file": r.key_b_path}
        only_b = r.shipper_config(r.tmp.join("shipper-only-b.yaml"))
        sh = r.start_shipper(only_b, wait=False)
        try:
            rc = sh.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.fail("the agent ran with a block under an unknown key" + r.diag())
        sh.stop()
        log = sh.log()
        print(f"missing key: exit {rc}; A's id {id_a}, B's id {id_b}; log: {log.strip()[-600:]}")
        self.assertEqual(rc, 1, log)
        self.assertIn(id_a, log, "the missing key's id is not named")
        self.assertEqual(tree_digest(r.buffer_dir), before, "the buffer's files were changed")
        # key B + previous A: receiver still down first, to see the new blocks under B.
        r.encryption = {"key_file": r.key_b_path, "previous_key_files": [r.key_a_path]}
        rotated = r.shipper_config(r.tmp.join("shipper-rotated.yaml"))
        r.start_shipper(rotated)
        n = self.fill_in_chunks(3, 1000, start=n1)
        r.wait_buffered(n)
        new_segs = [p for p in r.segments() if p not in old_segs]
        new_blocks = [(p, b) for p in new_segs for b in read_blocks(p)]
        self.assertTrue(new_blocks, f"no new block: {r.segments()}")
        for p, b in new_blocks:
            self.assertIn(bytes.fromhex(id_b), b["header"], f"new block {os.path.basename(p)}@{b['off']} not under B")
            self.assertNotIn(bytes.fromhex(id_a), b["header"])
        print(f"rotation: {len(new_blocks)} new blocks under B in {[os.path.basename(p) for p in new_segs]}")
        srv.control(down=False)
        r.wait_delivered(n, 60)
        wait_for(lambda: r.buffer_events() == 0 and not (old_segs & set(r.segments())), 30,
                 "the buffer drained and key A's segments deleted")
        self.assert_exactly_once(srv.seq_counts(), range(n))
        self.assertEqual(r.stop_shipper(), 0)


class KmsDataKey(DiskBufferBase):
    def test_kms_data_key_made_once_unwrapped_at_start_and_required(self):
        """encryption.kms_key_id: the first start makes the data key with GenerateDataKey and
        stores only the wrapped blob under data_dir/keys; a restart unwraps it with Decrypt and
        drains what the first run buffered; KMS refusing the key stops the start (exit 1) and
        leaves the buffer as it was."""
        from kmspeer import KmsPeer, DEFAULT_ACCESS_KEY, DEFAULT_SECRET
        from s3lib import clean_aws_env
        r = self.rig
        kms = KmsPeer(keys=["buffer-key"]).start()
        self.addCleanup(kms.stop)
        arn = kms.key_arn("buffer-key")
        env = clean_aws_env(r.tmp.path)
        env.update({"AWS_ACCESS_KEY_ID": DEFAULT_ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": DEFAULT_SECRET,
                    "AWS_REGION": "us-east-1", "AWS_ENDPOINT_URL_KMS": f"http://127.0.0.1:{kms.port}"})
        srv = r.fault_server(down=True)
        r.encryption = {"kms_key_id": arn}
        cfg = r.shipper_config()
        r.start_shipper(cfg, env=env)
        n = self.fill_in_chunks(3, 1000)
        r.wait_buffered(n)
        self.assertEqual(r.stop_shipper(), 0)
        keys_dir = os.path.join(r.data_dir, "keys")
        files = os.listdir(keys_dir)
        self.assertEqual(len(files), 1, files)
        with open(os.path.join(keys_dir, files[0])) as f:
            wrapped = json.load(f)
        self.assertEqual(wrapped["kms_key_id"], arn)
        self.assertEqual(set(wrapped), {"kms_key_id", "ciphertext_blob"})
        self.assertEqual(os.stat(os.path.join(keys_dir, files[0])).st_mode & 0o077, 0)
        self.assertEqual(kms.ok_counts["GenerateDataKey"], 1)
        # KMS refuses the key: exit 1, the key named, the buffer unchanged.
        before = tree_digest(r.buffer_dir)
        kms.deny("buffer-key")
        sh = r.start_shipper(cfg, env=env, wait=False)
        rc = sh.proc.wait(timeout=60)
        sh.stop()
        print(f"kms denied: exit {rc}: {sh.log().strip()[-400:]}")
        self.assertEqual(rc, 1, sh.log())
        self.assertIn("buffer-key", sh.log())
        self.assertEqual(tree_digest(r.buffer_dir), before)
        # Allowed again: unwrapped (no new key), everything delivered once.
        kms.allow("buffer-key")
        r.start_shipper(cfg, env=env)
        srv.control(down=False)
        r.wait_delivered(n, 60)
        self.assertEqual(kms.ok_counts["GenerateDataKey"], 1)
        self.assertGreaterEqual(kms.ok_counts["Decrypt"], 1)
        self.assertEqual(os.listdir(keys_dir), files)
        self.assert_exactly_once(srv.seq_counts(), range(n))
        self.assertEqual(r.stop_shipper(), 0)


# ---------------------------------------------------------------------------------------------
# 7. max_age
# ---------------------------------------------------------------------------------------------
class MaxAge(DiskBufferBase):
    def test_blocks_older_than_max_age_are_deleted_unsent(self):
        """max_age 2s, receiver down: the events not yet handed to the sink expire (expired
        events/blocks counted, a warning); receiver up: none of the expired ones is delivered, the
        ones already in the sink's hands (the read-ahead and its requests, a bounded window) are,
        each once, and expired + delivered = written; later events delivered."""
        r = self.rig
        srv = r.fault_server(down=True)
        r.buffer["max_age"] = "2s"
        r.shipper_config()
        r.start_shipper()
        n = 200_000  # ~50 MB: well past the read-ahead window (8 MiB + the sink's requests)
        t_write = time.monotonic()
        write_events(r.logfile, 0, n, r.marker, pad_fn=lambda k: LOREM)
        wait_for(r.checkpoint_at_end, 60, "the events in the buffer (checkpoint at the end)")
        self.assertGreaterEqual(r.bm("logship_buffer_blocks_written_total"), 1)
        try:
            wait_for(lambda: (r.bm("logship_buffer_expired_events_total") or 0) >= n // 2, 30,
                     f"{n // 2}+ events expired", interval=0.1)
        except AssertionError as e:
            self.fail(f"{e}: expired {r.bm('logship_buffer_expired_events_total')}" + r.diag())
        t_expired = time.monotonic() - t_write
        time.sleep(1.5)  # one more housekeeping pass: nothing else expires (the rest is in flight)
        exp_ev, exp_bl = r.bm("logship_buffer_expired_events_total"), r.bm("logship_buffer_expired_blocks_total")
        warn = [ln for ln in r.shipper.log().splitlines() if "max_age" in ln]
        print(f"max_age: expired {exp_ev} of {n} events in {exp_bl} blocks after {t_expired:.1f} s; log: {warn[:1]}")
        self.assertGreaterEqual(exp_bl, 1)
        self.assertGreater(t_expired, 2.0, "expired before max_age")
        self.assertTrue(any("warn" in ln.lower() for ln in warn), f"no warning about max_age: {warn}" + r.diag())
        srv.control(down=False)
        m = 1_000
        write_events(r.logfile, n, n + m, r.marker, pad_fn=lambda k: LOREM)
        r.wait_delivered(0, 60, expected=range(n, n + m))
        wait_for(lambda: r.buffer_events() == 0, 30, "the buffer empty")
        wait_for(lambda: srv.stats()["in_flight"] == 0, 30, "no request in progress")
        counts = srv.seq_counts()
        delivered_old = [s for s in counts if s < n]
        dup_old = [s for s in delivered_old if counts[s] > 1]
        print(f"max_age: {len(delivered_old)} events of the in-flight window delivered")
        self.assertEqual(dup_old, [], "an event of the window delivered twice")
        self.assertEqual(len(delivered_old) + exp_ev, n, "expired + delivered must be every event written")
        self.assertLess(len(delivered_old), n // 2)
        self.assert_exactly_once({s: c for s, c in counts.items() if s >= n}, range(n, n + m))
        self.assertEqual(r.stop_shipper(), 0)


# ---------------------------------------------------------------------------------------------
# 8. Dead letters
# ---------------------------------------------------------------------------------------------
class DeadLetters(DiskBufferBase):
    def test_dead_letters_encrypted_and_readable_with_the_cli(self):
        """With `encryption`, rejected events go to the dead-letter file encrypted (no marker in any
        form under data_dir); `logship dead-letters` prints them decrypted; --follow prints new ones
        until SIGINT."""
        r = self.rig
        bad = [17, 1234, 2999]
        srv = r.fault_server(down=False, reject_seq=bad)
        cfg = r.shipper_config()
        r.start_shipper()
        n = 3_000
        pad = lambda k: f"p={k}"  # noqa: E731
        write_events(r.logfile, 0, n, r.marker, pad_fn=pad)
        r.wait_delivered(0, 60, expected=set(range(n)) - set(bad))
        dl_metric = lambda: r.metric("logship_component_dropped_events_total", component_id=SINK, reason="dead_letter")  # noqa: E731
        wait_for(lambda: dl_metric() == len(bad), 30, "3 dead letters counted")
        dl_path = os.path.join(r.data_dir, "dead_letter", f"{SINK}.jsonl")
        wait_for(lambda: os.path.exists(dl_path) and os.path.getsize(dl_path) > 0, 10, "the dead-letter file")
        with open(dl_path, "rb") as f:
            raw = f.read()
        self.assertNotIn(r.marker.encode(), raw, "dead letters in clear text")
        self.assertNotIn(b'"event"', raw)
        self.assertIn(b"LSBK", raw)
        findings, stats = scan_for_marker(r.data_dir, r.marker)
        print(f"dead letters: file {len(raw)} bytes; scan {stats}")
        self.assertEqual(findings, [])
        # The CLI.
        res = subprocess.run([LOGSHIP_BIN, "dead-letters", "-c", cfg, "--sink", SINK], capture_output=True,
                             text=True, timeout=30)
        self.assertEqual(res.returncode, 0, res.stdout + res.stderr)
        lines = [json.loads(ln) for ln in res.stdout.splitlines() if ln.strip()]
        self.assertEqual(sorted(int(d["event"][4:12]) for d in lines), bad, res.stdout[:2000])
        for d in lines:
            i = int(d["event"][4:12])
            self.assertEqual(d["event"], line_text(i, r.marker, pad(i)))
            self.assertEqual(d["status"], 400)
            self.assertTrue(d["error"], d)
        # --follow.
        fol = subprocess.Popen([LOGSHIP_BIN, "dead-letters", "-c", cfg, "--sink", SINK, "--follow"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.addCleanup(fol.stderr.close)
        self.addCleanup(fol.stdout.close)
        self.addCleanup(lambda: fol.poll() is None and (fol.kill(), fol.wait()))
        got = []
        reader = threading.Thread(target=lambda: [got.append(ln) for ln in fol.stdout], daemon=True)
        reader.start()
        wait_for(lambda: len(got) >= len(bad), 15, "--follow prints the existing dead letters")
        new_bad = n + 5
        srv.control(reject_seq=bad + [new_bad])
        write_events(r.logfile, n, n + 10, r.marker, pad_fn=pad)
        wait_for(lambda: any(f"seq={new_bad:08d}" in ln for ln in got), 30, "--follow prints the new dead letter")
        fol.send_signal(signal.SIGINT)
        rc = fol.wait(timeout=10)
        reader.join(5)
        print(f"dead-letters --follow: {len(got)} lines, exit {rc} after SIGINT")
        self.assertEqual(rc, 0, fol.stderr.read())
        self.assertEqual(len(got), len(bad) + 1, got)
        self.assertEqual(r.stop_shipper(), 0)


# ---------------------------------------------------------------------------------------------
# 9. Config errors
# ---------------------------------------------------------------------------------------------
class ConfigErrors(DiskBufferBase):
    def assert_config_error(self, path, *needles):
        rc, out = run_check(path)
        self.assertEqual(rc, 2, out)
        name = os.path.basename(path)
        self.assertRegex(out, re.escape(name) + r":\d+:\d+: ", out)
        for nd in needles:
            self.assertIn(nd, out)
        return out

    def test_config_errors(self):
        """Disk buffer without encryption, bad key files (31 bytes, 64+1 hex, mode 0644, missing), a
        bad previous key, segment_bytes < 1MiB: exit 2 with file:line:col; good keys (raw, hex) pass."""
        r = self.rig
        r.closed_port_endpoint()
        t = r.tmp.join
        out = self.assert_config_error(r.shipper_config(t("noenc.yaml"), encryption=None), "encryption")
        print(f"no encryption: {out.strip()}")
        res = subprocess.run([LOGSHIP_BIN, "run", "-c", t("noenc.yaml")], capture_output=True, text=True, timeout=30)
        self.assertEqual(res.returncode, 2, res.stdout + res.stderr)
        # Keys that are fine.
        for k in (r.key_a_path, r.key_b_path):
            rc, out = run_check(r.shipper_config(t("good.yaml"), encryption={"key_file": k}))
            self.assertEqual(rc, 0, out)
        rc, out = run_check(r.shipper_config(t("good2.yaml"), encryption={"key_file": r.key_b_path,
                                                                          "previous_key_files": [r.key_a_path]}))
        self.assertEqual(rc, 0, out)
        # Bad keys.
        short = t("short.key")
        make_key_file(short, "raw", nbytes=31)
        longhex = t("long.key")
        with open(longhex, "w") as f:
            f.write(os.urandom(33).hex()[:65])
        os.chmod(longhex, 0o600)
        loose = t("loose.key")
        make_key_file(loose, "raw", mode=0o644)
        for key in (short, longhex, loose, t("absent.key")):
            out = self.assert_config_error(r.shipper_config(t("badkey.yaml"), encryption={"key_file": key}), key)
            print(f"bad key {os.path.basename(key)}: {out.strip().splitlines()[0]}")
        out = self.assert_config_error(r.shipper_config(t("badprev.yaml"), encryption={
            "key_file": r.key_a_path, "previous_key_files": [loose]}), loose)
        # segment_bytes minimum.
        out = self.assert_config_error(r.shipper_config(t("seg.yaml"), buffer=dict(r.buffer, segment_bytes="512KiB")),
                                       "segment_bytes")
        print(f"segment_bytes: {out.strip().splitlines()[0]}")


# ---------------------------------------------------------------------------------------------
# 10. max_bytes: when_full block / drop_newest
# ---------------------------------------------------------------------------------------------
class WhenFull(DiskBufferBase):
    def _full(self, when_full):
        r = self.rig
        srv = r.fault_server(down=True)
        r.buffer.update({"max_bytes": "4MiB", "when_full": when_full, "compression": "none"})
        r.shipper_config()
        r.start_shipper()
        n = 100_000  # ~ 23 MiB of text: more than the buffer (4 MiB) and the channels (2 x 8 MiB) hold
        write_events(r.logfile, 0, n, r.marker, pad_fn=lambda k: random_pad(200))
        return r, srv, n

    def test_when_full_block_backpressure_no_loss(self):
        """max_bytes 4MiB, receiver down, ~23 MiB written: the source is held (checkpoint behind),
        the segments stay within max_bytes, nothing dropped; receiver up: all delivered once."""
        r, srv, n = self._full("block")
        wait_for(lambda: (r.bm("logship_buffer_bytes") or 0) >= 3 * MiB, 30, "the buffer nearly full")
        seg_bytes = lambda: sum(os.path.getsize(p) for p in r.segments())  # noqa: E731
        received = lambda: r.metric("logship_component_received_events_total", component_id="app")  # noqa: E731
        holds_for(lambda: (r.checkpoint() or 0) < r.file_size() and seg_bytes() <= 4 * MiB + MiB and received() < n,
                  1.5, what="backpressure at max_bytes")
        print(f"when_full block: {seg_bytes() / MiB:.2f} MiB of segments, checkpoint {r.checkpoint()} of "
              f"{r.file_size()}, source read {received():.0f} of {n}")
        self.assertEqual(r.metric("logship_component_dropped_events_total", component_id=SINK, reason="buffer_full"), 0)
        srv.control(down=False)
        r.wait_delivered(n, 90)
        self.assert_exactly_once(srv.seq_counts(), range(n))
        self.assertEqual(r.stop_shipper(), 0)

    def test_when_full_drop_newest_counts_drops(self):
        """max_bytes 4MiB, drop_newest, receiver down: the source is never held (checkpoint reaches the
        end), the overflow is counted as dropped{reason=buffer_full}; receiver up: delivered + dropped
        == written, no duplicates."""
        r, srv, n = self._full("drop_newest")
        wait_for(r.checkpoint_at_end, 30, "the source read everything (not held)")
        dropped = lambda: r.metric("logship_component_dropped_events_total", component_id=SINK, reason="buffer_full")  # noqa: E731
        wait_for(lambda: dropped() > 0, 10, "drops counted")
        srv.control(down=False)
        wait_for(lambda: r.buffer_events() == 0 and srv.stats()["unique_seqs"] + dropped() >= n, 60,
                 "what was kept delivered")
        wait_for(lambda: srv.stats()["in_flight"] == 0, 30, "no request in progress")
        counts = srv.seq_counts()
        print(f"drop_newest: {len(counts)} delivered, {dropped():.0f} dropped of {n}")
        self.assertEqual(len(counts) + dropped(), n)
        self.assertTrue(all(c == 1 for c in counts.values()))
        self.assertEqual(r.stop_shipper(), 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
