"""splunk_hec sink: several endpoints (one down, one slow) and TLS (wrong CA, right CA, mTLS)."""
import os
import sys
import threading
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import free_port, make_cert, wait_for  # noqa: E402
from test_hec_sink import SINK, Rig, assert_exactly_once  # noqa: E402


def certs(rig, name, cn="localhost"):
    d = rig.tmp.join(name)
    os.makedirs(d)
    return make_cert(d, cn=cn)


class Endpoints(unittest.TestCase):
    def test_three_endpoints_one_down_one_slow(self):
        """Round-robin over healthy endpoints: with one refusing connections and one slow, everything is
        delivered exactly once and the healthy fast one carries most of the load."""
        rig = Rig(self)
        fast = rig.server("fast", acks=True)
        slow = rig.server("slow", acks=True, switches={"delay_ms": 500})
        down_port = free_port()  # nothing listens there: connection refused
        down_url = f"http://127.0.0.1:{down_port}"
        rig.start([fast.url, down_url, slow.url], batch={"max_events": 500})
        n = 50_000
        rig.write(0, n)

        def total():
            return fast.stats()["unique_seqs"] + slow.stats()["unique_seqs"]
        try:
            wait_for(lambda: total() >= n, 120, f"{n} events over the two live servers", interval=0.3)
        except AssertionError as e:
            self.fail(str(e) + rig.diag())
        rig.settle(slow)
        cf, cs = fast.seq_counts(), slow.seq_counts()
        merged = dict(cf)
        for k, v in cs.items():
            merged[k] = merged.get(k, 0) + v
        assert_exactly_once(self, merged, range(n), rig)
        wait_for(lambda: rig.sent() == n, 30, f"sent_events_total == {n}")
        print(f"three endpoints: fast {len(cf)} events, slow {len(cs)} events, down 0")
        self.assertGreater(len(cf), len(cs), "the fast endpoint should carry more than the slow one")
        self.assertGreater(rig.errors("connection"), 0, "connection errors against the down endpoint")
        health = {l.get("endpoint"): v for l, v in rig.samples("logship_hec_endpoint_healthy")
                  if l.get("component_id") == SINK}
        down = [v for ep, v in health.items() if ep and str(down_port) in ep]
        up = [v for ep, v in health.items() if ep and str(fast.port) in ep]
        self.assertEqual(down, [0.0], f"logship_hec_endpoint_healthy: {health}")
        self.assertEqual(up, [1.0], f"logship_hec_endpoint_healthy: {health}")
        reqs = rig.samples("logship_hec_endpoint_requests_total")
        by_ep = {}
        for l, v in reqs:
            if l.get("component_id") == SINK:
                by_ep[l.get("endpoint")] = by_ep.get(l.get("endpoint"), 0) + v
        print(f"logship_hec_endpoint_requests_total by endpoint: {by_ep}")
        self.assertTrue(any(str(fast.port) in (ep or "") for ep in by_ep), by_ep)

    def test_endpoint_back_after_being_down_gets_traffic_again(self):
        """An endpoint refusing connections (server `down`) is avoided, then used again once it is back."""
        rig = Rig(self)
        a = rig.server("a", acks=False)
        b = rig.server("b", acks=False, switches={"down": True})
        rig.start([a.url, b.url], batch={"max_events": 200})
        rig.write(0, 10_000)
        wait_for(lambda: a.stats()["unique_seqs"] >= 10_000, 60, "first 10,000 at a")
        self.assertEqual(b.stats()["events_total"], 0)
        b.control(down=False)
        total = 50_000
        writer = threading.Thread(target=rig.write, args=(10_000, total), kwargs={"rate": 2_000})
        writer.start()
        self.addCleanup(writer.join)
        try:
            wait_for(lambda: b.stats()["events_total"] > 0, 30, "traffic to b again", interval=0.2)
        except AssertionError as e:
            self.fail(str(e) + rig.diag())
        writer.join()
        wait_for(lambda: a.stats()["unique_seqs"] + b.stats()["unique_seqs"] >= total, 60, "all events", interval=0.3)
        merged = a.seq_counts()
        for k, v in b.seq_counts().items():
            merged[k] = merged.get(k, 0) + v
        assert_exactly_once(self, merged, range(total), rig)
        print(f"endpoint back: a {a.stats()['events_total']} events, b {b.stats()['events_total']} events")


class Tls(unittest.TestCase):
    def test_wrong_ca_refused_with_clear_error_nothing_sent(self):
        rig = Rig(self)
        cert, key = certs(rig, "server")
        other_ca, _ = certs(rig, "other")
        s = rig.server(acks=False, tls_cert=cert, tls_key=key)
        rig.start([s.url], tls={"ca_file": other_ca})
        rig.write(0, 1000)
        try:
            wait_for(lambda: rig.errors("tls") > 0, 30, "errors_total{error=tls}")
        except AssertionError as e:
            self.fail(str(e) + rig.diag())
        wait_for(lambda: s.stats()["tls_handshake_failures"] > 0, 10, "handshake failures at the server")
        st = s.stats()
        self.assertEqual((st["data_requests"], st["events_total"]), (0, 0))
        self.assertEqual(rig.sent(), 0)
        log = rig.forwarder.log().lower()
        self.assertTrue("certificate" in log or "verify" in log, "no clear TLS error in the log" + rig.diag())
        self.assertEqual(rig.dead_letter_lines(), [])
        rig.forwarder.kill9()  # undeliverable data: skip the drain deadline at shutdown

    def test_right_ca_delivers(self):
        rig = Rig(self)
        cert, key = certs(rig, "server")
        s = rig.server(acks=True, tls_cert=cert, tls_key=key)
        rig.start([s.url], tls={"ca_file": cert})
        n = 20_000
        rig.write(0, n)
        rig.wait_delivered(s, n, 60)
        assert_exactly_once(self, s.seq_counts(), range(n), rig)

    def test_mtls_client_certificate_required(self):
        rig = Rig(self)
        cert, key = certs(rig, "server")
        ccert, ckey = certs(rig, "client", cn="logship-client")
        s = rig.server(acks=True, tls_cert=cert, tls_key=key, client_ca=ccert)
        rig.start([s.url], tls={"ca_file": cert, "cert_file": ccert, "key_file": ckey})
        n = 10_000
        rig.write(0, n)
        rig.wait_delivered(s, n, 60)
        assert_exactly_once(self, s.seq_counts(), range(n), rig)
        self.assertTrue(any("logship-client" in x for x in s.stats()["client_cert_subjects"]))

    def test_mtls_without_client_certificate_not_delivered(self):
        rig = Rig(self)
        cert, key = certs(rig, "server")
        ccert, _ = certs(rig, "client", cn="logship-client")
        s = rig.server(acks=False, tls_cert=cert, tls_key=key, client_ca=ccert)
        rig.start([s.url], tls={"ca_file": cert})
        rig.write(0, 1000)
        try:
            wait_for(lambda: rig.errors() > 0 and s.stats()["tls_handshake_failures"] > 0, 30,
                     "send errors and handshake failures")
        except AssertionError as e:
            self.fail(str(e) + rig.diag())
        st = s.stats()
        self.assertEqual((st["data_requests"], st["events_total"]), (0, 0))
        self.assertEqual(rig.sent(), 0)
        print(f"mTLS without client cert: errors {rig.samples('logship_component_errors_total')}")
        rig.forwarder.kill9()  # undeliverable data: skip the drain deadline at shutdown


if __name__ == "__main__":
    unittest.main(verbosity=2)
