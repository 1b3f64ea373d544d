"""splunk_hec sink: rejected data (400 with/without invalid-event-number, 413) and auth (401 + SIGHUP)."""
import os
import signal
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import wait_for  # noqa: E402
from test_end_to_end import line_text, write_lines  # noqa: E402
from test_hec_sink import TOKEN, Rig, assert_exactly_once  # noqa: E402


def dl_seqs(lines):
    out = []
    for d in lines:
        ev = d.get("event")
        if isinstance(ev, str) and ev.startswith("seq="):
            out.append(int(ev[4:11]))
    return out


class Rejects(unittest.TestCase):
    def test_one_bad_event_among_10000(self):
        """400 code 6 with invalid-event-number for one event: 9,999 delivered exactly once, the bad one
        in the dead-letter file with its metadata and the error."""
        rig = Rig(self)
        bad = 4321
        s = rig.server(acks=True, switches={"reject_seq": [bad]})
        rig.start([s.url])
        n = 10_000
        rig.write(0, n)
        rig.wait_delivered(s, n - 1, 90, "9,999 events at the server")
        wait_for(lambda: len(rig.dead_letter_lines()) >= 1, 30, "a dead-letter line")
        wait_for(lambda: rig.sent() == n - 1, 30, "sent_events_total == 9999")
        rig.settle(s)
        assert_exactly_once(self, s.seq_counts(), set(range(n)) - {bad}, rig)
        self.assertEqual(s.stats()["rejected_seqs"], [bad], "the bad event was sent once and not retried")
        dl = rig.dead_letter_lines()
        self.assertEqual(dl_seqs(dl), [bad], dl)
        d = dl[0]
        self.assertEqual(d["event"], line_text(bad))
        self.assertEqual((d["host"], d["source"], d["sourcetype"], d["index"]),
                         ("test-host", rig.logfile, "app:log", "main"))
        self.assertIsInstance(d["time"], (int, float))
        self.assertEqual(d["status"], 400)
        self.assertIn(str(s.port), d["endpoint"])
        self.assertTrue(d["error"], d)
        self.assertEqual(rig.dead_lettered(), 1)

    def test_400_without_invalid_event_number_dead_letters_the_whole_request(self):
        """400 code 6 without invalid-event-number: exactly that request's events are dead-lettered."""
        rig = Rig(self)
        s = rig.server(acks=False, switches={"fail_count": 1, "fail_status": 400, "fail_code": 6,
                                             "fail_text": "Invalid data format"})
        rig.start([s.url], batch={"max_events": 1000})
        n = 10_000
        rig.write(0, n)
        wait_for(lambda: s.stats()["failed_request_seqs"], 30, "the rejected request")
        bad = set(s.stats()["failed_request_seqs"])
        self.assertTrue(bad)
        rig.wait_delivered(s, n - len(bad), 60, f"{n - len(bad)} events at the server")
        wait_for(lambda: len(rig.dead_letter_lines()) >= len(bad), 30, f"{len(bad)} dead-letter lines")
        assert_exactly_once(self, s.seq_counts(), set(range(n)) - bad, rig)
        self.assertEqual(sorted(dl_seqs(rig.dead_letter_lines())), sorted(bad))
        wait_for(lambda: rig.dead_lettered() == len(bad), 10, "dropped_events_total{reason=dead_letter}")
        wait_for(lambda: rig.sent() == n - len(bad), 10, "sent_events_total")

    def test_server_text_echoing_credentials_is_scrubbed_from_logs_and_dead_letters(self):
        """Verifies that a server (or proxy) whose error text echoes the request's Authorization
        header and SigV4-like credentials does not leak them. The HEC token and the
        credential-shaped values are replaced by [REDACTED] in the log and in the dead letters'
        error field, and the echoed text is capped in length."""
        rig = Rig(self)
        echo = (f"bad request; you sent Authorization: Splunk {TOKEN}\r\n X-Amz-Security-Token: "
                f"FQoGZXIvYXdzEXAMPLE Signature=0123abcdef Credential=AKIDEXAMPLE/20261201 raw {TOKEN} "
                + "x" * 3000)
        s = rig.server(acks=False, switches={"fail_count": 1, "fail_status": 400, "fail_code": 6,
                                             "fail_text": echo})
        rig.start([s.url], batch={"max_events": 100})
        rig.write(0, 300)
        wait_for(lambda: len(rig.dead_letter_lines()) >= 1, 30, "dead letters")
        rig.wait_delivered(s, 300 - len(rig.dead_letter_lines()), 30, "the other events")
        log = rig.forwarder.log()
        err = rig.dead_letter_lines()[0]["error"]
        for leaked in (TOKEN, "FQoGZXIvYXdzEXAMPLE", "0123abcdef", "AKIDEXAMPLE"):
            self.assertNotIn(leaked, log, f"{leaked} in the log")
            self.assertNotIn(leaked, err, f"{leaked} in the dead letter error")
        self.assertIn("[REDACTED]", err)
        self.assertLess(len(err), 1200, "the echoed text is capped")

    def test_413_halves_then_dead_letters_a_single_oversized_event(self):
        """413 over 64 KiB (decompressed): requests are split until they fit; events over the limit alone
        are dead-lettered; everything else delivered exactly once."""
        rig = Rig(self)
        limit = 64 << 10
        s = rig.server(acks=False, switches={"max_body": limit})
        rig.start([s.url], batch={"max_bytes": "256KiB"})
        n = 10_000
        huge = {2500, 7777}
        write_lines(rig.logfile, 0, 2500)
        with open(rig.logfile, "a") as f:
            for i in range(2500, n):
                f.write(line_text(i) + (" " + "x" * 100_000 if i in huge else "") + "\n")
        rig.wait_delivered(s, n - len(huge), 90, "all but the oversized events")
        wait_for(lambda: len(rig.dead_letter_lines()) >= len(huge), 30, "the oversized events dead-lettered")
        assert_exactly_once(self, s.seq_counts(), set(range(n)) - huge, rig)
        dl = rig.dead_letter_lines()
        self.assertEqual(sorted(dl_seqs(dl)), sorted(huge))
        self.assertEqual({d["status"] for d in dl}, {413})
        self.assertGreater(rig.errors("http_413"), 0, "errors_total{error=http_413}" + rig.diag())
        wait_for(lambda: rig.dead_lettered() == len(huge), 10, "dropped_events_total{reason=dead_letter} == 2")


class Auth(unittest.TestCase):
    def test_401_then_token_file_fixed_and_sighup_resumes_without_loss(self):
        """401 (unknown token): data kept, nothing dead-lettered; token_file fixed + SIGHUP → all delivered once."""
        rig = Rig(self)
        s = rig.server(acks=True, switches={"unknown_token_status": 401})
        rig.set_token("00000000-dead-beef-0000-000000000000")
        rig.start([s.url])
        n = 10_000
        rig.write(0, n)
        wait_for(lambda: rig.errors("http_401") > 0, 30, "errors_total{error=http_401}")
        wait_for(lambda: s.stats()["requests_by_status"].get("401", 0) >= 3, 30, "a few 401 answers (retries)")
        self.assertEqual(s.stats()["events_total"], 0)
        self.assertEqual(rig.sent(), 0)
        self.assertEqual(rig.dead_lettered(), 0)
        self.assertEqual(rig.dead_letter_lines(), [])
        rig.set_token(TOKEN)
        rig.forwarder.proc.send_signal(signal.SIGHUP)
        rig.wait_delivered(s, n, 60)
        wait_for(lambda: rig.sent() == n, 30, "sent_events_total")
        assert_exactly_once(self, s.seq_counts(), range(n), rig)
        self.assertNotIn(TOKEN, rig.forwarder.log())
        self.assertEqual(rig.dead_letter_lines(), [])

    def test_forced_401_with_the_right_token_then_server_fixed(self):
        """The server answers 401 even to the right token for a while: the sink keeps retrying, no loss."""
        rig = Rig(self)
        s = rig.server(acks=False, switches={"force_401": True})
        rig.start([s.url])
        n = 5_000
        rig.write(0, n)
        wait_for(lambda: s.stats()["requests_by_status"].get("401", 0) >= 3, 30, "401 answers")
        self.assertEqual(rig.dead_letter_lines(), [])
        s.control(force_401=False)
        rig.wait_delivered(s, n, 60)
        assert_exactly_once(self, s.seq_counts(), range(n), rig)
        self.assertEqual(rig.dead_lettered(), 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
