"""SSE-C (customer-provided keys) through the real binary. s3rver ignores the SSE-C headers, so the
test puts a recording proxy between logship and s3rver and checks every HEAD and GET of an object
on the wire: the three x-amz-server-side-encryption-customer-* headers carry the configured key
(raw 32 bytes, or its base64 with a trailing newline), its MD5, AES256, all three are covered by
the SigV4 signature (recomputed here with the S3 secret), and the key is never in the log.
Listings carry no key. A key file that is not 256 bits is a config error (exit 2, file:line:col).
"""
import base64
import hashlib
import hmac
import os
import random
import re
import sys
import time
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(__file__))
import s3ec  # noqa: E402
from kmspeer import canonical_request, signature  # noqa: E402
from lib import run_logship, write_config  # noqa: E402
from s3lib import ACCOUNT, RecordingProxy, S3Server, ct_file, ct_key  # noqa: E402
from test_s3_source import DAY, NOW, Harness, by_id  # noqa: E402

SSE = "x-amz-server-side-encryption-customer-"
KEK = bytes(range(32))


def verify_s3_sigv4(req, secret="S3RVER"):
    """Recomputes the request's SigV4 signature (service s3): -> the list of signed headers."""
    h = req["headers"]
    auth = h["authorization"][0]
    params = dict(p.strip().split("=", 1) for p in auth.split(" ", 1)[1].split(","))
    signed = params["SignedHeaders"].split(";")
    _akid, _date, region, service, _ = params["Credential"].split("/")
    path, _, query = req["path"].partition("?")
    creq = canonical_request(req["method"], path, query, h, signed, h["x-amz-content-sha256"][0], s3=True)
    want = signature(secret, h["x-amz-date"][0], region, service, creq)
    if not hmac.compare_digest(want, params["Signature"]):
        raise AssertionError(f"bad signature on {req['method']} {req['path']}")
    return signed


class SseC(unittest.TestCase):
    def setUp(self):
        self.s3 = S3Server(self)
        self.proxy = RecordingProxy(self, self.s3.port)
        self.rnd = random.Random(5)

    def key_file(self, name, data):
        path = os.path.join(self.s3.tmp.path, name)
        with open(path, "wb") as f:
            f.write(data)
        os.chmod(path, 0o600)
        return path

    def test_every_head_and_get_carries_the_signed_customer_key(self):
        """Verifies the SSE-C headers (raw and base64 key files) on every HEAD/GET of an object, signed,
        with the records delivered once and the key absent from the log."""
        raw = os.urandom(32)
        other = os.urandom(32)
        plain_file = self.key_file("ssec.bin", raw)
        b64_file = self.key_file("ssec.b64", base64.b64encode(other) + b"\n")
        expect = {}
        for i in range(3):
            body, ids = ct_file(self.rnd, f"plain{i}", 25, NOW - 600)
            expect.update(ids)
            self.s3.put([(ct_key("us-east-1", DAY, f"010{i}", f"plain{i}"), body)])
        # A second source reads client-side encrypted objects (their envelope from the first GET)
        # under SSE-C too.
        body, ids = ct_file(self.rnd, "cse", 25, NOW - 600)
        expect.update(ids)
        enc = s3ec.encrypt_v2_aes_gcm(body, KEK)
        cse_key = ct_key("eu-west-1", DAY, "0200", "cse")
        self.s3.put([(cse_key, enc.body, None, enc.metadata)])
        kek = self.key_file("kek.bin", KEK)
        h = Harness(self, self.proxy, {
            "a": {"format": "cloudtrail", "prefix": f"AWSLogs/{ACCOUNT}/CloudTrail/us-east-1/",
                  "sse_c": {"key_file": plain_file}},
            "b": {"format": "cloudtrail", "prefix": f"AWSLogs/{ACCOUNT}/CloudTrail/eu-west-1/",
                  "sse_c": {"key_file": b64_file}, "client_side_encryption": {"kek_file": kek}},
        }, name="ssec")
        h.start()
        h.wait(lambda: set(by_id(h.events(), "eventID")) >= set(expect), 60, "every record")
        time.sleep(0.5)
        got = by_id(h.events(), "eventID")
        self.assertEqual(set(got), set(expect))
        self.assertEqual(max(got.values()), 1)
        h.stop()

        reqs = self.proxy.recorded()
        seen = {"HEAD": 0, "GET": 0}
        for r in reqs:
            path, _, query = r["path"].partition("?")
            key = urllib.parse.unquote(path.split("/", 2)[2]) if path.count("/") >= 2 else ""
            hdrs = r["headers"]
            signed = verify_s3_sigv4(r)
            if not key or "list-type" in query or r["method"] not in ("HEAD", "GET"):
                self.assertFalse([k for k in hdrs if k.startswith(SSE)], f"listing with a key: {r['path']}")
                continue
            want = raw if "/us-east-1/" in key else other
            seen[r["method"]] += 1
            self.assertEqual(hdrs.get(SSE + "algorithm"), ["AES256"], r["path"])
            self.assertEqual(hdrs.get(SSE + "key"), [base64.b64encode(want).decode()], r["path"])
            self.assertEqual(hdrs.get(SSE + "key-md5"),
                             [base64.b64encode(hashlib.md5(want).digest()).decode()], r["path"])
            for name in ("algorithm", "key", "key-md5"):
                self.assertIn(SSE + name, signed, f"{r['method']} {r['path']}: {SSE}{name} not signed")
        self.assertGreaterEqual(seen["GET"], 4, reqs)
        log = h.log()
        for k in (raw, other):
            self.assertNotIn(base64.b64encode(k).decode(), log)
            self.assertNotIn(base64.b64encode(hashlib.md5(k).digest()).decode(), log)

    def test_a_key_that_is_not_256_bits_is_a_config_error(self):
        """Verifies that a 31-byte key file, a base64 key of 16 bytes and a missing file are refused by
        `check` with exit 2 and the position of key_file."""
        cases = {
            "short.bin": (os.urandom(31), "256-bit key"),
            "short.b64": (base64.b64encode(os.urandom(16)) + b"\n", "256-bit key"),
        }
        for name, (data, text) in list(cases.items()) + [("missing.bin", (None, "cannot open"))]:
            with self.subTest(name=name):
                path = os.path.join(self.s3.tmp.path, name)
                if data is not None:
                    self.key_file(name, data)
                cfg_path = os.path.join(self.s3.tmp.path, f"{name}.yaml")
                write_config(cfg_path, {
                    "data_dir": os.path.join(self.s3.tmp.path, "data"),
                    "sources": {"a": {"type": "s3", "mode": "poll", "bucket": "logs", "endpoint": self.s3.endpoint,
                                      "region": "us-east-1", "format": "cloudtrail",
                                      "sse_c": {"key_file": path}}},
                    "sinks": {"out": {"type": "file", "inputs": ["a"],
                                      "path": os.path.join(self.s3.tmp.path, "o.jsonl")}}})
                r = run_logship("check", "-c", cfg_path)
                self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
                err = r.stdout + r.stderr
                with open(cfg_path) as f:
                    line_no = next(i for i, ln in enumerate(f, 1) if "key_file" in ln)
                self.assertRegex(err.strip(), "^" + re.escape(f"{cfg_path}:{line_no}:") + r"\d+: .*" + text)
                self.assertEqual(len(err.strip().splitlines()), 1, err)


if __name__ == "__main__":
    unittest.main()
