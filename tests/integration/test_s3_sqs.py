"""`s3` source in `mode: sqs` through the real binary: S3 event notifications from an SQS queue
(npm local-aws-sqs, a real SQS protocol server) name objects in s3rver.

- direct, SNS-wrapped and EventBridge bodies, several records per message, a URL-encoded key with
  spaces and `+`, an s3:TestEvent, an ObjectRemoved record (ignored), an unknown body (left in the
  queue, counted) and a corrupt object (left for the redrive policy with sqs.delete_failed: false);
- a message is deleted only once its records were delivered: with the HEC receiver answering 503
  it stays in flight past visibility_timeout (extended: a second consumer sees nothing), and is
  deleted once the receiver accepts;
- three agents on one queue, 300 CloudTrail objects: every record once, the queue empty;
- kill -9 of one of three agents in the middle of an object: its messages come back and are
  finished by the others; nothing lost; duplicates only within the interrupted objects;
- bad input with sqs.delete_failed: true: corrupt gzip and NoSuchKey are failed, counted, logged
  with the key and deleted; AccessDenied is transient: the message comes back and is read once
  the permission is there.
"""
import collections
import gzip
import hashlib
import json
import os
import random
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from hec_fault_server import HecServerProcess  # noqa: E402
from lib import TempDir, http_get, wait_for  # noqa: E402
from s3lib import ACCOUNT, S3Server, ct_file, ct_key  # noqa: E402
from sqslib import (SqsServer, eventbridge_body, s3_event_body, sequencer, sns_wrapped,  # noqa: E402
                    test_event_body)
from test_s3_source import DAY, NOW, CuttingProxy, Harness, by_id  # noqa: E402

BUCKET = "logs"


def etag(body):
    return hashlib.md5(body).hexdigest()


class Rig:
    """s3rver + local-aws-sqs + a queue (with a dead-letter queue that only a message received 100
    times reaches: every visibility extension counts as a receive in local-aws-sqs)."""

    def __init__(self, tc, queue="events"):
        self.tc = tc
        self.s3 = S3Server(tc)
        self.sqs = SqsServer(tc)
        self.url = self.sqs.create_queue(queue, dead_letter=True, max_receive_count=100)
        self.rnd = random.Random(3)
        self.seq = 0
        self.expect = {}
        self.keys = {}  # key -> (size, etag)

    def objects(self, names, records=20, region="us-east-1", keys=None):
        """Uploads CloudTrail objects; returns their keys. keys: explicit keys instead of ct_key."""
        objs, out = [], []
        for i, name in enumerate(names):
            body, ids = ct_file(self.rnd, name, records, NOW - 600)
            self.expect.update(ids)
            key = keys[i] if keys else ct_key(region, DAY, f"{len(self.keys):04d}", name)
            objs.append((key, body))
            self.keys[key] = (len(body), etag(body))
            out.append(key)
        self.s3.put(objs, bucket=BUCKET)
        return out

    def record(self, key, event_name="ObjectCreated:Put"):
        size, et = self.keys.get(key, (1234, "0" * 32))
        self.seq += 1
        return (BUCKET, key, size, et, sequencer(self.seq), event_name)

    def direct(self, *keys):
        return s3_event_body([self.record(k) for k in keys])

    def source(self, **extra):
        src = {"mode": "sqs", "queue_url": self.url, "format": "cloudtrail", "visibility_timeout": "10s",
               "sqs": {"wait_time": "1s", "endpoint": self.sqs.endpoint}}
        for k, v in extra.items():
            if isinstance(v, dict) and isinstance(src.get(k), dict):
                src[k].update(v)
            else:
                src[k] = v
        return src

    def agent(self, name="sqs", sink=None, **extra):
        return Harness(self.tc, self.s3, {"q": self.source(**extra)}, sink=sink, name=name)


def sqs_metric(h, name, **labels):
    return h.metric(name, component_id="q", **labels) or 0


class Bodies(unittest.TestCase):
    def test_every_body_kind_and_what_is_left_in_the_queue(self):
        """Verifies direct, SNS-wrapped (two records) and EventBridge bodies, a key with spaces and
        `+`, a TestEvent and an ObjectRemoved record: every record once, those messages deleted; an
        unknown body and a corrupt object's message are left in the queue (counted, logged)."""
        r = Rig(self)
        a, b, c, d = r.objects(["a", "b", "c", "d"])
        (spaced,) = r.objects(["spaced"], keys=[f"AWSLogs/{ACCOUNT}/CloudTrail/us-east-1/2026/12/02/odd key+plus (1).json.gz"])
        corrupt = f"AWSLogs/{ACCOUNT}/CloudTrail/us-east-1/2026/12/02/corrupt.json.gz"
        junk = b"\x1f\x8b\x08\x00" + os.urandom(200)
        r.s3.put([(corrupt, junk)], bucket=BUCKET)
        r.keys[corrupt] = (len(junk), etag(junk))
        bodies = [
            r.direct(a),
            sns_wrapped(r.direct(b, c)),
            eventbridge_body(BUCKET, d, r.keys[d][0], r.keys[d][1], sequencer(900)),
            r.direct(spaced),
            test_event_body(BUCKET),
            s3_event_body([r.record(a, "ObjectRemoved:Delete")]),
            json.dumps({"hello": "not a notification"}),
            r.direct(corrupt),
        ]
        r.sqs.send(r.url, bodies)
        h = r.agent()
        h.start()
        h.wait(lambda: set(by_id(h.events(), "eventID")) >= set(r.expect), 60, "every record")
        h.wait(lambda: sqs_metric(h, "logship_sqs_messages_deleted_total") == 6, 30, "six messages deleted")
        h.wait(lambda: sqs_metric(h, "logship_sqs_messages_left_total", reason="failed") >= 1, 30, "corrupt left")
        got = by_id(h.events(), "eventID")
        self.assertEqual(set(got), set(r.expect))
        self.assertEqual(max(got.values()), 1)
        self.assertEqual(sqs_metric(h, "logship_sqs_messages_invalid_total"), 1)
        self.assertEqual(sqs_metric(h, "logship_sqs_messages_received_total"), len(bodies))
        self.assertEqual(h.metric("logship_s3_objects_total", component_id="q", status="failed"), 1)
        visible, in_flight = r.sqs.counts(r.url)
        self.assertEqual(visible + in_flight, 2, "the unknown body and the corrupt object's message stay queued")
        log = h.log()
        self.assertIn("s3:TestEvent", log)
        self.assertIn("not a notification", log)
        self.assertIn("corrupt.json.gz", log)
        self.assertNotIn("no RedrivePolicy", log)
        sources = {e["source"] for e in h.events()}
        self.assertIn(f"s3://{BUCKET}/{spaced}", sources)  # the key decoded: spaces and '+'
        h.stop()

    def test_ready_only_once_the_queue_answered(self):
        """Verifies /ready is 503 while the queue cannot be reached (the error logged, retried) and
        200 once it answers; a queue that does not exist is named in the log."""
        r = Rig(self)
        missing = r.sqs.queue_url("no-such-queue")
        h = Harness(self, r.s3, {"q": dict(r.source(), queue_url=missing)}, name="sqsready")
        h.start()
        h.wait(lambda: "no-such-queue" in h.log(), 20, "the missing queue logged")
        self.assertEqual(http_get(f"http://127.0.0.1:{h.admin_port}/ready")[0], 503)
        h.stop()
        h2 = r.agent(name="sqsready2")
        h2.start()
        h2.wait(lambda: http_get(f"http://127.0.0.1:{h2.admin_port}/ready")[0] == 200, 20, "/ready")
        h2.stop()

    def test_a_queue_without_redrive_policy_is_warned_about(self):
        """Verifies the start-up warning when the queue has no RedrivePolicy, and /ready."""
        r = Rig(self)
        url = r.sqs.create_queue("plain")
        h = Harness(self, r.s3, {"q": dict(r.source(), queue_url=url)}, name="sqsplain")
        h.start()
        h.wait(lambda: "no RedrivePolicy" in h.log(), 20, "the warning")
        self.assertEqual(h.log().count("no RedrivePolicy"), 1)
        h.stop()


class Delivery(unittest.TestCase):
    def test_deleted_only_after_delivery_and_kept_invisible_past_the_timeout(self):
        """Verifies that with the HEC receiver answering 503 the message stays in flight for longer
        than visibility_timeout (10 s; extended, a second consumer receives nothing) and is deleted
        once the receiver accepts the records."""
        r = Rig(self)
        (key,) = r.objects(["held"], records=30)
        more = r.objects([f"more{i}" for i in range(12)], records=3)
        tmp = TempDir(prefix="logship-sqs-hec-")
        self.addCleanup(tmp.cleanup)
        hec = HecServerProcess(tmp.path, switches={"fail_503": 10**6})
        self.addCleanup(hec.stop)
        token = tmp.join("token")
        with open(token, "w") as f:
            f.write("test-token\n")
        os.chmod(token, 0o600)
        sink = {"type": "splunk_hec", "inputs": ["q"], "endpoints": [hec.url], "token_file": token,
                "retry": {"initial_backoff": "50ms", "max_backoff": "500ms"}}
        # At most 4 messages held: with the receiver refusing, the rest of the queue stays visible.
        h = r.agent(name="sqsheld", sink=sink, sqs={"max_in_flight": 4})
        r.sqs.send(r.url, [r.direct(key)] + [r.direct(k) for k in more])
        h.start()
        h.wait(lambda: hec.stats()["requests_by_status"].get("503", 0) > 0 and r.sqs.counts(r.url) == (9, 4), 30,
               "four messages in flight, the receiver refusing")
        t0 = time.monotonic()
        while time.monotonic() - t0 < 13:  # longer than visibility_timeout
            self.assertEqual(r.sqs.counts(r.url), (9, 4), "a held message became visible or was deleted")
            time.sleep(0.5)
        got = {m["MessageId"] for m in r.sqs.receive(r.url, 10, 0)}
        self.assertEqual(len(got), 9, "a second consumer must get only the nine messages not held")
        self.assertGreaterEqual(sqs_metric(h, "logship_sqs_visibility_extensions_total"), 4)
        self.assertEqual(sqs_metric(h, "logship_sqs_messages_deleted_total"), 0)
        self.assertLessEqual(sqs_metric(h, "logship_sqs_messages_received_total"), 4 + 9)
        hec.control(fail_503=0)
        h.wait(lambda: sqs_metric(h, "logship_sqs_messages_deleted_total") == 13, 60, "deleted after delivery")
        r.sqs.wait_counts(r.url, 0, 0)
        seqs = [e for e in hec.events()]
        ids = collections.Counter(e["event"]["eventID"] for e in seqs if isinstance(e.get("event"), dict))
        self.assertEqual(set(ids), set(r.expect))
        self.assertEqual(max(ids.values()), 1)
        h.stop()


class Fleet(unittest.TestCase):
    def test_three_agents_share_one_queue_exactly_once(self):
        """Verifies three agents on one queue with 300 CloudTrail objects: every record delivered
        once across the three, the queue empty at the end, each agent doing part of the work."""
        r = Rig(self)
        keys = r.objects([f"f{i}" for i in range(300)], records=4)
        bodies, i = [], 0
        while i < len(keys):  # one to three records per message
            n = 1 + i % 3
            bodies.append(r.direct(*keys[i:i + n]))
            i += n
        r.sqs.send(r.url, bodies)
        agents = [r.agent(name=f"sqsfleet{j}") for j in range(3)]
        for h in agents:
            h.start()
        total = lambda: collections.Counter(  # noqa: E731
            k for h in agents for k in by_id(h.events(), "eventID").elements())
        wait_for(lambda: set(total()) >= set(r.expect), 90, "every record", interval=0.5)
        r.sqs.wait_counts(r.url, 0, 0, timeout=30)
        time.sleep(0.5)
        got = total()
        self.assertEqual(set(got), set(r.expect))
        self.assertEqual(max(got.values()), 1, [k for k, n in got.items() if n > 1][:5])
        deleted = [sqs_metric(h, "logship_sqs_messages_deleted_total") for h in agents]
        self.assertEqual(sum(deleted), len(bodies))
        print(f"three agents: {len(keys)} objects, {len(bodies)} messages, deleted per agent {deleted}")
        for h in agents:
            h.stop()

    def test_kill9_of_one_agent_mid_object_loses_nothing(self):
        """Verifies kill -9 of one of three agents while it reads an object: its messages come back
        after visibility_timeout and are finished by the others; every record arrives; records sent
        twice belong only to objects the killed agent had started."""
        r = Rig(self)
        keys = r.objects([f"k{i}" for i in range(6)], records=15000)
        r.sqs.send(r.url, [r.direct(k) for k in keys])
        agents = [r.agent(name=f"sqskill{j}", max_concurrent_objects=1, sqs={"max_in_flight": 2})
                  for j in range(3)]
        victim = agents[0]
        victim.start()
        victim.wait(lambda: len(victim.events()) > 3000, 60, "the victim in the middle of an object", interval=0.02)
        for h in agents[1:]:
            h.start()
        victim.stop(kill=True)
        started = {e["source"] for e in victim.events()}
        total = lambda: collections.Counter(  # noqa: E731
            k for h in agents for k in by_id(h.events(), "eventID").elements())
        wait_for(lambda: set(total()) >= set(r.expect), 120, "every record after the kill", interval=0.5)
        r.sqs.wait_counts(r.url, 0, 0, timeout=30)
        time.sleep(0.5)
        got = total()
        self.assertEqual(set(got), set(r.expect), "records lost")
        dup_sources = {e["source"] for h in agents for e in h.events()
                       if got[e["event"]["eventID"]] > 1}
        self.assertLessEqual(dup_sources, started, "duplicates outside the interrupted objects")
        print(f"kill -9: {sum(n - 1 for n in got.values())} records sent twice, in {len(dup_sources)} object(s)")
        for h in agents[1:]:
            h.stop()


class Encrypted(unittest.TestCase):
    def test_client_side_encrypted_objects_through_sqs(self):
        """Verifies client-side encrypted CloudTrail objects named by notifications (v2 kms+context,
        v2 AES/GCM with an instruction file, whose own notification is skipped, v3 both wraps, v1
        with allow_legacy): decrypted,
        every record once, every message deleted; a tampered one is refused and left."""
        import s3ec
        from kmspeer import KmsPeer
        kms = KmsPeer(keys=["key-q"], access_key="S3RVER", secret="S3RVER").start()
        self.addCleanup(kms.stop)
        r = Rig(self)
        kek = os.path.join(r.s3.tmp.path, "kek.bin")
        with open(kek, "wb") as f:
            f.write(bytes(range(32)))
        os.chmod(kek, 0o600)
        made = {
            "v2kms": lambda pt: s3ec.encrypt_v2_kms_context(pt, kms, "key-q", context={"team": "sec"}),
            "v2ins": lambda pt: s3ec.encrypt_v2_aes_gcm(pt, bytes(range(32)), instruction_file=True),
            "v3kms": lambda pt: s3ec.encrypt_v3_kms_context(pt, kms, "key-q", context={"team": "sec"}),
            "v3kek": lambda pt: s3ec.encrypt_v3_aes_gcm(pt, bytes(range(32))),
            "v1": lambda pt: s3ec.encrypt_v1_kms(pt, kms, "key-q"),
            "tampered": lambda pt: s3ec.flip_ciphertext(s3ec.encrypt_v2_kms_context(pt, kms, "key-q"), "middle"),
        }
        keys, lost = [], set()
        for i, (name, fn) in enumerate(made.items()):
            body, ids = ct_file(r.rnd, name, 20, NOW - 600)
            if name == "tampered":
                lost.update(ids)
            else:
                r.expect.update(ids)
            enc = fn(body)
            key = ct_key("us-east-1", DAY, f"07{i:02d}", name)
            objs = [(key, enc.body, None, enc.metadata)]
            if enc.instruction is not None:
                objs.append((key + ".instruction", enc.instruction_body))
            r.s3.put(objs, bucket=BUCKET)
            for k, b in [(o[0], o[1]) for o in objs]:
                r.keys[k] = (len(b), etag(b))
                keys.append(k)
        r.sqs.send(r.url, [r.direct(k) for k in keys])
        h = r.agent(name="sqsenc", kms_endpoint=kms.url,
                    client_side_encryption={"kek_file": kek, "allow_legacy": True})
        h.start()
        h.wait(lambda: set(by_id(h.events(), "eventID")) >= set(r.expect), 60, "every decrypted record")
        h.wait(lambda: sqs_metric(h, "logship_sqs_messages_deleted_total") == len(keys) - 1, 30,
               "every message but the tampered object's deleted")
        got = by_id(h.events(), "eventID")
        self.assertEqual(set(got), set(r.expect))
        self.assertEqual(max(got.values()), 1)
        self.assertEqual(h.metric("logship_s3_objects_decrypted_total", component_id="q"), 5)
        self.assertEqual(h.metric("logship_s3_decryption_failures_total", component_id="q", reason="tag"), 1)
        self.assertEqual(sqs_metric(h, "logship_sqs_messages_left_total", reason="failed"), 1)
        h.stop()


class BadInput(unittest.TestCase):
    def test_corrupt_missing_and_denied_objects_with_delete_failed(self):
        """Verifies with sqs.delete_failed: true that corrupt gzip and NoSuchKey fail their object
        (counted, logged with the key) and their messages are deleted; AccessDenied is transient:
        the message comes back and the object is read once the permission is there."""
        r = Rig(self)
        (good, denied) = r.objects(["good", "denied"])
        corrupt = ct_key("us-east-1", DAY, "0900", "corrupt")
        junk = b"\x1f\x8b\x08\x00" + os.urandom(300)
        r.s3.put([(corrupt, junk)], bucket=BUCKET)
        r.keys[corrupt] = (len(junk), etag(junk))
        missing = ct_key("us-east-1", DAY, "0901", "missing")
        proxy = CuttingProxy(self, r.s3.port, "none", deny="_denied.json.gz")
        r.sqs.send(r.url, [r.direct(k) for k in (good, corrupt, missing, denied)])
        h = r.agent(name="sqsbad", endpoint=f"http://127.0.0.1:{proxy.port}", sqs={"delete_failed": True})
        h.start()
        h.wait(lambda: sqs_metric(h, "logship_sqs_messages_deleted_total") == 3, 30, "three messages deleted")
        self.assertEqual(h.metric("logship_s3_objects_total", component_id="q", status="failed"), 2)
        log = h.log()
        self.assertIn(corrupt, log)
        self.assertIn(missing, log)
        self.assertIn("NoSuchKey", log)
        h.wait(lambda: "AccessDenied" in h.log(), 20, "AccessDenied logged")
        proxy.deny = None  # the permission was granted: the message comes back after its visibility
        h.wait(lambda: sqs_metric(h, "logship_sqs_messages_deleted_total") == 4, 40, "the denied object read")
        self.assertEqual(set(by_id(h.events(), "eventID")), set(r.expect))
        r.sqs.wait_counts(r.url, 0, 0)
        h.stop()


if __name__ == "__main__":
    unittest.main()
