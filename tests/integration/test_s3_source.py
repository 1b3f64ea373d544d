"""The `s3` source (mode: poll) through the real binary against s3rver (S3 protocol) and
@20minutes/s3rver (SigV4 verification), objects uploaded with the official @aws-sdk/client-s3:
CloudTrail under the real key layout (digest files skipped), VPC flow v2 and custom formats (raw
and typed JSON), late objects sorting before handled keys, corrupt/invalid objects marked failed,
restart mid-bucket and mid-object, a wrong secret key, and a large object read in bounded memory.
"""
import collections
import gzip
import json
import os
import random
import sys
import time
import unittest
import zlib

sys.path.insert(0, os.path.dirname(__file__))
from lib import (SOURCE_DIR, Logship, TempDir, free_port, metric, read_jsonl, run_logship, wait_for,  # noqa: E402
                 write_config)
from s3lib import (ACCOUNT, S3Server, clean_aws_env, ct_digest_key, ct_file, ct_key, ndjson_lines,  # noqa: E402
                   vpc_custom_file, vpc_key, vpc_v2_file)

NOW = int(time.time())
DAY = tuple(time.gmtime(NOW)[:3])


class Harness:
    def __init__(self, tc, server, sources, sink=None, name="s3"):
        self.tc = tc
        self.tmp = TempDir(prefix=f"logship-{name}-")
        tc.addCleanup(self.tmp.cleanup)
        self.out = self.tmp.join("out.jsonl")
        self.admin_port = free_port()
        self.home = self.tmp.join("home")
        os.makedirs(self.home)
        srcs = {}
        for sid, s in sources.items():
            base = {"type": "s3", "mode": "poll", "bucket": "logs", "endpoint": server.endpoint,
                    "region": "us-east-1", "poll_interval": "300ms",
                    "credentials": {"access_key_id": "S3RVER", "secret_access_key": "S3RVER"}}
            base.update(s)
            srcs[sid] = base
        self.cfg = {
            "data_dir": self.tmp.join("data"),
            "admin": {"address": f"127.0.0.1:{self.admin_port}"},
            "sources": srcs,
            "sinks": {"out": sink or {"type": "file", "inputs": list(srcs), "path": self.out}},
        }
        self.cfg_path = write_config(self.tmp.join("logship.yaml"), self.cfg)
        self.proc = None
        self.runs = 0
        self.logs = []
        self.env = clean_aws_env(self.home)

    def start(self, env=None):
        self.runs += 1
        e = dict(self.env)
        if env:
            e.update(env)
        # clean_aws_env already removed AWS_*: pass the whole environment explicitly.
        self.proc = Logship(self.cfg_path, f"run{self.runs}")
        self.proc.env = e
        self.proc.start()
        p = self.proc
        self.tc.addCleanup(lambda: p.alive() and p.stop())
        wait_for(lambda: self.metric("logship_up") is not None or not p.alive(), 30, "admin endpoint")
        if not p.alive():
            self.tc.fail(f"logship exited at start:\n{p.log()[-3000:]}")
        return p

    def stop(self, kill=False):
        rc = self.proc.kill9() if kill else self.proc.stop()
        self.logs.append(self.proc.log())
        if not kill:
            self.tc.assertEqual(rc, 0, self.proc.log()[-3000:])

    def log(self):
        return "\n".join(self.logs + ([self.proc.log()] if self.proc and self.proc.alive() else []))

    def metric(self, name, **labels):
        return metric(self.admin_port, name, **labels)

    def wait(self, cond, timeout, what, interval=0.1):
        try:
            wait_for(cond, timeout, what, interval=interval)
        except AssertionError as e:
            per = collections.Counter(ev.get("source", "?").rsplit("/", 1)[-1] for ev in self.events())
            self.tc.fail(f"{e}\nevents per object: {dict(per)}\n--- logship log ---\n{self.log()[-4000:]}")

    def events(self):
        return read_jsonl(self.out) if os.path.exists(self.out) else []


def by_id(events, field):
    c = collections.Counter()
    for e in events:
        ev = e.get("event")
        if isinstance(ev, dict) and field in ev:
            c[ev[field]] += 1
    return c


class CloudTrailAndVpc(unittest.TestCase):
    def test_every_record_once_with_time_sourcetype_source(self):
        """CloudTrail files (real layout, pretty and compact, a digest file), VPC v2 with NODATA and
        SKIPDATA rows, a custom VPC format as typed JSON; then a late object whose key sorts before
        the handled ones, a corrupt gzip and invalid JSON (marked failed, pipeline continues)."""
        s3 = S3Server(self)
        rnd = random.Random(5)
        expect_ct = {}
        objs = []
        for i, stamp in enumerate(["0100", "0105", "0110", "0115"]):
            n = [50, 700, 2000, 1][i]
            body, ids = ct_file(rnd, f"f{i}", n, NOW - 3600 + i * 10, pretty=(i == 1))
            objs.append((ct_key("us-east-1", DAY, stamp, f"a{i}"), body))
            expect_ct.update(ids)
        body, ids = ct_file(rnd, "w", 30, NOW - 1800)
        objs.append((ct_key("eu-west-1", DAY, "0100", "w"), body))
        expect_ct.update(ids)
        # An Insights file under the same prefix: skipped unless key_include names it.
        insight, _ = ct_file(rnd, "insight", 5, NOW - 900)
        objs.append((f"AWSLogs/{ACCOUNT}/CloudTrail-Insight/us-east-1/{DAY[0]:04d}/{DAY[1]:02d}/{DAY[2]:02d}/"
                     f"{ACCOUNT}_CloudTrail-Insight_us-east-1_x.json.gz", insight))
        objs.append((ct_digest_key("us-east-1", DAY, "0100"),
                     gzip.compress(json.dumps({"awsAccountId": ACCOUNT, "digestStartTime": "x"}).encode())))
        objs.append((vpc_key(DAY, "0100", "v1"), gzip.compress(vpc_v2_file(0, 500, NOW - 3000, nodata=2, skipdata=3))))
        objs.append((vpc_key(DAY, "0105", "v2"), gzip.compress(vpc_v2_file(500, 300, NOW - 2000))))
        objs.append(("custom/" + vpc_key(DAY, "0100", "c1"), gzip.compress(vpc_custom_file(10_000, 200, NOW - 1000))))
        s3.put(objs)

        h = Harness(self, s3, {
            "ct": {"format": "cloudtrail", "prefix": f"AWSLogs/{ACCOUNT}/CloudTrail", "indexed_fields": ["eventName", "userIdentity.type", "readOnly"]},
            "ctdigest": {"format": "cloudtrail", "prefix": f"AWSLogs/{ACCOUNT}/CloudTrail-Digest/"},
            # `since` after every object: reads nothing (else every CloudTrail record would arrive twice)
            "ctsince": {"format": "cloudtrail", "prefix": f"AWSLogs/{ACCOUNT}/CloudTrail/",
                        "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(NOW + 3600))},
            "vpc": {"format": "vpcflow", "prefix": f"AWSLogs/{ACCOUNT}/vpcflowlogs/"},
            "vpcjson": {"format": "vpcflow", "prefix": "custom/", "vpcflow": {"emit": "json"}},
        })
        h.start()
        n_vpc = 500 + 5 + 300
        total = len(expect_ct) + n_vpc + 200
        h.wait(lambda: len(h.events()) >= total, 20, f"{total} events")

        evs = h.events()
        ct = [e for e in evs if e.get("sourcetype") == "aws:cloudtrail"]
        got = by_id(ct, "eventID")
        self.assertEqual(set(got), set(expect_ct))
        self.assertEqual(max(got.values()), 1, "a CloudTrail record arrived twice")
        for e in ct:
            self.assertAlmostEqual(e["time"], expect_ct[e["event"]["eventID"]], places=3)
            self.assertTrue(e["source"].startswith(f"s3://logs/AWSLogs/{ACCOUNT}/CloudTrail/"), e["source"])
            self.assertNotIn("CloudTrail-Digest", e["source"])
            self.assertNotIn("CloudTrail-Insight", e["source"])
            # indexed fields: string values only
            self.assertEqual(e["fields"]["eventName"], e["event"]["eventName"])
            self.assertEqual(e["fields"]["userIdentity.type"], "IAMUser")
            self.assertNotIn("readOnly", e["fields"])
        # the record text is the record as written (escapes and unicode intact)
        self.assertEqual(ct[0]["event"]["requestParameters"]["key"], "reports/{2026}/[q4] é ü.csv")

        vpc = [e for e in evs if e.get("sourcetype") == "aws:cloudwatchlogs:vpcflow" and isinstance(e["event"], str)]
        self.assertEqual(len(vpc), n_vpc)
        self.assertFalse([e for e in vpc if e["event"].startswith("version")], "the header was forwarded")
        rows = collections.Counter(int(e["event"].split()[9]) for e in vpc if e["event"].endswith(" OK"))
        self.assertEqual(set(rows), set(range(800)))
        self.assertEqual(max(rows.values()), 1)
        self.assertEqual(sum(1 for e in vpc if e["event"].endswith("NODATA")), 2)
        self.assertEqual(sum(1 for e in vpc if e["event"].endswith("SKIPDATA")), 3)
        first = next(e for e in vpc if e["event"].split()[9] == "0")
        self.assertEqual(first["time"], NOW - 3000)
        h.wait(lambda: h.metric("logship_s3_vpcflow_skipdata_rows_total", component_id="vpc") == 3, 10, "skipdata metric")

        js = [e for e in evs if isinstance(e.get("event"), dict) and "vpc-id" in e["event"]]
        self.assertEqual(len(js), 200)
        j0 = min(js, key=lambda e: e["event"]["bytes"])["event"]
        self.assertEqual(j0["bytes"], 10_000)
        self.assertEqual(j0["srcport"], 443)
        self.assertEqual(j0["vpc-id"], "vpc-0abc")
        self.assertEqual(j0["log-status"], "OK")

        # A late object whose key sorts before everything handled: still found (within lookback).
        body, late_ids = ct_file(rnd, "late", 40, NOW - 7200)
        # A corrupt gzip, and a CloudTrail file with invalid JSON after two good records.
        good2 = json.dumps({"Records": [{"eventID": "bad-0", "eventTime": "2026-01-01T00:00:00Z"},
                                        {"eventID": "bad-1", "eventTime": "2026-01-01T00:00:00Z"}]})
        invalid = good2[:-2] + ',{"eventID": "bad-2", oops}]}'
        gz = gzip.compress(b'{"Records":[' + b'{"eventID":"x"},' * 1000 + b'{}]}')
        corrupt = gz[:40] + bytes(b ^ 0x5A for b in gz[40:80]) + gz[80:]
        s3.put([(ct_key("us-east-1", DAY, "0000", "late"), body),
                (ct_key("us-east-1", DAY, "0001", "corrupt"), corrupt),
                (ct_key("us-east-1", DAY, "0002", "invalid"), gzip.compress(invalid.encode()))])
        h.wait(lambda: set(late_ids) <= set(by_id(h.events(), "eventID")), 30, "late object's records")
        h.wait(lambda: h.metric("logship_s3_objects_total", component_id="ct", status="failed") == 2, 30,
                 "two failed objects")
        # records emitted before the invalid one were delivered once; nothing after it
        got = by_id(h.events(), "eventID")
        self.assertEqual(got.get("bad-0"), 1)
        self.assertEqual(got.get("bad-1"), 1)
        self.assertNotIn("bad-2", got)
        log = h.proc.log()
        self.assertIn("_0001Z_corrupt.json.gz failed", log.replace("T0001Z", "_0001Z"))
        self.assertIn("invalid", log)
        # Restart: failed objects stay failed (final), nothing is read again.
        n_before = len(h.events())
        h.stop()
        with open(os.path.join(h.cfg["data_dir"], "checkpoints", "ct.json")) as f:
            state = json.loads(f.read().split("\n", 1)[0])  # the state, then an end marker line
        reasons = {f["key"].rsplit("_", 1)[-1]: f["reason"] for f in state["failed"]}
        self.assertIn("corrupt.json.gz", reasons)
        self.assertIn("invalid.json.gz", reasons)
        self.assertIn("gzip", reasons["corrupt.json.gz"])
        h.start()
        time.sleep(2.0)
        h.stop()
        self.assertEqual(len(h.events()), n_before, "objects were read again after a restart")
        self.assertIn(h.metric("logship_s3_objects_total", component_id="ct", status="failed"), (None, 0))


class Restart(unittest.TestCase):
    def test_restart_mid_bucket_and_mid_object(self):
        """SIGTERM while a large object and many small ones are being read, then a restart:
        every line arrives, none twice (finished records are never re-sent)."""
        s3 = S3Server(self)
        objs = []
        n_small = 40
        for i in range(n_small):
            objs.append((f"app/2026/small-{i:03d}.ndjson.gz", gzip.compress(ndjson_lines(i * 1000, 1000), 1)))
        big_n = 400_000
        objs.append(("app/2026/big.ndjson.gz", gzip.compress(ndjson_lines(1_000_000, big_n), 1)))
        s3.put(objs)
        h = Harness(self, s3, {"app": {"format": "ndjson", "prefix": "app/", "max_concurrent_objects": 2}})
        expected = set(range(n_small * 1000)) | set(range(1_000_000, 1_000_000 + big_n))
        size = lambda: os.path.getsize(h.out) if os.path.exists(h.out) else 0  # noqa: E731
        for attempt in range(3):  # three stops, each while the big object is being read
            h.start()
            target = (attempt + 1) * 4_000_000
            h.wait(lambda: size() > target, 60, f"output beyond {target} bytes", interval=0.02)
            h.stop()
        self.assertIn("resuming", "\n".join(h.logs))
        h.start()
        h.wait(lambda: len(h.events()) >= len(expected), 90, "every line")
        time.sleep(1.0)
        h.stop()
        c = collections.Counter(e["event"]["seq"] for e in h.events())
        self.assertEqual(set(c), expected)
        dups = {k: n for k, n in c.items() if n > 1}
        self.assertEqual(len(dups), 0, f"{len(dups)} lines re-sent after SIGTERM + restart")

    def test_large_object_bounded_memory(self):
        """A 1 GiB (decompressed) ndjson.gz object: every line arrives, peak RSS stays bounded."""
        s3 = S3Server(self)
        tmp = TempDir(prefix="logship-s3big-")
        self.addCleanup(tmp.cleanup)
        path = tmp.join("big.ndjson.gz")
        block = ndjson_lines(0, 8192, pad=100)  # ~ 1 MiB of lines
        reps = (1 << 30) // len(block) + 1
        comp = zlib.compressobj(1, zlib.DEFLATED, 31)
        with open(path, "wb") as f:
            for _ in range(reps):
                f.write(comp.compress(block))
            f.write(comp.flush())
        s3.put_file("big/one.ndjson.gz", path)
        h = Harness(self, s3, {"big": {"format": "ndjson", "prefix": "big/"}},
                    sink={"type": "blackhole", "inputs": ["big"]})
        h.start()
        lines = reps * 8192
        peak = 0

        def done():
            nonlocal peak
            try:
                with open(f"/proc/{h.proc.proc.pid}/status") as f:
                    for ln in f:
                        if ln.startswith("VmHWM:"):
                            peak = int(ln.split()[1]) // 1024
            except OSError:
                pass
            return (h.metric("logship_component_received_events_total", component_id="big") or 0) >= lines
        wait_for(done, 300, f"{lines} lines", interval=0.5)
        h.wait(lambda: h.metric("logship_s3_objects_total", component_id="big", status="done") == 1, 60, "object done")
        dec = h.metric("logship_s3_decompressed_bytes_total", component_id="big")
        print(f"1 GiB object: {lines} lines, {dec / 2**20:.0f} MiB decompressed, peak RSS {peak} MiB")
        self.assertGreaterEqual(dec, 1 << 30)
        self.assertLess(peak, 200, "memory grew with the object")
        h.stop()


class CuttingProxy:
    """A TCP proxy to the S3 server that cuts the connection in the middle of the response body
    of the first GET of a chosen byte range (a dropped connection), and records every GET."""

    def __init__(self, tc, upstream_port, cut_range_prefix, deny=None):
        import socket
        import threading
        self.upstream = upstream_port
        self.cut = cut_range_prefix
        self.deny = deny  # GETs of paths containing this answer 403 AccessDenied while set
        self.cut_done = False
        self.gets = []
        self.lock = threading.Lock()
        self.srv = socket.socket()
        self.srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(64)
        self.port = self.srv.getsockname()[1]
        self.stopped = False
        threading.Thread(target=self.accept, daemon=True).start()
        tc.addCleanup(self.stop)

    def stop(self):
        self.stopped = True
        self.srv.close()

    def accept(self):
        import threading
        while not self.stopped:
            try:
                c, _ = self.srv.accept()
            except OSError:
                return
            threading.Thread(target=self.serve, args=(c,), daemon=True).start()

    def serve(self, c):
        import socket
        try:
            buf = b""
            while b"\r\n\r\n" not in buf:
                d = c.recv(65536)
                if not d:
                    return
                buf += d
            head = buf.split(b"\r\n\r\n", 1)[0].decode("latin-1")
            lines = head.split("\r\n")
            hdrs = {ln.split(":", 1)[0].lower(): ln.split(":", 1)[1].strip() for ln in lines[1:] if ":" in ln}
            if self.deny and lines[0].startswith("GET ") and self.deny in lines[0]:
                body = (b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code>'
                        b'<Message>Access Denied</Message><RequestId>R1</RequestId></Error>')
                c.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Type: application/xml\r\nContent-Length: "
                          + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body)
                return
            req = "\r\n".join([lines[0]] + [ln for ln in lines[1:] if not ln.lower().startswith("connection:")]
                               + ["Connection: close"]) + "\r\n\r\n"
            u = socket.create_connection(("127.0.0.1", self.upstream))
            u.sendall(req.encode("latin-1"))
            resp = b""
            while True:
                d = u.recv(1 << 20)
                if not d:
                    break
                resp += d
            u.close()
            rng = hdrs.get("range", "")
            cut = False
            if lines[0].startswith("GET ") and rng:
                with self.lock:
                    self.gets.append((rng, hdrs.get("if-match", "")))
                    if rng.startswith(self.cut) and not self.cut_done:
                        self.cut_done = cut = True
            if cut:
                hend = resp.index(b"\r\n\r\n") + 4
                c.sendall(resp[: hend + (len(resp) - hend) // 2])  # headers + half of the body
            else:
                c.sendall(resp)
        except OSError:
            pass
        finally:
            c.close()


class Faults(unittest.TestCase):
    def test_dropped_connection_resumes_the_range_pinned_to_the_etag(self):
        """The connection drops in the middle of the second 4 MiB range: the same range is asked
        again with If-Match: <ETag>, and every line arrives once."""
        s3 = S3Server(self)
        rnd = random.Random(3)
        lines = "".join(json.dumps({"seq": i, "r": "%032x" % rnd.getrandbits(128)}) + "\n" for i in range(450_000))
        body = gzip.compress(lines.encode(), 1)
        self.assertGreater(len(body), 9 << 20)
        s3.put([("cut/one.ndjson.gz", body)])
        proxy = CuttingProxy(self, s3.port, "bytes=4194304-")
        h = Harness(self, s3, {"cut": {"format": "ndjson", "prefix": "cut/",
                                       "endpoint": f"http://127.0.0.1:{proxy.port}"}})
        h.start()
        h.wait(lambda: len(h.events()) >= 450_000, 60, "every line")
        h.stop()
        c = collections.Counter(e["event"]["seq"] for e in h.events())
        self.assertEqual(set(c), set(range(450_000)))
        self.assertEqual(max(c.values()), 1)
        self.assertTrue(proxy.cut_done)
        second = [g for g in proxy.gets if g[0].startswith("bytes=4194304-")]
        self.assertEqual(len(second), 2, proxy.gets)
        etag = second[0][1]
        self.assertTrue(etag.startswith('"') and len(etag) > 2, proxy.gets)
        self.assertTrue(all(g[1] == etag for g in proxy.gets), proxy.gets)


    def test_access_denied_on_get_is_explained_and_retried_at_the_next_poll(self):
        """An SSE-KMS object without kms:Decrypt answers 403 AccessDenied on GET: the log names
        bucket and key and the missing permission; the object is not failed, and is read once the
        permission is there."""
        s3 = S3Server(self)
        body, ids = ct_file(random.Random(2), "kms", 25, NOW - 600)
        key = ct_key("us-east-1", DAY, "0100", "kms")
        s3.put([(key, body)])
        proxy = CuttingProxy(self, s3.port, "none", deny="_kms.json.gz")
        h = Harness(self, s3, {"ct": {"format": "cloudtrail", "prefix": "AWSLogs/",
                                      "endpoint": f"http://127.0.0.1:{proxy.port}"}})
        h.start()
        h.wait(lambda: "AccessDenied" in h.proc.log(), 20, "AccessDenied logged")
        time.sleep(1.0)  # a few polls: logged once, not failed
        log = h.proc.log()
        self.assertIn(f"reading s3://logs/{key}: HTTP 403 AccessDenied", log)
        self.assertIn("kms:Decrypt", log)
        self.assertEqual(log.count("AccessDenied"), 1, "logged more than once")
        self.assertIn(h.metric("logship_s3_objects_total", component_id="ct", status="failed"), (None, 0))
        self.assertEqual(h.events(), [])
        proxy.deny = None  # the permission was granted
        h.wait(lambda: len(h.events()) >= 25, 20, "records after the permission was granted")
        h.stop()
        self.assertEqual(set(by_id(h.events(), "eventID")), set(ids))


class Signatures(unittest.TestCase):
    def test_wrong_secret_key_is_a_clear_error_and_right_one_works(self):
        """@20minutes/s3rver verifies SigV4: a wrong secret gives an error naming bucket and key;
        credentials from the environment (the default chain) sign correctly."""
        s3 = S3Server(self, signed=True)
        body, ids = ct_file(random.Random(1), "sig", 20, NOW - 600)
        key = ct_key("us-east-1", DAY, "0100", "sig")
        s3.put([(key, body)])
        h = Harness(self, s3, {"ct": {"format": "cloudtrail", "prefix": "AWSLogs/",
                                      "credentials": {"access_key_id": "S3RVER", "secret_access_key": "WRONG"}}})
        h.start()
        h.wait(lambda: "SignatureDoesNotMatch" in h.proc.log() or "403" in h.proc.log(), 20, "signature error")
        h.stop()
        log = h.logs[-1]
        self.assertIn("listing s3://logs/AWSLogs/: HTTP 403 SignatureDoesNotMatch", log)
        self.assertIn("check the access key id and secret access key", log)
        self.assertNotIn("WRONG", log)
        self.assertEqual(h.events(), [])
        # The default chain, from the environment.
        del h.cfg["sources"]["ct"]["credentials"]
        write_config(h.cfg_path, h.cfg)
        h.start(env={"AWS_ACCESS_KEY_ID": "S3RVER", "AWS_SECRET_ACCESS_KEY": "S3RVER"})
        h.wait(lambda: len(h.events()) >= 20, 30, "records signed with environment credentials")
        h.stop()
        self.assertEqual(set(by_id(h.events(), "eventID")), set(ids))
        self.assertIn("AWS credentials from environment", h.logs[-1])


class Config(unittest.TestCase):
    def test_examples_are_valid_and_bad_keys_are_precise_errors(self):
        """conf/examples/{cloudtrail-s3,cloudtrail-sqs,vpcflow-s3}.yaml pass `logship check`; bad s3 settings exit 2
        with file:line:col."""
        tmp = TempDir(prefix="logship-s3cfg-")
        self.addCleanup(tmp.cleanup)
        token = tmp.join("token")
        with open(token, "w") as f:
            f.write("t\n")
        os.chmod(token, 0o600)
        for name in ("cloudtrail-s3", "cloudtrail-sqs", "vpcflow-s3"):
            with open(os.path.join(SOURCE_DIR, "conf", "examples", name + ".yaml")) as f:
                text = f.read().replace("/etc/logship/hec-token", token).replace("/var/lib/logship", tmp.join("d"))
            path = tmp.join(name + ".yaml")
            with open(path, "w") as f:
                f.write(text)
            r = run_logship("check", "-c", path)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        base = "sources:\n  s:\n    type: s3\n"
        sink = "sinks:\n  o:\n    type: blackhole\n    inputs: [s]\n"
        cases = [
            ("    mode: sqs\n    bucket: b\n    format: cloudtrail\n", ":4:5: missing required key queue_url"),
            ("    mode: sqs\n    queue_url: sqs/q\n    format: cloudtrail\n", ":6:16: queue_url must be the queue's URL"),
            ("    mode: sqs\n    queue_url: http://127.0.0.1:1/1/q\n    format: cloudtrail\n    visibility_timeout: 1s\n",
             ":8:25: visibility_timeout must be between 10s and 12h"),
            ("    mode: sqs\n    queue_url: http://127.0.0.1:1/1/q\n    format: cloudtrail\n    sqs:\n      wait_time: 30s\n",
             ":9:18: wait_time must be between 0s and 20s"),
            ("    mode: sqs\n    queue_url: http://127.0.0.1:1/1/q\n    format: cloudtrail\n    sqs:\n      max_messages: 11\n",
             ":9:21:"),
            ("    mode: poll\n    bucket: b\n    format: cloudtrail\n    queue_url: http://x/1/q\n",
             ":8:16: queue_url is only used with mode: sqs"),
            ("    mode: poll\n    bucket: b\n    format: cloudtrail\n    sqs:\n      max_messages: 5\n",
             "sqs is only used with mode: sqs"),
            ("    mode: poll\n    format: cloudtrail\n", "bucket"),
            ("    mode: poll\n    bucket: b\n    format: xml\n", ":7:13:"),
            ("    mode: poll\n    bucket: b\n    format: vpcflow\n    indexed_fields: [a]\n",
             ":8:21: indexed_fields applies to format: cloudtrail"),
            ("    mode: poll\n    bucket: b\n    format: lines\n    since: yesterday\n", ":8:12: since must be"),
            ("    mode: poll\n    bucket: b\n    format: lines\n    lookback: 1s\n", ":8:15: lookback"),
            ("    mode: poll\n    bucket: b\n    format: lines\n    credentials: {access_key_id: A}\n",
             "access_key_id and secret_access_key go together"),
            ("    mode: poll\n    bucket: b\n    format: lines\n    colour: red\n", ":8:5:"),
        ]
        for body, want in cases:
            path = tmp.join("bad.yaml")
            with open(path, "w") as f:
                f.write(f"data_dir: {tmp.join('d')}\n" + base + body + sink)
            r = run_logship("check", "-c", path)
            self.assertEqual(r.returncode, 2, f"{body}: {r.stderr}")
            self.assertIn(want, r.stderr, body)
            self.assertEqual(len(r.stderr.strip().splitlines()), 1, r.stderr)


if __name__ == "__main__":
    unittest.main()
