"""splunk_hec sink against the fault-injecting HEC server (hec_fault_server.py, run as a subprocess).

A forwarder: file source (numbered lines `seq=0000123 ...`) -> splunk_hec sink -> fault server(s).
Every scenario checks at the server: all present, duplicates only where the protocol forces them.

This file: the server's own self-test, plus transport faults (503 x 200, Retry-After, resets,
request timeouts on a slow server) and bounded memory with a slow server.
Other files: test_hec_sink_acks.py, test_hec_sink_reject.py, test_hec_sink_endpoints.py.
"""
import copy
import http.client
import json
import os
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import (Logship, TempDir, free_port, hec_request, http_get, parse_metrics, read_jsonl,  # noqa: E402
                 wait_for, write_config)
from test_end_to_end import line_text, write_lines  # noqa: E402
from hec_fault_server import HecServerProcess  # noqa: E402

TOKEN = "5f0c7b3e-1d2a-4b8e-9c6d-0123456789ab"
SINK = "splunk"
CHANNEL = "FE0ECFAD-13D5-401B-847D-77833BD77131"


def deep_update(d, u):
    for k, v in u.items():
        if isinstance(v, dict) and isinstance(d.get(k), dict):
            deep_update(d[k], v)
        else:
            d[k] = v
    return d


def vm_hwm_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return None


class Rig:
    """Temp dir + fault server(s) + one forwarder (file source -> splunk_hec sink)."""

    def __init__(self, tc):
        self.tc = tc
        self.tmp = TempDir(prefix="logship-hecsink-")
        tc.addCleanup(self.tmp.cleanup)
        self.logdir = self.tmp.join("logs")
        os.makedirs(self.logdir)
        self.logfile = os.path.join(self.logdir, "app.log")
        self.admin_port = free_port()
        self.data_dir = self.tmp.join("data")
        self.dead_letter = os.path.join(self.data_dir, "dead_letter", f"{SINK}.jsonl")
        self.token_file = self.tmp.join("hec.token")
        self.set_token(TOKEN)
        self.servers = []
        self.forwarder = None

    def set_token(self, token):
        with open(self.token_file + ".tmp", "w") as f:
            f.write(token + "\n")
        os.chmod(self.token_file + ".tmp", 0o600)
        os.replace(self.token_file + ".tmp", self.token_file)

    def server(self, name="hec", **kw):
        kw.setdefault("token", TOKEN)
        s = HecServerProcess(self.tmp.path, name=name, **kw)
        self.tc.addCleanup(s.stop)
        self.servers.append(s)
        return s

    def sink_config(self, endpoints, **extra):
        sink = {
            "type": "splunk_hec",
            "inputs": ["app"],
            "endpoints": list(endpoints),
            "token_file": self.token_file,
            "retry": {"initial_backoff": "50ms", "max_backoff": "500ms"},
            "acknowledgements": {"poll_interval": "200ms", "timeout": "5s"},
        }
        return deep_update(sink, copy.deepcopy(extra))

    def start(self, endpoints, **sink_extra):
        cfg = {
            "data_dir": self.data_dir,
            "admin": {"address": f"127.0.0.1:{self.admin_port}"},
            "sources": {"app": {"type": "file", "include": [self.logdir + "/*.log"], "host": "test-host",
                                "sourcetype": "app:log", "index": "main", "scan_interval": "200ms"}},
            "sinks": {SINK: self.sink_config(endpoints, **sink_extra)},
        }
        path = write_config(self.tmp.join("forwarder.yaml"), cfg)
        self.forwarder = Logship(path, "forwarder").start()
        self.tc.addCleanup(lambda f=self.forwarder: f.alive() and f.stop(timeout=20))
        wait_for(lambda: http_get(f"http://127.0.0.1:{self.admin_port}/metrics")[0] == 200 or not self.forwarder.alive(),
                 20, "forwarder admin port")
        if not self.forwarder.alive():
            self.tc.fail("forwarder exited at start" + self.diag())
        return self.forwarder

    def write(self, start, end, **kw):
        write_lines(self.logfile, start, end, **kw)

    def samples(self, name):
        status, text = http_get(f"http://127.0.0.1:{self.admin_port}/metrics")
        if status != 200:
            return []
        return [(l, v) for n, l, v in parse_metrics(text) if n == name]

    def metric(self, name, **labels):
        """Sum of matching samples; 0 when absent."""
        return sum(v for l, v in self.samples(name) if all(l.get(k) == str(x) for k, x in labels.items()))

    def has_metric(self, name):
        return bool(self.samples(name))

    def sent(self):
        return self.metric("logship_component_sent_events_total", component_id=SINK)

    def errors(self, error=None):
        if error is None:
            return self.metric("logship_component_errors_total", component_id=SINK)
        return self.metric("logship_component_errors_total", component_id=SINK, error=error)

    def dead_lettered(self):
        return self.metric("logship_component_dropped_events_total", component_id=SINK, reason="dead_letter")

    def diag(self, extra=""):
        out = [extra]
        for s in self.servers:
            try:
                st = s.stats()
                st.pop("config", None)
                st["rejected_seqs"] = st["rejected_seqs"][:20]
                st["failed_request_seqs"] = st["failed_request_seqs"][:20]
                out.append(f"--- server {s.name} stats ---\n{json.dumps(st)[:3000]}")
            except Exception as e:  # noqa: BLE001
                out.append(f"--- server {s.name}: {e} ---\n{s.server_log()}")
        if self.forwarder:
            out.append(f"--- forwarder log (tail) ---\n{self.forwarder.log()[-5000:]}")
            errs = self.samples("logship_component_errors_total")
            out.append(f"--- errors_total --- {errs}")
        return "\n".join(out)

    def wait_delivered(self, server, n, timeout=120, what=None):
        """Waits until seqs 0..n-1 are all present at `server`; returns the seq counts."""
        try:
            wait_for(lambda: server.stats()["unique_seqs"] >= n, timeout, what or f"{n} distinct events at {server.name}",
                     interval=0.25)
        except AssertionError as e:
            self.tc.fail(f"{e}" + self.diag())
        return server.seq_counts()

    def settle(self, server, timeout=30):
        """Waits until `server` has no data request in progress (e.g. slow answers the sink gave up on)."""
        wait_for(lambda: server.stats()["in_flight"] == 0, timeout, f"no request in progress at {server.name}")

    def dead_letter_lines(self):
        return read_jsonl(self.dead_letter)


def assert_exactly_once(tc, counts, expected, rig=None):
    expected = set(expected)
    missing = sorted(expected - set(counts))
    extra = sorted(set(counts) - expected)
    dups = {s: c for s, c in counts.items() if c > 1}
    msg = (f"missing {len(missing)} {missing[:10]}, unexpected {len(extra)} {extra[:10]}, "
           f"duplicated {len(dups)} {list(dups.items())[:10]}")
    if missing or extra or dups:
        tc.fail(msg + (rig.diag() if rig else ""))


# ---------------------------------------------------------------------------------------------
# The server itself (HEC.md §1.2–1.8, §2): no logship involved.
# ---------------------------------------------------------------------------------------------
class FaultServerSelfTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = TempDir(prefix="hecsrv-")
        cls.s = HecServerProcess(cls.tmp.path, token=TOKEN, acks=True)

    @classmethod
    def tearDownClass(cls):
        cls.s.stop()
        cls.tmp.cleanup()

    def setUp(self):
        self.s.control(acks=True, ack_mode="immediate", reject_seq=[], max_body=0, force_401=False,
                       unknown_token_status=403, fail_503=0, fail_count=0, reset=0, delay_ms=0, down=False)
        self.s.reset_stats()

    def req(self, body="", path="/services/collector/event", channel=CHANNEL, **kw):
        kw.setdefault("token", TOKEN)
        h = kw.pop("headers", {})
        if channel:
            h["X-Splunk-Request-Channel"] = channel
        return hec_request(self.s.port, path, body, headers=h, **kw)

    def test_auth_codes(self):
        self.assertEqual(self.req("x", token=None), (401, {"text": "Token is required", "code": 2}))
        self.assertEqual(self.req("x", auth="Basic abc"), (401, {"text": "Invalid authorization", "code": 3}))
        self.assertEqual(self.req("x", token="nope"), (403, {"text": "Invalid token", "code": 4}))
        self.s.control(unknown_token_status=401)
        self.assertEqual(self.req("x", token="nope")[0], 401)
        self.s.control(force_401=True)
        self.assertEqual(self.req('{"event":"a"}')[0], 401)
        self.s.control(force_401=False, token="new-token")
        self.assertEqual(self.req('{"event":"a"}')[0], 401)  # unknown_token_status still 401
        self.assertEqual(self.req('{"event":"seq=1 a"}', token="new-token")[0], 200)
        self.s.control(token=TOKEN)

    def test_event_batches_gzip_and_aliases(self):
        body = '{"event":"seq=1 a","host":"h"}\n{"event":"seq=2 b"} {"event":{"k":"seq=x"}}'
        for path in ("/services/collector/event", "/services/collector", "/services/collector/event/1.0"):
            st, r = self.req(body, path=path, gzip_body=True)
            self.assertEqual(st, 200)
            self.assertEqual((r["text"], r["code"]), ("Success", 0))
        self.assertEqual(self.s.seq_counts(), {1: 3, 2: 3})
        self.assertEqual(self.s.stats()["events_total"], 9)
        self.assertEqual(self.s.events(limit=1), [{"event": "seq=1 a", "host": "h"}])
        self.assertEqual(self.req("  ")[1]["code"], 5)
        self.assertEqual(self.req('{"host":"x"}')[1], {"text": "Event field is required", "code": 12,
                                                        "invalid-event-number": 0})

    def test_channel_required_with_acks_and_guid_checked(self):
        self.assertEqual(self.req('{"event":"a"}', channel=None), (400, {"text": "Data channel is missing", "code": 10}))
        self.assertEqual(self.req('{"event":"a"}', channel="not-a-guid")[1]["code"], 11)
        st, r = self.req('{"event":"a"}', path=f"/services/collector/event?channel={CHANNEL}", channel=None)
        self.assertEqual(st, 200)
        self.assertIn("ackId", r)
        self.assertEqual(self.req("seq=7 x\nseq=8 y\n", path="/services/collector/raw", channel=None)[1]["code"], 10)
        self.assertEqual(self.req("seq=7 x\nseq=8 y\n", path="/services/collector/raw")[0], 200)
        self.assertEqual(self.s.seq_counts(), {7: 1, 8: 1})

    def test_ack_ids_per_channel_from_zero_true_once_then_forgotten(self):
        other = "11111111-2222-3333-4444-555555555555"
        ids = [self.req('{"event":"a"}')[1]["ackId"] for _ in range(3)]
        self.assertEqual(ids, [0, 1, 2])
        self.assertEqual(self.req('{"event":"a"}', channel=other)[1]["ackId"], 0)
        ack = f"/services/collector/ack?channel={CHANNEL}"
        self.assertEqual(self.req('{"acks":[0,2,9]}', path=ack), (200, {"acks": {"0": True, "2": True, "9": False}}))
        self.assertEqual(self.req('{"acks":[0,1]}', path=ack), (200, {"acks": {"0": False, "1": True}}))
        # false_then_true
        self.s.control(ack_mode="false_then_true")
        i = self.req('{"event":"a"}')[1]["ackId"]
        self.assertEqual(self.req(json.dumps({"acks": [i]}), path=ack)[1], {"acks": {str(i): False}})
        self.assertEqual(self.req(json.dumps({"acks": [i]}), path=ack)[1], {"acks": {str(i): True}})
        self.assertEqual(self.req(json.dumps({"acks": [i]}), path=ack)[1], {"acks": {str(i): False}})
        # never
        self.s.control(ack_mode="never")
        i = self.req('{"event":"a"}')[1]["ackId"]
        for _ in range(3):
            self.assertEqual(self.req(json.dumps({"acks": [i]}), path=ack)[1], {"acks": {str(i): False}})
        # delayed
        self.s.control(ack_mode="delayed", ack_delay_s=0.5)
        i = self.req('{"event":"a"}')[1]["ackId"]
        self.assertEqual(self.req(json.dumps({"acks": [i]}), path=ack)[1], {"acks": {str(i): False}})
        wait_for(lambda: self.req(json.dumps({"acks": [i]}), path=ack)[1] == {"acks": {str(i): True}}, 5, "delayed ack")
        # acks off: no ackId, /ack → 400 code 14
        self.s.control(acks=False)
        st, r = self.req('{"event":"a"}', channel=None)
        self.assertEqual((st, r), (200, {"text": "Success", "code": 0}))
        self.assertEqual(self.req('{"acks":[0]}', path=ack), (400, {"text": "ACK is disabled", "code": 14}))

    def test_invalid_event_number_indexes_the_events_before(self):
        self.s.control(reject_seq=[12])
        body = "".join(json.dumps({"event": line_text(i)}) for i in range(10, 15))
        st, r = self.req(body)
        self.assertEqual((st, r), (400, {"text": "Invalid data format", "code": 6, "invalid-event-number": 2}))
        self.assertEqual(self.s.seq_counts(), {10: 1, 11: 1})
        self.assertEqual(self.s.stats()["rejected_seqs"], [12])

    def test_faults_503_generic_413_reset_delay_health_down(self):
        self.s.control(fail_503=2, retry_after=3)
        for _ in range(2):
            conn = http.client.HTTPConnection("127.0.0.1", self.s.port, timeout=10)
            conn.request("POST", "/services/collector/event", body='{"event":"a"}',
                         headers={"Authorization": f"Splunk {TOKEN}", "X-Splunk-Request-Channel": CHANNEL})
            r = conn.getresponse()
            self.assertEqual((r.status, json.loads(r.read()), r.getheader("Retry-After")),
                             (503, {"text": "Server is busy", "code": 9}, "3"))
            self.assertIn(f"hecsticky={CHANNEL}", r.getheader("Set-Cookie"))
            conn.close()
        self.assertEqual(self.req('{"event":"a"}')[0], 200)
        self.s.control(fail_count=1, fail_status=500, fail_code=8, fail_text="Internal server error")
        self.assertEqual(self.req('{"event":"a"}'), (500, {"text": "Internal server error", "code": 8}))
        self.s.control(max_body=100)
        self.assertEqual(self.req('{"event":"a"}' * 20, gzip_body=True)[0], 413)
        self.assertEqual(self.req('{"event":"a"}' * 2)[0], 200)
        self.s.control(max_body=0, reset=1)
        with self.assertRaises((ConnectionError, http.client.HTTPException)):
            self.req('{"event":"seq=99 a"}' * 5000)
        self.assertNotIn(99, self.s.seq_counts())
        self.s.control(delay_ms=300)
        t = time.monotonic()
        self.assertEqual(self.req('{"event":"a"}')[0], 200)
        self.assertGreaterEqual(time.monotonic() - t, 0.29)
        self.s.control(delay_ms=0, health_code=18)
        self.assertEqual(hec_request(self.s.port, "/services/collector/health", method="GET", token=None),
                         (503, {"text": "HEC is unhealthy, queues are full", "code": 18}))
        self.s.control(health_code=17)
        self.assertEqual(hec_request(self.s.port, "/services/collector/health", method="GET", token=None)[0], 200)
        self.s.control(down=True)
        with self.assertRaises((ConnectionError, http.client.HTTPException, OSError)):
            self.req('{"event":"a"}')
        self.s.control(down=False)
        st = self.s.stats()
        self.assertEqual(st["requests_by_status"]["503"], 2)
        self.assertEqual(st["resets_done"], 1)
        self.assertGreaterEqual(st["down_refused"], 1)

    def test_keep_alive_and_cookie_stickiness_recorded(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.s.port, timeout=10)
        h = {"Authorization": f"Splunk {TOKEN}", "X-Splunk-Request-Channel": CHANNEL}
        for i in range(3):
            if i == 1:
                t = time.monotonic()
                wait_for(lambda: time.monotonic() - t > 0.6, 2, "the cookie grace period")  # not a sync sleep
            if i == 2:
                h["Cookie"] = f"hecsticky={CHANNEL}"
            conn.request("POST", "/services/collector/event", body='{"event":"a"}', headers=h)
            r = conn.getresponse()
            r.read()
            self.assertEqual(r.status, 200)
        conn.close()
        st = self.s.stats()
        self.assertEqual(st["connections"], 1)
        self.assertEqual((st["cookie_expected"], st["cookie_returned"]), (2, 1))


# ---------------------------------------------------------------------------------------------
# Transport faults and bounded memory.
# ---------------------------------------------------------------------------------------------
class TransportFaults(unittest.TestCase):
    def test_503_for_200_consecutive_requests_then_recovery(self):
        """200 consecutive 503 code 9 answers: everything is delivered once after recovery, the 503s counted."""
        rig = Rig(self)
        s = rig.server(acks=False, switches={"fail_503": 200})
        rig.start([s.url], batch={"max_events": 500})
        n = 20_000
        rig.write(0, n)
        counts = rig.wait_delivered(s, n, 150)
        st = s.stats()
        self.assertEqual(st["requests_by_status"].get("503"), 200)
        assert_exactly_once(self, counts, range(n), rig)
        wait_for(lambda: rig.sent() == n, 30, f"sent_events_total == {n} (is {rig.sent()})")
        e503 = rig.errors("http_503")
        print(f"503 scenario: errors_total{{error=http_503}}={e503}, server 503s=200, requests={st['requests_by_status']}")
        self.assertEqual(e503, 200, "errors_total{error=http_503} should count every 503 answer" + rig.diag())
        self.assertEqual(rig.dead_lettered(), 0)

    def test_retry_after_is_honoured(self):
        """503 with Retry-After: 2 → the next attempt waits ~2 s although retry.max_backoff is 500ms."""
        rig = Rig(self)
        s = rig.server(acks=False, switches={"fail_503": 2, "retry_after": 2})
        rig.start([s.url], request={"concurrency": 1})
        rig.write(0, 100)
        rig.wait_delivered(s, 100, 60)
        reqs = sorted((r for r in s.requests() if r["status"] in (200, 503)), key=lambda r: r["t"])
        self.assertEqual([r["status"] for r in reqs[:3]], [503, 503, 200], reqs[:4])
        gaps = [reqs[1]["t"] - reqs[0]["t_end"], reqs[2]["t"] - reqs[1]["t_end"]]
        print(f"Retry-After gaps: {gaps}")
        for g in gaps:
            self.assertGreaterEqual(g, 1.9, f"Retry-After: 2 not honoured, gaps {gaps}" + rig.diag())

    def test_connection_resets_mid_body_lose_nothing(self):
        """30 requests are cut mid-body with an RST: resent, all delivered exactly once."""
        rig = Rig(self)
        s = rig.server(acks=False, switches={"reset": 30})
        rig.start([s.url], batch={"max_events": 500})
        n = 20_000
        rig.write(0, n)
        counts = rig.wait_delivered(s, n, 120)
        self.assertEqual(s.stats()["resets_done"], 30)
        assert_exactly_once(self, counts, range(n), rig)
        wait_for(lambda: rig.sent() == n, 30, "sent_events_total")
        self.assertGreater(rig.errors("connection"), 0, "errors_total{error=connection}" + rig.diag())

    def test_slow_answers_past_request_timeout_duplicate_only_those_requests(self):
        """Answers slower than request.timeout: the sink resends; duplicates only among those requests' events."""
        rig = Rig(self)
        s = rig.server(acks=False, switches={"delay_ms": 1500, "delay_count": 3})
        rig.start([s.url], batch={"max_events": 1000}, request={"timeout": "1s"})
        n = 20_000
        rig.write(0, n)
        rig.wait_delivered(s, n, 120)
        rig.settle(s)  # the answers the sink gave up on still index their events (as Splunk would)
        counts = s.seq_counts()
        self.assertEqual(set(counts), set(range(n)))
        slow = [r for r in s.requests() if r["status"] == 200 and r["t_end"] - r["t"] >= 1.4]
        dups = sum(c - 1 for c in counts.values())
        allowed = sum(r["events"] for r in slow)
        print(f"timeouts: {len(slow)} slow requests with {allowed} events, {dups} duplicates at the server")
        self.assertLessEqual(dups, allowed)
        self.assertGreater(rig.errors("timeout"), 0, "errors_total{error=timeout}" + rig.diag())
        wait_for(lambda: rig.sent() == n, 30, f"sent_events_total == {n}")

    def test_slow_server_keeps_rss_bounded(self):
        """A slow server with a small buffer: peak RSS (VmHWM) stays under a bound computed from the config."""
        rig = Rig(self)
        s = rig.server(acks=True, ack_mode="immediate", switches={"delay_ms": 400})
        buf, batch, conc, pending = 4 << 20, 256 << 10, 2, 4 << 20
        rig.start([s.url], buffer={"max_bytes": buf}, batch={"max_bytes": batch},
                  request={"concurrency": conc}, acknowledgements={"max_pending_bytes": pending})
        n = 150_000
        writer = threading.Thread(target=rig.write, args=(0, n))
        writer.start()
        writer.join()
        pid = rig.forwarder.proc.pid
        # Let the backlog build against the slow server.
        wait_for(lambda: s.stats()["unique_seqs"] >= 30_000, 90, "first 30,000 events through the slow server",
                 interval=0.25)
        hwm_slow = vm_hwm_kib(pid)
        s.control(delay_ms=0)
        counts = rig.wait_delivered(s, n, 150)
        hwm = vm_hwm_kib(pid)
        bound = (60 << 20) + buf + conc * batch + pending
        print(f"RSS: VmHWM {hwm / 1024:.1f} MiB (while slow: {hwm_slow / 1024:.1f} MiB); "
              f"bound {bound / (1 << 20):.1f} MiB; file {os.path.getsize(rig.logfile) / (1 << 20):.1f} MiB")
        self.assertLess(hwm * 1024, bound, f"peak RSS {hwm} KiB over the bound {bound >> 10} KiB" + rig.diag())
        assert_exactly_once(self, counts, range(n), rig)


if __name__ == "__main__":
    unittest.main(verbosity=2)
