"""Self-tests of the SQS test peers (sqspeer.js, sqslib.py) for the `s3` source's `mode: sqs`: bodies of
every kind AWS delivers round-trip through local-aws-sqs and the official @aws-sdk/client-sqs, a received
message stays hidden for its visibility timeout, the queue attributes count visible and in-flight messages,
a redrive policy moves a message to its dead-letter queue, and the wire-level quirks sqspeer.js documents
(which logship's own SQS client meets) hold. No logship binary needed; runs in a few seconds."""
import hashlib
import http.client
import json
import os
import sys
import types
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(__file__))
import sqslib  # noqa: E402
from sqslib import SqsServer  # noqa: E402

# A key with every character S3 encodes differently from a plain path: space, '+', '=', ':', non-ASCII.
KEY = "AWSLogs/111122223333/app logs/dt=2026-01-31/12:00+01 é.json.gz"


def md5_hex(s):
    return hashlib.md5(s.encode()).hexdigest()


class SqsPeerTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        # One server for the class (each test uses its own queues): starting one costs ~0.3 s.
        cls.sqs = SqsServer(types.SimpleNamespace(addCleanup=cls.addClassCleanup))

    def raw(self, action, body, headers=None):
        """One JSON-protocol request as logship sends it (no SigV4: local-aws-sqs checks none);
        (status, headers, body bytes)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.sqs.port, timeout=10)
        h = {"Content-Type": "application/x-amz-json-1.0"}
        if action:
            h["X-Amz-Target"] = f"AmazonSQS.{action}"
        h.update(headers or {})
        conn.request("POST", "/", json.dumps(body).encode(), h)
        r = conn.getresponse()
        data = r.read()
        conn.close()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, data

    def test_queue_urls_follow_the_documented_format(self):
        url = self.sqs.create_queue("format")
        self.assertEqual(url, f"http://127.0.0.1:{self.sqs.port}/123456789012/format")
        self.assertEqual(self.sqs.attrs(url)["QueueArn"], "arn:aws:sqs:us-east-1:123456789012:format")
        self.assertEqual(self.sqs.create_queue("format"), url)   # CreateQueue is idempotent

    def test_every_body_kind_round_trips(self):
        url = self.sqs.create_queue("bodies")
        records = [("logs", KEY, 1234, '"0123456789abcdef0123456789abcdef"', sqslib.sequencer(1)),
                   ("logs", "plain/key.log", 0, "d41d8cd98f00b204e9800998ecf8427e", sqslib.sequencer(2))]
        direct = sqslib.s3_event_body(records)
        wrapped = sqslib.sns_wrapped(sqslib.s3_event_body(records[:1]))
        bridge = sqslib.eventbridge_body("logs", KEY, 1234, "0123456789abcdef0123456789abcdef", sqslib.sequencer(3))
        bodies = [direct, wrapped, bridge, sqslib.test_event_body(), "not json: caf\u00e9 \u2603"]
        self.sqs.send(url, bodies)

        got = self.sqs.receive(url, max=10, visibility=30)
        self.assertEqual(sorted(m["Body"] for m in got), sorted(bodies))
        for m in got:
            self.assertEqual(m["MD5OfBody"], md5_hex(m["Body"]))
            self.assertEqual(m["Attributes"]["ApproximateReceiveCount"], "1")
        self.assertEqual(len({m["MessageId"] for m in got}), len(bodies))

        # S3 notification: URL-encoded key, bare ETag, realistic fields.
        rec = json.loads(direct)["Records"][0]
        self.assertEqual(rec["eventVersion"], "2.1")
        self.assertEqual(rec["eventSource"], "aws:s3")
        self.assertEqual(rec["eventName"], "ObjectCreated:Put")
        self.assertEqual(rec["s3"]["bucket"]["arn"], "arn:aws:s3:::logs")
        obj = rec["s3"]["object"]
        self.assertEqual(obj["key"], "AWSLogs/111122223333/app+logs/dt%3D2026-01-31/12%3A00%2B01+%C3%A9.json.gz")
        self.assertEqual(urllib.parse.unquote_plus(obj["key"]), KEY)
        self.assertEqual((obj["size"], obj["eTag"]), (1234, "0123456789abcdef0123456789abcdef"))
        self.assertEqual(json.loads(direct)["Records"][1]["s3"]["object"]["size"], 0)
        # SNS: the notification is the Message string; EventBridge: the key as is.
        env = json.loads(wrapped)
        self.assertEqual((env["Type"], env["SignatureVersion"]), ("Notification", "1"))
        self.assertEqual(json.loads(env["Message"])["Records"][0]["s3"]["object"]["key"], obj["key"])
        detail = json.loads(bridge)["detail"]
        self.assertEqual(json.loads(bridge)["detail-type"], "Object Created")
        self.assertEqual(detail["object"]["key"], KEY)
        self.assertEqual(detail["bucket"]["name"], "logs")
        self.assertEqual(json.loads(sqslib.test_event_body())["Event"], "s3:TestEvent")
        self.assertTrue(self.sqs.requests("SendMessageBatch"))

    def test_visibility_hides_a_received_message_and_attrs_count_it(self):
        url = self.sqs.create_queue("visibility")
        self.sqs.send(url, ["m1", "m2", "m3"])
        self.assertEqual(self.sqs.counts(url), (3, 0))

        first = self.sqs.receive(url, max=1, visibility=60)
        self.assertEqual([m["Body"] for m in first], ["m1"])
        a = self.sqs.attrs(url)
        # local-aws-sqs counts in-flight messages in ApproximateNumberOfMessages (real SQS does not).
        self.assertEqual((a["ApproximateNumberOfMessages"], a["ApproximateNumberOfMessagesNotVisible"]), ("3", "1"))
        self.assertEqual(self.sqs.counts(url), (2, 1))

        # A competing consumer sees only the two others, each once; visibility 0 gives them back at once
        # (local-aws-sqs collected them on several ticks of its window: the receive count rose by more than 1).
        rest = self.sqs.receive(url, max=10, visibility=0)
        self.assertEqual(sorted(m["Body"] for m in rest), ["m2", "m3"])
        again = self.sqs.receive(url, max=10, visibility=60)
        self.assertEqual(sorted(m["Body"] for m in again), ["m2", "m3"])
        self.assertTrue(all(int(m["Attributes"]["ApproximateReceiveCount"]) >= 2 for m in again), again)
        self.assertEqual(self.sqs.receive(url), [])
        self.assertEqual(self.sqs.counts(url), (0, 3))

        self.sqs.delete(url, [m["ReceiptHandle"] for m in first + again])
        self.assertEqual(self.sqs.counts(url), (0, 0))

    def test_redrive_policy_moves_a_message_to_the_dead_letter_queue(self):
        url = self.sqs.create_queue("redrive", dead_letter=True, max_receive_count=1)
        dlq = self.sqs.dead_letter_url("redrive")
        policy = json.loads(self.sqs.attrs(url)["RedrivePolicy"])
        self.assertEqual(policy, {"deadLetterTargetArn": sqslib.SqsServer.queue_arn("redrive-dlq"),
                                  "maxReceiveCount": 1})
        self.sqs.send(url, ["poison"])
        self.assertEqual(len(self.sqs.receive(url, max=1, visibility=1)), 1)
        self.sqs.wait_counts(dlq, visible=1, timeout=10)   # when the 1 s visibility expires
        self.assertEqual(self.sqs.counts(url), (0, 0))
        [m] = self.sqs.receive(dlq, max=10, visibility=30)
        self.assertEqual(m["Body"], "poison")
        self.assertEqual(m["Attributes"]["DeadLetterQueueSourceArn"], sqslib.SqsServer.queue_arn("redrive"))

    def test_wire_quirks_documented_in_sqspeer(self):
        url = self.sqs.create_queue("wire")
        # An empty receive answers 200 with an empty body, not {}.
        status, headers, data = self.raw("ReceiveMessage", {"QueueUrl": url, "WaitTimeSeconds": 0,
                                                           "MaxNumberOfMessages": 10})
        self.assertEqual((status, data, headers["content-type"]), (200, b"", "application/x-amz-json-1.0"))
        # Queues are found by the last path segment of the QueueUrl alone.
        self.sqs.send(url, ["x"])
        status, _, data = self.raw("ReceiveMessage", {"QueueUrl": "http://elsewhere:1/999/wire",
                                                      "VisibilityTimeout": 30, "AttributeNames": ["All"]})
        [m] = json.loads(data)["Messages"]
        self.assertEqual((status, m["Body"]), (200, "x"))
        self.assertEqual(m["Attributes"]["ApproximateReceiveCount"], "1")
        # Receipt handles: garbage is 400 ReceiptHandleIsInvalid; a deleted message's handle still deletes
        # (200) but no longer changes visibility (404, same __type); no MessageNotInflight.
        status, headers, data = self.raw("DeleteMessage", {"QueueUrl": url, "ReceiptHandle": "garbage"})
        self.assertEqual((status, json.loads(data)["__type"]), (400, "com.amazonaws.sqs#ReceiptHandleIsInvalid"))
        self.assertEqual(headers["x-amzn-query-error"], "ReceiptHandleIsInvalid;Sender")
        status, _, data = self.raw("DeleteMessage", {"QueueUrl": url, "ReceiptHandle": m["ReceiptHandle"]})
        self.assertEqual((status, data), (200, b""))
        self.assertEqual(self.raw("DeleteMessage", {"QueueUrl": url, "ReceiptHandle": m["ReceiptHandle"]})[0], 200)
        status, _, data = self.raw("ChangeMessageVisibility", {"QueueUrl": url, "ReceiptHandle": m["ReceiptHandle"],
                                                               "VisibilityTimeout": 10})
        self.assertEqual((status, json.loads(data)["__type"]), (404, "com.amazonaws.sqs#ReceiptHandleIsInvalid"))
        # The batch forms exist and answer per entry.
        status, _, data = self.raw("DeleteMessageBatch", {"QueueUrl": url, "Entries": [
            {"Id": "a", "ReceiptHandle": "garbage"}, {"Id": "b", "ReceiptHandle": m["ReceiptHandle"]}]})
        self.assertEqual(json.loads(data), {"Failed": [{"Code": "ReceiptHandleIsInvalid", "Id": "a", "SenderFault": True,
                                                        "Message": 'The input receipt handle "garbage" is not valid.'}],
                                            "Successful": [{"Id": "b"}]})
        status, _, data = self.raw("ChangeMessageVisibilityBatch", {"QueueUrl": url, "Entries": [
            {"Id": "a", "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 5}]})
        self.assertEqual([f["Code"] for f in json.loads(data)["Failed"]], ["ReceiptHandleIsInvalid"])
        # Unknown queue; a charset in Content-Type falls back to the Query protocol (XML error).
        status, _, data = self.raw("ReceiveMessage", {"QueueUrl": "nosuch"})
        self.assertEqual((status, json.loads(data)["__type"]), (400, "com.amazonaws.sqs#QueueDoesNotExist"))
        status, headers, data = self.raw("ReceiveMessage", {"QueueUrl": url},
                                         {"Content-Type": "application/x-amz-json-1.0; charset=utf-8"})
        self.assertEqual((status, headers["content-type"]), (400, "text/xml"))
        self.assertIn(b"UnsupportedOperation", data)
        # No X-Amz-Target would kill local-aws-sqs: sqspeer.js answers it, and the server lives on.
        status, _, data = self.raw(None, {"QueueUrl": url})
        self.assertEqual((status, json.loads(data)["__type"]), (400, "com.amazon.coral.service#UnknownOperationException"))
        self.assertEqual(self.raw("GetQueueAttributes", {"QueueUrl": url, "AttributeNames": ["QueueArn"]})[0], 200)
        self.assertIsNone(self.sqs.proc.poll())


if __name__ == "__main__":
    unittest.main()
