"""Shared pieces of the `s3` source integration tests: an S3 server on 127.0.0.1 (npm s3rver, or
@20minutes/s3rver which verifies SigV4), uploads through the official @aws-sdk/client-s3, and
deterministic CloudTrail / VPC Flow Log / ndjson generators. Never a real AWS address: the
environment of every logship process has the AWS_* variables cleared, IMDS disabled and HOME
pointing at an empty directory."""
import gzip
import json
import os
import random
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from lib import SOURCE_DIR as LOGSHIP_SOURCE_DIR, TempDir, free_port, wait_for  # noqa: E402

NODE_DIR = os.path.join(LOGSHIP_SOURCE_DIR, "tests")
PEER = os.path.join(LOGSHIP_SOURCE_DIR, "tests", "integration", "s3peer.js")
ACCOUNT = "111122223333"


def clean_aws_env(home):
    """os.environ without AWS_* variables, with IMDS off and an empty HOME."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update({"AWS_EC2_METADATA_DISABLED": "true", "HOME": home, "NO_PROXY": "127.0.0.1,localhost",
                "no_proxy": "127.0.0.1,localhost"})
    for k in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
        env.pop(k, None)
    return env


class S3Server:
    """One S3 server process (`signed`: @20minutes/s3rver, which checks signatures)."""

    def __init__(self, tc, buckets=("logs",), signed=False):
        self.tmp = TempDir(prefix="logship-s3rver-")
        tc.addCleanup(self.tmp.cleanup)
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.log_path = self.tmp.join("s3rver.log")
        env = dict(os.environ, NODE_OPTIONS="--openssl-legacy-provider", NODE_NO_WARNINGS="1")
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            ["node", PEER, "serve-signed" if signed else "serve", str(self.port), self.tmp.join("data")] + list(buckets),
            cwd=NODE_DIR, stdout=self._log, stderr=subprocess.STDOUT, env=env)
        tc.addCleanup(self.stop)
        wait_for(lambda: "ready" in self.log() or self.proc.poll() is not None, 30, "s3rver ready")
        if self.proc.poll() is not None:
            raise AssertionError(f"s3rver did not start:\n{self.log()}")
        self.n = 0

    def log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self._log.close()

    def put(self, objects, bucket="logs"):
        """objects: [(key, bytes)], [(key, bytes, content_encoding)] or [(key, bytes, content_encoding,
        metadata)] (user metadata: names without `x-amz-meta-`), uploaded in this order."""
        manifest = []
        for o in objects:
            self.n += 1
            path = self.tmp.join(f"upload-{self.n}")
            with open(path, "wb") as f:
                f.write(o[1])
            item = {"bucket": bucket, "key": o[0], "file": path}
            if len(o) > 2 and o[2]:
                item["content_encoding"] = o[2]
            if len(o) > 3 and o[3]:
                item["metadata"] = o[3]
            manifest.append(item)
        mpath = self.tmp.join(f"manifest-{self.n}.json")
        with open(mpath, "w") as f:
            json.dump(manifest, f)
        env = dict(os.environ, NODE_NO_WARNINGS="1")
        r = subprocess.run(["node", PEER, "put", self.endpoint, mpath], cwd=NODE_DIR, capture_output=True,
                           text=True, timeout=600, env=env)
        if r.returncode != 0:
            raise AssertionError(f"upload failed: {r.stdout}\n{r.stderr}")
        for item in manifest:
            os.unlink(item["file"])

    def put_file(self, key, path, bucket="logs", metadata=None):
        mpath = self.tmp.join("manifest-file.json")
        item = {"bucket": bucket, "key": key, "file": path}
        if metadata:
            item["metadata"] = metadata
        with open(mpath, "w") as f:
            json.dump([item], f)
        env = dict(os.environ, NODE_NO_WARNINGS="1")
        r = subprocess.run(["node", PEER, "put", self.endpoint, mpath], cwd=NODE_DIR, capture_output=True,
                           text=True, timeout=900, env=env)
        if r.returncode != 0:
            raise AssertionError(f"upload failed: {r.stdout}\n{r.stderr}")


# --- generators ------------------------------------------------------------------------------------

def ct_key(region, day, stamp, suffix, account=ACCOUNT):
    """The real CloudTrail key layout (HEC.md): AWSLogs/<acct>/CloudTrail/<region>/YYYY/MM/DD/..."""
    y, m, d = day
    return (f"AWSLogs/{account}/CloudTrail/{region}/{y:04d}/{m:02d}/{d:02d}/"
            f"{account}_CloudTrail_{region}_{y:04d}{m:02d}{d:02d}T{stamp}Z_{suffix}.json.gz")


def ct_digest_key(region, day, stamp, account=ACCOUNT):
    y, m, d = day
    return (f"AWSLogs/{account}/CloudTrail-Digest/{region}/{y:04d}/{m:02d}/{d:02d}/"
            f"{account}_CloudTrail-Digest_{region}_{account}_{region}_{y:04d}{m:02d}{d:02d}T{stamp}Z.json.gz")


def ct_record(rnd, event_id, epoch_s):
    t = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch_s))
    user = rnd.choice(["alice", "bob", "deploy-bot", "o'brien"])
    return {
        "eventVersion": "1.08",
        "userIdentity": {"type": "IAMUser", "principalId": "AIDAEXAMPLE" + str(rnd.randrange(10**6)),
                         "arn": f"arn:aws:iam::{ACCOUNT}:user/{user}", "accountId": ACCOUNT,
                         "accessKeyId": "AKIAEXAMPLE", "userName": user},
        "eventTime": t,
        "eventSource": rnd.choice(["s3.amazonaws.com", "ec2.amazonaws.com", "iam.amazonaws.com"]),
        "eventName": rnd.choice(["GetObject", "DescribeInstances", "CreateUser", "PutObject"]),
        "awsRegion": "us-east-1",
        "sourceIPAddress": f"203.0.113.{rnd.randrange(256)}",
        "userAgent": "aws-cli/2.15.0 Python/3.11 \"quoted\" agent\\path",
        "requestParameters": {"bucketName": "data", "key": "reports/{2026}/[q4] é ü.csv",
                              "nested": {"list": [1, 2, {"x": "}]\"{["}]}},
        "responseElements": None,
        "requestID": f"req-{event_id}",
        "eventID": event_id,
        "readOnly": rnd.random() < 0.5,
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": ACCOUNT,
    }


def ct_file(rnd, prefix_id, n, epoch_s, pretty=False):
    """(gzip bytes, {eventID: eventTime epoch})."""
    recs = [ct_record(rnd, f"{prefix_id}-{i:05d}", epoch_s + i) for i in range(n)]
    body = json.dumps({"Records": recs}, indent=1 if pretty else None, ensure_ascii=False)
    return gzip.compress(body.encode(), 1), {r["eventID"]: epoch_s + i for i, r in enumerate(recs)}


VPC_V2 = ("version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end "
          "action log-status")
VPC_CUSTOM = ("version vpc-id subnet-id instance-id interface-id account-id type srcaddr dstaddr srcport dstport "
              "pkt-srcaddr pkt-dstaddr protocol bytes packets start end action tcp-flags log-status")


def vpc_v2_file(first_seq, n, start_s, nodata=0, skipdata=0):
    """VPC flow v2 text (header + n rows); `bytes` carries a unique sequence number."""
    lines = [VPC_V2]
    for i in range(n):
        seq = first_seq + i
        lines.append(f"2 {ACCOUNT} eni-0a1b2c3d 10.0.1.{i % 250} 10.0.2.9 443 {49152 + i % 1000} 6 10 {seq} "
                     f"{start_s + i} {start_s + i + 60} ACCEPT OK")
    for j in range(nodata):
        lines.append(f"2 {ACCOUNT} eni-0a1b2c3d - - - - - - - {start_s + j} {start_s + j + 60} - NODATA")
    for j in range(skipdata):
        lines.append(f"2 {ACCOUNT} eni-0a1b2c3d - - - - - - - {start_s + j} {start_s + j + 60} - SKIPDATA")
    return ("\n".join(lines) + "\n").encode()


def vpc_custom_file(first_seq, n, start_s):
    lines = [VPC_CUSTOM]
    for i in range(n):
        seq = first_seq + i
        lines.append(f"5 vpc-0abc subnet-0def i-0123456789 eni-0a1b2c3d {ACCOUNT} IPv4 10.0.1.5 10.0.2.9 443 "
                     f"{40000 + i % 1000} 10.0.1.5 10.0.2.9 6 {seq} 7 {start_s + i} {start_s + i + 60} ACCEPT 19 OK")
    return ("\n".join(lines) + "\n").encode()


def vpc_key(day, stamp, suffix, region="us-east-1", flow="fl-0123456789abcdef0", account=ACCOUNT):
    y, m, d = day
    return (f"AWSLogs/{account}/vpcflowlogs/{region}/{y:04d}/{m:02d}/{d:02d}/"
            f"{account}_vpcflowlogs_{region}_{flow}_{y:04d}{m:02d}{d:02d}T{stamp}Z_{suffix}.log.gz")


def ndjson_lines(first, n, pad=60):
    return "".join(json.dumps({"seq": first + i, "msg": "x" * pad}) + "\n" for i in range(n)).encode()


class RecordingProxy:
    """A plain HTTP proxy on 127.0.0.1 in front of an S3 server that records every request it
    forwards (method, raw path, headers as {lower-case name: [values]}): s3rver ignores some headers
    (SSE-C), so what logship sent is checked on the wire."""

    def __init__(self, tc, upstream_port):
        import http.client
        import http.server
        import threading
        self.requests = []
        self._lock = threading.Lock()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, fmt, *args):  # quiet
                pass

            def _any(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                hdrs = {}
                for k, v in self.headers.items():
                    hdrs.setdefault(k.lower(), []).append(v)
                with proxy._lock:
                    proxy.requests.append({"method": self.command, "path": self.path, "headers": hdrs,
                                           "body": body})
                up = http.client.HTTPConnection("127.0.0.1", upstream_port, timeout=60)
                up.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
                for k, v in self.headers.items():
                    if k.lower() not in ("connection", "keep-alive", "proxy-connection"):
                        up.putheader(k, v)
                up.endheaders(body if body else None)
                r = up.getresponse()
                data = r.read()
                self.send_response_only(r.status, r.reason)
                for k, v in r.getheaders():
                    if k.lower() not in ("connection", "keep-alive", "transfer-encoding", "content-length"):
                        self.send_header(k, v)
                if self.command != "HEAD":
                    self.send_header("Content-Length", str(len(data)))
                else:
                    cl = r.getheader("Content-Length")
                    if cl is not None:
                        self.send_header("Content-Length", cl)
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)
                up.close()

            do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = _any

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        tc.addCleanup(self.stop)

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def recorded(self):
        with self._lock:
            return list(self.requests)
