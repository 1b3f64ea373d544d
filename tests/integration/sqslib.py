"""Shared pieces of the `s3` source's `mode: sqs` integration tests: an SQS server on 127.0.0.1 (npm
local-aws-sqs behind sqspeer.js, whose header lists its quirks), queue operations through the official
@aws-sdk/client-sqs, and builders of the message bodies AWS delivers for new objects (AWS.md §4): S3 event
notifications (direct or wrapped by SNS), EventBridge events and the one-off s3:TestEvent. Each operation
is one `node` process (~0.2 s), so send a whole batch in one call."""
import itertools
import json
import os
import subprocess
import sys
import time
import urllib.parse
import uuid

sys.path.insert(0, os.path.dirname(__file__))
from lib import SOURCE_DIR as LOGSHIP_SOURCE_DIR, TempDir, free_port, wait_for  # noqa: E402

NODE_DIR = os.path.join(LOGSHIP_SOURCE_DIR, "tests")
PEER = os.path.join(LOGSHIP_SOURCE_DIR, "tests", "integration", "sqspeer.js")
SQS_ACCOUNT = "123456789012"   # local-aws-sqs's account, in queue URLs and ARNs
REGION = "us-east-1"
OWNER_ACCOUNT = "111122223333"  # the bucket owner's account in notifications (s3lib.ACCOUNT)


class SqsError(AssertionError):
    """A sqspeer.js client command failed (its stderr holds the SDK's error)."""


class SqsServer:
    """One local-aws-sqs process; queue URLs are http://127.0.0.1:<port>/123456789012/<name>."""

    def __init__(self, tc):
        self.tmp = TempDir(prefix="logship-sqs-")
        tc.addCleanup(self.tmp.cleanup)
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.log_path = self.tmp.join("sqs.log")
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(["node", PEER, "serve", str(self.port)], cwd=NODE_DIR, stdout=self._log,
                                     stderr=subprocess.STDOUT, env=self._env())
        tc.addCleanup(self.stop)
        wait_for(lambda: "ready" in self.log() or self.proc.poll() is not None, 30, "local-aws-sqs ready")
        if self.proc.poll() is not None:
            raise AssertionError(f"local-aws-sqs did not start:\n{self.log()}")
        self._n = itertools.count()

    @staticmethod
    def _env():
        # The SDK warns about Node 20 on every start; no proxy may catch 127.0.0.1.
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(NODE_NO_WARNINGS="1", NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost")
        for k in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
            env.pop(k, None)
        return env

    def log(self):
        """The server's output: "ready <port>", then one "<Action> <status> <ms>ms" line per request."""
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def requests(self, action=None):
        """[(action, status)] of the requests answered so far, optionally only those of one action."""
        out = []
        for line in self.log().splitlines()[1:]:
            parts = line.split()
            if len(parts) == 3 and parts[2].endswith("ms") and parts[1].isdigit():
                if action is None or parts[0] == action:
                    out.append((parts[0], int(parts[1])))
        return out

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()

    def _run(self, *args, timeout=120):
        r = subprocess.run(["node", PEER, *args], cwd=NODE_DIR, capture_output=True, text=True, timeout=timeout,
                           env=self._env())
        if r.returncode != 0:
            raise SqsError(f"sqspeer.js {args[0]} failed: {r.stdout}\n{r.stderr}")
        return r.stdout

    def _json_file(self, obj):
        path = self.tmp.join(f"args-{next(self._n)}.json")
        with open(path, "w", encoding="utf-8") as f:
            json.dump(obj, f)
        return path

    # --- queues ------------------------------------------------------------------------------------

    def queue_url(self, name):
        return f"{self.endpoint}/{SQS_ACCOUNT}/{name}"

    @staticmethod
    def queue_arn(name):
        return f"arn:aws:sqs:{REGION}:{SQS_ACCOUNT}:{name}"

    def create_queue(self, name, dead_letter=False, max_receive_count=3):
        """Creates queue `name` and returns its URL. dead_letter: also `<name>-dlq`, named by a RedrivePolicy
        with `max_receive_count` (its URL: dead_letter_url(name))."""
        args = ["create", self.endpoint, name]
        if dead_letter:
            args.append(json.dumps({"deadLetterTargetArn": self.queue_arn(f"{name}-dlq"),
                                    "maxReceiveCount": max_receive_count}))
        url = self._run(*args).strip()
        if url != self.queue_url(name):
            raise AssertionError(f"unexpected queue URL {url!r}")
        return url

    def dead_letter_url(self, name):
        return self.queue_url(f"{name}-dlq")

    # --- messages ----------------------------------------------------------------------------------

    def send(self, url, bodies):
        """Sends each body (str, or an object sent as its JSON) as one message, in this order, in one call."""
        bodies = [b if isinstance(b, str) else json.dumps(b) for b in bodies]
        out = self._run("send", self.endpoint, url, self._json_file(bodies)).strip()
        if out != f"sent {len(bodies)}":
            raise AssertionError(f"send: {out!r}")

    def attrs(self, url):
        """GetQueueAttributes [All] as a dict of strings. Note: ApproximateNumberOfMessages includes the
        messages in flight here (see sqspeer.js); visible() is the number real SQS reports."""
        return json.loads(self._run("attrs", self.endpoint, url))

    def counts(self, url):
        """(visible, in flight) messages of the queue."""
        a = self.attrs(url)
        total, hidden = int(a["ApproximateNumberOfMessages"]), int(a["ApproximateNumberOfMessagesNotVisible"])
        return total - hidden, hidden

    def visible(self, url):
        return self.counts(url)[0]

    def receive(self, url, max=10, visibility=0):
        """Receives up to `max` messages without a long wait (a competing consumer), hiding them for
        `visibility` s (0: visible again at once). [{"MessageId","ReceiptHandle","Body","MD5OfBody",
        "Attributes":{"ApproximateReceiveCount",...}}]."""
        return json.loads(self._run("receive", self.endpoint, url, str(max), str(visibility)))

    def delete(self, url, receipt_handles):
        out = self._run("delete", self.endpoint, url, self._json_file(list(receipt_handles))).strip()
        if out != f"deleted {len(receipt_handles)}":
            raise AssertionError(f"delete: {out!r}")

    def wait_counts(self, url, visible, in_flight=None, timeout=30):
        """Waits until the queue holds `visible` visible messages (and `in_flight` hidden ones, if given)."""
        def ok():
            c = self.counts(url)
            return c if c[0] == visible and (in_flight is None or c[1] == in_flight) else None
        return wait_for(ok, timeout, f"queue {url} at visible={visible} in_flight={in_flight}", interval=0.2)


# --- message bodies --------------------------------------------------------------------------------

def _iso_ms(epoch_s):
    """2026-01-31T12:34:56.789Z, the timestamp form of S3 and SNS."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch_s)) + f".{int(epoch_s * 1000) % 1000:03d}Z"


def _etag(etag):
    # ETags arrive quoted from S3 listings; notifications carry them bare.
    return etag.strip('"')


def sequencer(n):
    """A sequencer as S3 writes them: upper-case hex, 18 digits (compare by length, then value)."""
    return f"{0x0062E99A88DC400000 + n:018X}"


def encode_key(key):
    """The object key as S3 puts it into event notifications: form-URL-encoded, UTF-8 (space → '+',
    '+' → '%2B', '=' → '%3D', ':' → '%3A'); '/' stays as is."""
    return urllib.parse.quote_plus(key, safe="/")


def s3_event_record(bucket, key, size, etag, seq, event_name="ObjectCreated:Put", region=REGION,
                    event_time=None, version_id=None):
    """One record of an S3 event notification (eventVersion 2.1), all fields as S3 sends them."""
    t = time.time() if event_time is None else event_time
    obj = {"key": encode_key(key), "size": size, "eTag": _etag(etag), "sequencer": seq}
    if version_id is not None:
        obj["versionId"] = version_id
    if event_name.startswith("ObjectRemoved"):
        del obj["size"], obj["eTag"]   # S3 sends neither for deletions
    return {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": region,
        "eventTime": _iso_ms(t),
        "eventName": event_name,
        "userIdentity": {"principalId": "AWS:AIDAEXAMPLEUSERID12"},
        "requestParameters": {"sourceIPAddress": "203.0.113.17"},
        "responseElements": {"x-amz-request-id": uuid.uuid4().hex[:16].upper(),
                             "x-amz-id-2": "vlR7PnpV2Ce81l0PRw6jlUpck7Jo5ZsQjryTjKlc5aLWGVHPZLj5NeC6qMa0emYBDXOo6QBU0Wo="},
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": "logship-object-created",
            "bucket": {"name": bucket, "ownerIdentity": {"principalId": "A3NL1KOZZKExample"},
                       "arn": f"arn:aws:s3:::{bucket}"},
            "object": obj,
        },
    }


def s3_event_body(records, **kw):
    """An S3 event notification as S3 sends it to SQS: {"Records":[...]} as a JSON string. records:
    [(bucket, key, size, etag, sequencer)] or (…, event_name) — eventName defaults to ObjectCreated:Put;
    keyword arguments go to s3_event_record (region, event_time, version_id)."""
    recs = []
    for r in records:
        bucket, key, size, etag, seq = r[:5]
        extra = dict(kw)
        if len(r) > 5:
            extra["event_name"] = r[5]
        recs.append(s3_event_record(bucket, key, size, etag, seq, **extra))
    return json.dumps({"Records": recs})


def sns_wrapped(body, topic="s3-object-events", subject="Amazon S3 Notification", raw=False):
    """`body` (a JSON string) as an SNS topic delivers it to an SQS subscription: an SNS envelope whose
    Message is that string. raw=True: raw message delivery (SNS passes the body through unchanged)."""
    if raw:
        return body
    topic_arn = f"arn:aws:sns:{REGION}:{OWNER_ACCOUNT}:{topic}"
    return json.dumps({
        "Type": "Notification",
        "MessageId": str(uuid.uuid4()),
        "TopicArn": topic_arn,
        "Subject": subject,
        "Message": body,
        "Timestamp": _iso_ms(time.time()),
        "SignatureVersion": "1",
        "Signature": "EXAMPLEpH+DcEwjAPg8O9mY8dReBSwksfg2S7WKQcikcNKWLQjwu6A4VbeS0QHVCkhRS7fUQvi2egU3N858fiTDN6bkkOx"
                     "YDVrY0Ad8L10Hs3zH81mtnPk5uvvolIC1CXGu43obcgFxeL3khZl8IKvO61GWB6jI9b5+gLPoBc1Q=",
        "SigningCertURL": f"https://sns.{REGION}.amazonaws.com/SimpleNotificationService-"
                          "01d088a6f77103d0fe307c0069e40ed6.pem",
        "UnsubscribeURL": f"https://sns.{REGION}.amazonaws.com/?Action=Unsubscribe&SubscriptionArn="
                          f"{topic_arn}:2bcfbf39-05c3-41de-beaa-fcfcc21c8f55",
    })


def eventbridge_body(bucket, key, size, etag, seq, version_id="IYV3p45BT0ac8hjHg1houSdS1a.Mro8e",
                     region=REGION, event_time=None):
    """An EventBridge "Object Created" event as a rule targeting SQS delivers it (the key is NOT
    URL-encoded here)."""
    t = time.time() if event_time is None else event_time
    return json.dumps({
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Object Created",
        "source": "aws.s3",
        "account": OWNER_ACCOUNT,
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t)),
        "region": region,
        "resources": [f"arn:aws:s3:::{bucket}"],
        "detail": {
            "version": "0",
            "bucket": {"name": bucket},
            "object": {"key": key, "size": size, "etag": _etag(etag), "version-id": version_id,
                       "sequencer": seq},
            "request-id": uuid.uuid4().hex[:16].upper(),
            "requester": OWNER_ACCOUNT,
            "source-ip-address": "203.0.113.17",
            "reason": "PutObject",
        },
    })


def test_event_body(bucket="logs"):
    """The one-off message S3 sends when a notification configuration is saved (no Records)."""
    return json.dumps({
        "Service": "Amazon S3",
        "Event": "s3:TestEvent",
        "Time": _iso_ms(time.time()),
        "Bucket": bucket,
        "RequestId": uuid.uuid4().hex[:16].upper(),
        "HostId": "8cLeGAmw9LjaCiq0sXHRFAm3zJpdvyajOFPmdrMfo5hfz7VT7Rj2Bdu5dG2GmJz8vcAdWvEmFsU=",
    })


test_event_body.__test__ = False  # a builder, not a test (for test runners that collect test_* functions)
