"""splunk_hec sink: indexer acknowledgements against the fault server (HEC.md §2).

With acks on, the server counts an event as indexed when its request is accepted (Splunk indexes
it whatever the polls say), so a resend after acknowledgements.timeout shows up as a duplicate.
"""
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import wait_for  # noqa: E402
from test_hec_sink import SINK, Rig, assert_exactly_once  # noqa: E402


class Acks(unittest.TestCase):
    def _ok_requests(self, s):
        return [r for r in s.requests() if r["status"] == 200]

    def test_delayed_acks_deliver_exactly_once(self):
        """ackIds held for 1 s (timeout 5 s): delivered once, no resend, every ackId confirmed once."""
        rig = Rig(self)
        s = rig.server(acks=True, ack_mode="delayed", ack_delay=1.0)
        rig.start([s.url])
        n = 20_000
        rig.write(0, n)
        rig.wait_delivered(s, n, 90)
        wait_for(lambda: rig.sent() == n, 30, f"sent_events_total == {n}")
        rig.settle(s)
        st = s.stats()
        assert_exactly_once(self, s.seq_counts(), range(n), rig)
        self.assertEqual(rig.metric("logship_hec_ack_timeouts_total", component_id=SINK), 0)
        self.assertEqual(st["acks_true"], len(self._ok_requests(s)), "every ackId confirmed once" + rig.diag())
        self.assertGreater(st["ack_ids_polled"], st["acks_true"], "ids polled false first (held 1 s)")
        print(f"delayed acks: {len(self._ok_requests(s))} requests, {st['ack_polls']} polls, "
              f"{st['ack_ids_polled']} ids polled, channels {len(st['channels'])}, "
              f"cookies data {st['cookie_returned']}/{st['cookie_expected']} ack {st['ack_cookie_returned']}/"
              f"{st['ack_cookie_expected']}")

    def test_false_then_true_acks(self):
        """Every ackId polls false once, then true: delivered once, no resend."""
        rig = Rig(self)
        s = rig.server(acks=True, ack_mode="false_then_true")
        rig.start([s.url])
        n = 20_000
        rig.write(0, n)
        rig.wait_delivered(s, n, 90)
        wait_for(lambda: rig.sent() == n, 30, f"sent_events_total == {n}")
        st = s.stats()
        assert_exactly_once(self, s.seq_counts(), range(n), rig)
        ok = len(self._ok_requests(s))
        self.assertEqual(st["acks_true"], ok)
        self.assertGreaterEqual(st["ack_ids_polled"], 2 * ok)
        self.assertEqual(rig.metric("logship_hec_ack_timeouts_total", component_id=SINK), 0)

    def test_acks_never_confirmed_resend_after_timeout_and_count_duplicates(self):
        """Acks never true: nothing counts as delivered; after acknowledgements.timeout the requests are
        resent (duplicates at the server) and counted; once acks work, everything is delivered and the
        server's duplicates equal logship_hec_resent_events_total."""
        rig = Rig(self)
        s = rig.server(acks=True, ack_mode="never")
        rig.start([s.url], acknowledgements={"timeout": "2s"})
        n = 10_000
        rig.write(0, n)
        rig.wait_delivered(s, n, 60, "all events accepted once by the server")
        wait_for(lambda: rig.metric("logship_hec_ack_timeouts_total", component_id=SINK) >= 1, 30,
                 "logship_hec_ack_timeouts_total >= 1")
        wait_for(lambda: s.stats()["duplicates"] > 0, 30, "resent events at the server")
        self.assertEqual(rig.sent(), 0, "no event may count as delivered before its ackId is true" + rig.diag())
        self.assertGreater(rig.metric("logship_hec_pending_ack_bytes", component_id=SINK), 0,
                           "logship_hec_pending_ack_bytes while acks are pending")
        s.control(ack_mode="immediate")
        wait_for(lambda: rig.sent() == n, 60, f"sent_events_total == {n} after acks work")
        rig.settle(s)
        try:
            wait_for(lambda: s.stats()["duplicates"] == rig.metric("logship_hec_resent_events_total", component_id=SINK),
                     15, "server duplicates == logship_hec_resent_events_total")
        except AssertionError as e:
            self.fail(str(e) + rig.diag())
        counts = s.seq_counts()
        self.assertEqual(set(counts), set(range(n)))
        dups = sum(c - 1 for c in counts.values())
        timeouts = rig.metric("logship_hec_ack_timeouts_total", component_id=SINK)
        print(f"never-acks: {timeouts} ack timeouts, {dups} duplicate events at the server (all counted as resent)")
        wait_for(lambda: rig.metric("logship_hec_pending_ack_bytes", component_id=SINK) == 0, 10, "pending ack bytes 0")

    def test_server_with_acks_disabled_means_2xx_is_delivered(self):
        """The token has no useACK: no ackId, /ack answers 400 code 14 → 2xx counts as delivered."""
        rig = Rig(self)
        s = rig.server(acks=False)
        rig.start([s.url])  # acknowledgements.enabled defaults to true
        n = 20_000
        rig.write(0, n)
        rig.wait_delivered(s, n, 60)
        wait_for(lambda: rig.sent() == n, 30, f"sent_events_total == {n}")
        assert_exactly_once(self, s.seq_counts(), range(n), rig)
        self.assertEqual(rig.metric("logship_hec_ack_timeouts_total", component_id=SINK), 0)
        self.assertEqual(rig.dead_lettered(), 0)
        st = s.stats()
        self.assertEqual(st["gzip_requests"], st["data_requests"], "compression: gzip is the default")
        self.assertEqual(st["acks_true"], 0)

    def test_raw_endpoint_with_acks_and_channel(self):
        """endpoint_target raw against a useACK token (channel required on /raw): lines delivered once."""
        rig = Rig(self)
        s = rig.server(acks=True, ack_mode="false_then_true", switches={"raw_requires_channel": True})
        rig.start([s.url], endpoint_target="raw")
        n = 10_000
        rig.write(0, n)
        rig.wait_delivered(s, n, 60)
        wait_for(lambda: rig.sent() == n, 30, f"sent_events_total == {n}")
        assert_exactly_once(self, s.seq_counts(), range(n), rig)
        st = s.stats()
        self.assertEqual(st["requests_by_status"].get("400", 0), 0)
        self.assertTrue(all(r["path"].startswith("/services/collector/raw") for r in s.requests()))
        ev = s.events(limit=1)[0]
        self.assertEqual((ev["host"], ev["sourcetype"], ev["index"]), ("test-host", "app:log", "main"), ev)

    def test_sink_acks_disabled_still_sends_a_channel(self):
        """Sink acknowledgements.enabled false against a useACK token: the channel is still sent (HEC.md §1.5
        recommends always sending one), so nothing is rejected with code 10."""
        rig = Rig(self)
        s = rig.server(acks=True)
        rig.start([s.url], acknowledgements={"enabled": False})
        n = 5_000
        rig.write(0, n)
        rig.wait_delivered(s, n, 60)
        assert_exactly_once(self, s.seq_counts(), range(n), rig)
        self.assertEqual(s.stats()["requests_by_status"].get("400", 0), 0)

    def test_ack_polls_carry_the_channel_cookie(self):
        """Load-balancer stickiness (HEC.md §2.3 channel_cookie): requests after the server set
        `hecsticky=<channel>` send it back, ack polls included."""
        rig = Rig(self)
        s = rig.server(acks=True, ack_mode="false_then_true")
        rig.start([s.url])
        n = 6_000
        rig.write(0, n, chunk=200, rate=2_000)  # ~3 s of traffic: requests and polls after the cookie was set
        rig.wait_delivered(s, n, 60)
        wait_for(lambda: rig.sent() == n, 30, "sent")
        st = s.stats()
        print(f"cookies: data {st['cookie_returned']}/{st['cookie_expected']}, "
              f"ack {st['ack_cookie_returned']}/{st['ack_cookie_expected']}")
        self.assertGreater(st["ack_cookie_expected"], 0)
        self.assertEqual(st["ack_cookie_returned"], st["ack_cookie_expected"], "ack polls without the sticky cookie")
        self.assertEqual(st["cookie_returned"], st["cookie_expected"], "data requests without the sticky cookie")


if __name__ == "__main__":
    unittest.main(verbosity=2)
