"""Self-tests of the S3 Encryption Client test peers (kmspeer.py, s3ec.py, s3ec_ruby.rb): the KMS server's
SigV4 check and errors, round trips and tamper refusals of every format through the reference decryptor,
a known-answer v3 object from the official Go client's tests, and a cross-check with the official AWS
SDK for Ruby (Debian's ruby-aws-sdk-s3 / ruby-aws-sdk-kms) in both directions. No logship binary needed.
Runs in a few seconds; nothing is skipped (a missing Ruby SDK fails the Ruby tests)."""
import base64
import json
import os
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import kmspeer  # noqa: E402
import s3ec  # noqa: E402
from kmspeer import KmsClient, KmsError, KmsPeer  # noqa: E402
from s3ec import S3ECError  # noqa: E402

PLAIN = b"".join(b'{"seq":%d,"msg":"caf\xc3\xa9 \\"q\\" line"}\n' % i for i in range(40))
SIZES = (0, 1, 15, 16, 17, 4096 + 3)


def b64(b):
    return base64.b64encode(b).decode()


def start_peer(tc, **kw):
    peer = KmsPeer(**kw).start()
    tc.addCleanup(peer.stop)
    return peer


class KmsPeerTest(unittest.TestCase):
    def setUp(self):
        self.peer = start_peer(self, keys=["key-a", "key-b"], aliases={"alias/logs": "key-a"})
        self.client = KmsClient(self.peer.url)

    def err(self, fn, *a, **kw):
        with self.assertRaises(KmsError) as cm:
            fn(*a, **kw)
        return cm.exception

    def test_signer_matches_the_aws_test_suite(self):
        # get-vanilla of the AWS SigV4 test suite (AWS.md §1).
        h = kmspeer.sign_headers("GET", "example.amazonaws.com", "/", "", {}, b"", "AKIDEXAMPLE",
                                 "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "us-east-1", "service", "20150830T123600Z")
        self.assertTrue(h["Authorization"].endswith(
            "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"), h["Authorization"])
        self.assertEqual(kmspeer.canonical_uri("/a/./b/../c//d%20e"), "/a/c/d%2520e")
        self.assertEqual(kmspeer.canonical_query("b=2&a=x%20y&a=1"), "a=1&a=x%20y&b=2")

    def test_signed_round_trip_and_log(self):
        dk, blob = self.client.generate_data_key("key-a", {"purpose": "buffer"})
        self.assertEqual(len(dk), 32)
        self.assertTrue(blob.startswith(kmspeer.BLOB_MAGIC))
        self.assertEqual(self.client.decrypt(blob, {"purpose": "buffer"}), dk)
        self.assertEqual(self.client.decrypt(blob, {"purpose": "buffer"}, self.peer.key_arn("key-a")), dk)
        blob2 = self.client.encrypt("alias/logs", b"secret", {})
        self.assertEqual(self.client.decrypt(blob2), b"secret")          # absent context == empty context
        self.assertEqual(self.peer.counts, {"GenerateDataKey": 1, "Decrypt": 3, "Encrypt": 1})
        self.assertTrue(all(e["signature_ok"] and e["status"] == 200 for e in self.peer.log))
        first = self.peer.log[0]
        self.assertEqual((first["target"], first["key_id"], first["context"], first["region"], first["key"]),
                         ("TrentService.GenerateDataKey", "key-a", {"purpose": "buffer"}, "us-east-1",
                          "arn:aws:kms:us-east-1:123456789012:key/key-a"))
        status, ans = self.client.call("Decrypt", {"CiphertextBlob": b64(blob), "EncryptionContext": {"purpose": "buffer"}})
        self.assertEqual((status, ans["KeyId"], ans["EncryptionAlgorithm"], base64.b64decode(ans["Plaintext"])),
                         (200, self.peer.key_arn("key-a"), "SYMMETRIC_DEFAULT", dk))

    def test_bad_signatures_are_refused(self):
        _, blob = self.peer.generate_data_key("key-a")
        cases = [
            (KmsClient(self.peer.url, secret="wrong"), "InvalidSignatureException"),
            (KmsClient(self.peer.url, access_key="AKIDUNKNOWN"), "UnrecognizedClientException"),
            (KmsClient(self.peer.url, session_token="not-expected"), "UnrecognizedClientException"),
        ]
        for client, want in cases:
            e = self.err(client.decrypt, blob)
            self.assertEqual((e.status, e.type), (400, want))
        status, ans = self.client.call("Decrypt", {"CiphertextBlob": b64(blob)}, sign=False)
        self.assertEqual((status, ans["__type"], ans["message"]),
                         (400, "MissingAuthenticationTokenException", "Missing Authentication Token"))
        status, ans = self.client.call("Decrypt", {"CiphertextBlob": b64(blob)},
                                       extra_headers={"Authorization": "AWS4-HMAC-SHA256 Credential=x"})
        self.assertEqual(ans["__type"], "IncompleteSignatureException")
        # A signed request whose target header is changed afterwards.
        status, ans = self.client.call("Decrypt", {"CiphertextBlob": b64(blob)},
                                       extra_headers={"X-Amz-Target": "TrentService.Encrypt"})
        self.assertEqual(ans["__type"], "InvalidSignatureException")
        # Scoped to another service.
        u = self.peer.url.split("//")[1]
        body = json.dumps({"CiphertextBlob": b64(blob)}).encode()
        h = kmspeer.sign_headers("POST", u, "/", "", {"Content-Type": kmspeer.JSON_CT, "X-Amz-Target": "TrentService.Decrypt"},
                                 body, self.peer.access_key, self.peer.secret, "us-east-1", "s3")
        import http.client
        conn = http.client.HTTPConnection("127.0.0.1", self.peer.port, timeout=5)
        conn.request("POST", "/", body=body + b" ", headers=h)   # and a body that is not the signed one
        r = conn.getresponse()
        self.assertEqual((r.status, json.loads(r.read())["__type"]), (400, "InvalidSignatureException"))
        conn.close()
        self.assertEqual(self.peer.ok_counts["Decrypt"], 0)
        self.assertFalse(any(e["signature_ok"] for e in self.peer.log))

    def test_session_token_must_be_signed(self):
        peer = start_peer(self, keys=["k"], session_token="tok/en+1")
        _, blob = peer.generate_data_key("k")
        self.assertEqual(len(KmsClient(peer.url, session_token="tok/en+1").decrypt(blob)), 32)
        self.assertEqual(peer.log[-1]["session_token"], "tok/en+1")
        self.assertEqual(self.err(KmsClient(peer.url).decrypt, blob).type, "UnrecognizedClientException")
        self.assertEqual(self.err(KmsClient(peer.url, session_token="other").decrypt, blob).type,
                         "UnrecognizedClientException")
        # The right token added after signing (so not in SignedHeaders).
        status, ans = KmsClient(peer.url).call("Decrypt", {"CiphertextBlob": b64(blob)},
                                               extra_headers={"X-Amz-Security-Token": "tok/en+1"})
        self.assertEqual(ans["__type"], "InvalidSignatureException")

    def test_clock_skew(self):
        _, blob = self.peer.generate_data_key("key-a")
        stamp = lambda off: time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(time.time() + off))  # noqa: E731
        self.assertEqual(len(KmsClient(self.peer.url, amz_date=stamp(-600)).decrypt(blob)), 32)   # 10 min: fine
        e = self.err(KmsClient(self.peer.url, amz_date=stamp(-1200)).decrypt, blob)
        self.assertEqual(e.type, "InvalidSignatureException")
        self.assertIn("Signature expired", e.message)
        e = self.err(KmsClient(self.peer.url, amz_date=stamp(1200)).decrypt, blob)
        self.assertIn("Signature not yet current", e.message)
        # A server whose clock is 20 min ahead: refuses now-signed requests; its Date header shows its clock.
        ahead = start_peer(self, keys=["k"], clock_offset_s=1200)
        _, blob = ahead.generate_data_key("k")
        self.assertIn("Signature expired", self.err(KmsClient(ahead.url).decrypt, blob).message)
        import email.utils
        import urllib.request
        req = urllib.request.Request(ahead.url, data=b"{}", method="POST")
        try:
            urllib.request.urlopen(req, timeout=5)
        except urllib.error.HTTPError as he:
            server_now = email.utils.parsedate_to_datetime(he.headers["Date"]).timestamp()
        self.assertAlmostEqual(server_now, time.time() + 1200, delta=5)
        self.assertEqual(len(KmsClient(ahead.url, amz_date=stamp(1200)).decrypt(blob)), 32)

    def test_ciphertext_errors(self):
        _, blob = self.peer.generate_data_key("key-a", {"a": "1"})
        self.assertEqual(self.err(self.client.decrypt, blob, {"a": "2"}).type, "InvalidCiphertextException")
        self.assertEqual(self.err(self.client.decrypt, blob, {}).type, "InvalidCiphertextException")
        self.assertEqual(self.err(self.client.decrypt, blob, {"a": "1"}, "key-b").type, "IncorrectKeyException")
        self.assertEqual(self.err(self.client.decrypt, blob, {"a": "1"}, "key-zzz").type, "NotFoundException")
        self.assertEqual(self.err(self.client.generate_data_key, "key-zzz").type, "NotFoundException")
        broken = bytearray(blob)
        broken[-1] ^= 1
        self.assertEqual(self.err(self.client.decrypt, bytes(broken), {"a": "1"}).type, "InvalidCiphertextException")
        self.assertEqual(self.err(self.client.decrypt, b"garbage", {"a": "1"}).type, "InvalidCiphertextException")
        # The direct Python API raises the same errors.
        self.assertEqual(self.err(self.peer.decrypt, blob, {"a": "2"}).type, "InvalidCiphertextException")

    def test_access_denied_and_disabled(self):
        _, blob = self.peer.generate_data_key("key-a")
        self.peer.deny("key-a")
        e = self.err(self.client.decrypt, blob)
        self.assertEqual((e.status, e.type), (400, "AccessDeniedException"))
        arn = self.peer.key_arn("key-a")
        self.assertEqual(e.message, f"User: arn:aws:iam::123456789012:user/test is not authorized to perform: "
                                    f"kms:Decrypt on resource: {arn} because no identity-based policy allows the "
                                    f"kms:Decrypt action")
        self.assertEqual(self.err(self.client.generate_data_key, "key-a").type, "AccessDeniedException")
        self.assertEqual(len(self.client.generate_data_key("key-b")[0]), 32)        # other keys unaffected
        self.peer.allow("key-a")
        self.assertEqual(len(self.client.decrypt(blob)), 32)
        self.peer.disable("key-a")
        self.assertEqual(self.err(self.client.decrypt, blob).type, "KMSInvalidStateException")

    def test_throttling_then_success(self):
        _, blob = self.peer.generate_data_key("key-a")
        self.peer.throttle(2)
        for _ in range(2):
            e = self.err(self.client.decrypt, blob)
            self.assertEqual((e.status, e.type, e.message), (400, "ThrottlingException", "Rate exceeded"))
        self.assertEqual(len(self.client.decrypt(blob)), 32)
        self.assertEqual((self.peer.counts["Decrypt"], self.peer.ok_counts["Decrypt"]), (3, 1))
        self.assertEqual([e["error"] for e in self.peer.log], ["ThrottlingException", "ThrottlingException", None])
        self.peer.inject(1, "KMSInternalException", "", 500)
        self.assertEqual(self.err(self.client.decrypt, blob).status, 500)

    def test_registered_blob(self):
        blob, dk = b"\x01\x02foreign-blob", os.urandom(32)
        self.peer.register_blob(blob, dk, "key-b", {"aws:x-amz-cek-alg": "AES/GCM/NoPadding"})
        self.assertEqual(self.client.decrypt(blob, {"aws:x-amz-cek-alg": "AES/GCM/NoPadding"}), dk)
        self.assertEqual(self.peer.log[-1]["key"], self.peer.key_arn("key-b"))
        self.assertEqual(self.err(self.client.decrypt, blob, {}).type, "InvalidCiphertextException")
        self.assertEqual(self.err(self.client.decrypt, blob, {"aws:x-amz-cek-alg": "AES/GCM/NoPadding"},
                                  "key-a").type, "IncorrectKeyException")
        self.peer.deny("key-b")
        self.assertEqual(self.err(self.client.decrypt, blob, {"aws:x-amz-cek-alg": "AES/GCM/NoPadding"}).type,
                         "AccessDeniedException")

    def test_protocol_errors(self):
        status, ans = self.client.call("Frobnicate", {})
        self.assertEqual((status, ans["__type"]), (400, "UnknownOperationException"))
        status, ans = self.client.call("Decrypt", {"CiphertextBlob": "AAAA", "EncryptionContext": {"a": 1}})
        self.assertEqual(ans["__type"], "SerializationException")

    def test_runs_as_a_process(self):
        master = os.urandom(32)
        proc = subprocess.Popen([sys.executable, kmspeer.__file__, "--port", "0", "--keys", f"p1={master.hex()},p2"],
                                stdout=subprocess.PIPE, text=True)
        self.addCleanup(lambda: (proc.poll() is None and proc.terminate(), proc.wait(10), proc.stdout.close()))
        info = json.loads(proc.stdout.readline())
        self.assertEqual(info["keys"]["arn:aws:kms:us-east-1:123456789012:key/p1"], master.hex())
        c = KmsClient(info["url"])
        dk, blob = c.generate_data_key("p1", {"x": "y"})
        self.assertEqual(c.decrypt(blob, {"x": "y"}), dk)
        # Its blobs can be opened offline with the printed master key (same format).
        offline = KmsPeer(keys={"p1": master})
        self.assertEqual(offline.decrypt(blob, {"x": "y"}), dk)
        proc.terminate()
        self.assertEqual(proc.wait(10), 0)


def all_formats(kms, kek, instruction_file=False, plaintext=PLAIN, context=None):
    """name -> Encrypted for every format this suite writes."""
    ctx = context if context is not None else {"purpose": "logs"}
    return {
        "v1-kms": s3ec.encrypt_v1_kms(plaintext, kms, "key-a", instruction_file=instruction_file),
        "v1-kms-keyv2": s3ec.encrypt_v1_kms(plaintext, kms, "key-a", key_field="x-amz-key-v2",
                                            instruction_file=instruction_file),
        "v2-kms+context": s3ec.encrypt_v2_kms_context(plaintext, kms, "key-a", context=ctx,
                                                      instruction_file=instruction_file),
        "v2-aes-gcm": s3ec.encrypt_v2_aes_gcm(plaintext, kek, instruction_file=instruction_file),
        "v3-02": s3ec.encrypt_v3_aes_gcm(plaintext, kek, instruction_file=instruction_file),
        "v3-02-matdesc": s3ec.encrypt_v3_aes_gcm(plaintext, kek, matdesc={"kek": "one"},
                                                 instruction_file=instruction_file),
        "v3-12": s3ec.encrypt_v3_kms_context(plaintext, kms, "key-a", context=ctx, instruction_file=instruction_file),
    }


class S3ECFormatTest(unittest.TestCase):
    def setUp(self):
        self.peer = start_peer(self, keys=["key-a", "key-b"])
        self.kek = os.urandom(32)

    def dec(self, enc, **kw):
        kw.setdefault("kms", self.peer)
        kw.setdefault("kek", self.kek)
        return s3ec.decrypt(enc, **kw)

    def refused(self, enc, reason, **kw):
        with self.assertRaises(S3ECError) as cm:
            self.dec(enc, **kw)
        self.assertEqual(cm.exception.reason, reason, str(cm.exception))

    def test_round_trips(self):
        for inst in (False, True):
            for size in SIZES:
                pt = os.urandom(size)
                for name, enc in all_formats(self.peer, self.kek, inst, pt).items():
                    with self.subTest(fmt=name, instruction_file=inst, size=size):
                        self.assertEqual(self.dec(enc), pt)
                        if inst:
                            self.assertIsNotNone(enc.instruction)
                            self.assertEqual(json.loads(enc.instruction_body), enc.instruction)

    def test_round_trip_through_signed_http_kms(self):
        client = KmsClient(self.peer.url)
        for name, enc in all_formats(client, self.kek).items():
            with self.subTest(fmt=name):
                self.assertEqual(self.dec(enc, kms=client), PLAIN)
        self.assertTrue(all(e["signature_ok"] and e["status"] == 200 for e in self.peer.log))
        self.assertEqual(self.peer.ok_counts["Decrypt"], 4)

    def test_metadata_layout(self):
        f = all_formats(self.peer, self.kek)
        self.assertEqual(set(f["v1-kms"].metadata), {"x-amz-key", "x-amz-iv", "x-amz-matdesc", "x-amz-wrap-alg",
                                                     "x-amz-unencrypted-content-length"})
        self.assertEqual(f["v1-kms"].metadata["x-amz-matdesc"], '{"kms_cmk_id":"key-a"}')
        v2 = f["v2-kms+context"].metadata
        self.assertEqual(json.loads(v2["x-amz-matdesc"]), {"purpose": "logs", "aws:x-amz-cek-alg": "AES/GCM/NoPadding"})
        self.assertEqual((v2["x-amz-cek-alg"], v2["x-amz-tag-len"], v2["x-amz-wrap-alg"]),
                         ("AES/GCM/NoPadding", "128", "kms+context"))
        self.assertEqual(len(base64.b64decode(v2["x-amz-iv"])), 12)
        self.assertEqual(len(base64.b64decode(f["v2-aes-gcm"].metadata["x-amz-key-v2"])), 12 + 32 + 16)
        v3 = f["v3-12"].metadata
        self.assertEqual(set(v3), {"x-amz-c", "x-amz-3", "x-amz-w", "x-amz-i", "x-amz-d", "x-amz-t"})
        self.assertEqual((v3["x-amz-c"], v3["x-amz-w"]), ("115", "12"))
        self.assertEqual(json.loads(v3["x-amz-t"]), {"purpose": "logs", "aws:x-amz-cek-alg": "115"})
        self.assertEqual([len(base64.b64decode(v3[k])) for k in ("x-amz-i", "x-amz-d")], [28, 28])
        self.assertEqual(set(f["v3-02"].metadata), {"x-amz-c", "x-amz-3", "x-amz-w", "x-amz-i", "x-amz-d"})
        self.assertEqual(f["v3-02-matdesc"].metadata["x-amz-m"], '{"kek":"one"}')
        i3 = all_formats(self.peer, self.kek, instruction_file=True)
        self.assertEqual(set(i3["v3-12"].metadata), {"x-amz-c", "x-amz-i", "x-amz-d"})
        self.assertEqual(set(i3["v3-12"].instruction), {"x-amz-3", "x-amz-w", "x-amz-t"})
        self.assertEqual(set(i3["v3-02-matdesc"].instruction), {"x-amz-3", "x-amz-w", "x-amz-m"})
        self.assertEqual(set(i3["v2-aes-gcm"].metadata), {"x-amz-unencrypted-content-length"})
        # v3 content key derivation, recomputed from the spec text with the primitives.
        enc = f["v3-02"]
        mid = base64.b64decode(enc.metadata["x-amz-i"])
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM
        from cryptography.hazmat.primitives.kdf.hkdf import HKDF
        dek = HKDF(hashes.SHA512(), 32, mid, b"\x00\x73DERIVEKEY").derive(enc.data_key)
        ck = HKDF(hashes.SHA512(), 28, mid, b"\x00\x73COMMITKEY").derive(enc.data_key)
        self.assertEqual(base64.b64decode(enc.metadata["x-amz-d"]), ck)
        self.assertEqual(AESGCM(dek).decrypt(b"\x01" * 12, enc.body, b"\x00\x73"), PLAIN)
        wrapped = base64.b64decode(enc.metadata["x-amz-3"])
        self.assertEqual(AESGCM(self.kek).decrypt(wrapped[:12], wrapped[12:], b"115"), enc.data_key)

    def test_go_client_v3_vector(self):
        # TestDecryptionClientV4_GetMockV3Object of aws/amazon-s3-encryption-client-go (v4/client/
        # decryption_client_v4_test.go): a v3 kms+context object and the data key its mock KMS returns.
        meta = {"x-amz-3": "8gSzlk7giyfFbLPUVgoVjvQebI1827jp8lDkO+n2chsiSoegx1sjm8NdPk0Bl70I", "x-amz-c": "115",
                "x-amz-d": "6JOSx47RkdyfciJkNauuC4RpkMcWZY4a+i1RzQ==", "x-amz-i": "sE9zLb4tsEBJkvEhLMZFxMj9oZJBbQ6ZOgOqHA==",
                "x-amz-t": '{"aws:x-amz-cek-alg":"115"}', "x-amz-w": "12"}
        body = bytes.fromhex("2d4ff4dafe27f69f628872d82b5a1002ed1a21b8485d532bd8159f6487945b3641af5865fc0a029a365005"
                             "3600c6d213625b9a0cc9c239577c09f3423dedc5641e88b6835824417c")
        self.peer.register_blob(base64.b64decode(meta["x-amz-3"]),
                                base64.b64decode("lP6AbIQTmptyb/+WQq+ubDw+w7na0T1LGSByZGuaono="), "key-b",
                                {"aws:x-amz-cek-alg": "115"})
        want = bytes.fromhex("8f2c59c6dbfcacf356f3da40788cbde67ca38161a4702cbcf757af663e1c24a600001b2f500417dbf5a050"
                             "f57db6737422b2ed6a44c75e0d")
        self.assertEqual(s3ec.decrypt_object(body, meta, kms=self.peer, expected_context={}), want)
        bad = dict(meta, **{"x-amz-d": "FiQepGw+/O+3MuYrmQU5mAkotUnxB+W+EwYDHw=="})   # the Go test's wrong commitment
        with self.assertRaises(S3ECError) as cm:
            s3ec.decrypt_object(body, bad, kms=self.peer)
        self.assertEqual(cm.exception.reason, "commitment")

    def test_gcm_tampering_is_refused(self):
        for inst in (False, True):
            f = all_formats(self.peer, self.kek, inst)
            for name in ("v2-kms+context", "v2-aes-gcm", "v3-02", "v3-12"):
                enc = f[name]
                with self.subTest(fmt=name, instruction_file=inst):
                    for where in ("start", "middle", "end"):
                        self.refused(s3ec.flip_ciphertext(enc, where), "tag")
                    self.refused(s3ec.flip_tag(enc), "tag")
                    self.refused(s3ec.flip_tag(enc, 15), "tag")
                    self.refused(s3ec.truncate(enc), "tag")
                    self.refused(enc.copy(body=enc.body + b"\x00"), "tag")
                    if name.startswith("v2"):
                        self.refused(s3ec.wrong_iv(enc), "tag")
                    if name.endswith("12") or name == "v2-kms+context":
                        self.refused(s3ec.alter_context(enc), "kms:InvalidCiphertextException")
                        self.refused(s3ec.alter_context(enc, "purpose", "other"), "kms:InvalidCiphertextException")
                        self.refused(enc, "context", expected_context={"purpose": "other"})
                        self.assertEqual(self.dec(enc, expected_context={"purpose": "logs"}), PLAIN)
                        self.refused(enc, "kms:IncorrectKeyException", kms_key_id="key-b")
                        cek = "115" if name.startswith("v3") else "AES/GCM/NoPadding"
                        other = "AES/GCM/NoPadding" if cek == "115" else "AES/CBC/PKCS5Padding"
                        self.refused(s3ec.alter_context(enc, "aws:x-amz-cek-alg", other), "cek-mismatch")
                        self.assertEqual(self.dec(enc, kms_key_id=self.peer.key_arn("key-a")), PLAIN)
                    else:
                        self.refused(enc, "key", kek=os.urandom(32))
                        # The AES/GCM wrap does not authenticate the material description: it only selects the KEK.
                        keyring = {'{"kek":"one"}': self.kek} if name == "v3-02" else {"{}": self.kek}
                        self.refused(s3ec.alter_context(enc, "kek", "two"), "key", kek=keyring)

    def test_v2_envelope_tampering(self):
        f = all_formats(self.peer, self.kek)
        kc, aes = f["v2-kms+context"], f["v2-aes-gcm"]
        cbc = s3ec.set_field(s3ec.set_field(kc, "x-amz-cek-alg", "AES/CBC/PKCS5Padding"), "x-amz-tag-len", None)
        cbc = s3ec.set_field(cbc, "x-amz-iv", b64(os.urandom(16)))
        self.refused(cbc, "cek-mismatch")                                   # context says GCM, metadata CBC
        self.refused(s3ec.set_field(kc, "x-amz-cek-alg", "AES/CBC/PKCS5Padding"), "format")   # tag-len on CBC
        self.refused(s3ec.set_field(kc, "x-amz-tag-len", "96"), "format")
        self.refused(s3ec.set_field(kc, "x-amz-tag-len", None), "format")
        self.refused(s3ec.set_field(kc, "x-amz-wrap-alg", "AESWrap"), "wrap-alg")
        self.refused(s3ec.set_field(kc, "x-amz-cek-alg", "AES/CTR/NoPadding"), "cek-alg")
        self.refused(s3ec.set_field(aes, "x-amz-iv", b64(os.urandom(16))), "format")
        self.refused(s3ec.set_field(aes, "x-amz-matdesc", "not json"), "format")
        # Another object's wrapped key: the content tag fails (v2 has no key commitment).
        other = s3ec.encrypt_v2_aes_gcm(PLAIN, self.kek)
        self.refused(s3ec.set_field(aes, "x-amz-key-v2", other.metadata["x-amz-key-v2"]), "tag")
        self.refused(s3ec.mix_versions(kc, "x-amz-key"), "mixed")
        self.refused(s3ec.mix_versions(kc, "x-amz-3"), "mixed")
        self.refused(kc.copy(metadata={}), "format")                         # no envelope, no instruction file

    def test_v3_envelope_tampering(self):
        for inst in (False, True):
            f = all_formats(self.peer, self.kek, inst)
            for name in ("v3-02", "v3-12"):
                enc = f[name]
                with self.subTest(fmt=name, instruction_file=inst):
                    self.refused(s3ec.wrong_commitment(enc), "commitment")
                    self.refused(s3ec.wrong_message_id(enc), "commitment")
                    self.refused(s3ec.set_field(enc, "x-amz-c", "114"), "cek-alg")
                    self.refused(s3ec.set_field(enc, "x-amz-w", "22"), "wrap-alg")
                    self.refused(s3ec.set_field(enc, "x-amz-d", b64(os.urandom(16))), "format")
                    self.refused(s3ec.set_field(enc, "x-amz-i", b64(bytes(28))), "format")
                    # Key substitution: another object's wrapped data key under the same KEK / KMS key
                    # decrypts fine, and the commitment catches it before any content is decrypted.
                    twin = (s3ec.encrypt_v3_aes_gcm(PLAIN, self.kek) if name == "v3-02" else
                            s3ec.encrypt_v3_kms_context(PLAIN, self.peer, "key-a", context={"purpose": "logs"}))
                    self.refused(s3ec.set_field(enc, "x-amz-3", twin.metadata["x-amz-3"]), "commitment")
                    self.refused(s3ec.mix_versions(enc, "x-amz-iv"), "mixed")
                    self.refused(s3ec.mix_versions(enc, "x-amz-key-v2"), "mixed")
                    if inst:
                        for n in ("x-amz-c", "x-amz-d", "x-amz-i"):
                            self.refused(s3ec.v3_cdi_in_instruction(enc, names=(n,)), "instruction")
                        self.refused(enc.copy(instruction=None), "instruction")
                        bad = enc.copy()
                        bad.instruction["x-amz-iv"] = "AAAA"
                        self.refused(bad, "mixed")
                        bad = enc.copy()
                        del bad.instruction["x-amz-3"]
                        self.refused(bad, "instruction")

    def test_legacy_formats(self):
        f = all_formats(self.peer, self.kek)
        for name in ("v1-kms", "v1-kms-keyv2"):
            enc = f[name]
            with self.subTest(fmt=name):
                self.refused(enc, "legacy", allow_legacy=False)
                self.refused(s3ec.alter_context(enc, "kms_cmk_id", "key-b"), "kms:InvalidCiphertextException")
                self.refused(enc.copy(body=enc.body[:-1]), "padding")
                # CBC is unauthenticated: a flipped byte is either refused (padding) or yields other bytes.
                for where in ("start", "middle", "end"):
                    try:
                        out = self.dec(s3ec.flip_ciphertext(enc, where))
                    except S3ECError as e:
                        self.assertEqual(e.reason, "padding")
                    else:
                        self.assertNotEqual(out, PLAIN)
        # A missing x-amz-cek-alg means CBC (v2 names, legacy Java): still decrypts.
        self.assertEqual(self.dec(s3ec.set_field(f["v1-kms-keyv2"], "x-amz-cek-alg", None)), PLAIN)


class RubySdkCrossCheckTest(unittest.TestCase):
    """Objects written by the official Ruby SDK read by the reference decryptor, and ours read by the SDK.
    One Ruby process runs all jobs (about a second)."""

    @classmethod
    def setUpClass(cls):
        cls.peer = KmsPeer(keys=["key-a", "key-b"], session_token="session/token+1").start()
        cls.kek = os.urandom(32)
        cls.stub_dk, cls.stub_blob = os.urandom(32), b"ruby-stub-blob-" + os.urandom(16)
        http_kms = {"endpoint": cls.peer.url, "access_key": cls.peer.access_key, "secret": cls.peer.secret,
                    "session_token": cls.peer.session_token, "region": "eu-west-3"}
        stub = {"stub": {"plaintext_b64": b64(cls.stub_dk), "blob_b64": b64(cls.stub_blob)}}
        pt = b64(PLAIN)
        ctx = {"purpose": "logs"}
        cls.ours = {
            "kms-meta": s3ec.encrypt_v2_kms_context(PLAIN, cls.peer, "key-a", context=ctx),
            "kms-instr": s3ec.encrypt_v2_kms_context(PLAIN, cls.peer, "key-a", context=ctx, instruction_file=True),
            "aes-meta": s3ec.encrypt_v2_aes_gcm(PLAIN, cls.kek),
            "aes-instr": s3ec.encrypt_v2_aes_gcm(PLAIN, cls.kek, instruction_file=True),
            "legacy-kms": s3ec.encrypt_v1_kms(PLAIN, cls.peer, "key-a", key_field="x-amz-key-v2"),
            "empty": s3ec.encrypt_v2_aes_gcm(b"", cls.kek),
        }

        def dec_job(name, **kw):
            enc = cls.ours[name]
            job = {"op": "decrypt", "client": "v2", "body_b64": b64(enc.body), "metadata": enc.metadata,
                   "instruction": None if enc.instruction is None else enc.instruction_body.decode()}
            job.update(kw)
            return job

        aes = {"wrap": "aes_gcm", "kek_b64": b64(cls.kek)}
        kms = {"wrap": "kms_context", "kms": http_kms, "context": ctx}
        cls.jobs = {
            "enc-kms-stub": {"op": "encrypt", "client": "v2", "wrap": "kms_context", "plaintext_b64": pt,
                             "kms_key_id": "key-a", "context": ctx, "kms": stub},
            "enc-kms-http-instr": {"op": "encrypt", "client": "v2", "wrap": "kms_context", "plaintext_b64": pt,
                                   "kms_key_id": "key-a", "context": ctx, "kms": http_kms,
                                   "envelope_location": "instruction_file"},
            "enc-aes-meta": {"op": "encrypt", "client": "v2", "wrap": "aes_gcm", "plaintext_b64": pt,
                             "kek_b64": b64(cls.kek)},
            "enc-aes-instr": {"op": "encrypt", "client": "v2", "wrap": "aes_gcm", "plaintext_b64": pt,
                              "kek_b64": b64(cls.kek), "envelope_location": "instruction_file"},
            "enc-legacy-kms": {"op": "encrypt", "client": "v1", "wrap": "kms", "plaintext_b64": pt,
                               "kms_key_id": "key-a", "kms": stub},
            "dec-kms-meta": dec_job("kms-meta", **kms),
            "dec-kms-instr": dec_job("kms-instr", **kms),
            "dec-aes-meta": dec_job("aes-meta", **aes),
            "dec-aes-instr": dec_job("aes-instr", **aes),
            "dec-empty": dec_job("empty", **aes),
            "dec-legacy-kms": dec_job("legacy-kms", wrap="kms", kms=http_kms, security_profile="v2_and_legacy"),
            "dec-legacy-refused": dec_job("legacy-kms", wrap="kms", kms=http_kms, security_profile="v2"),
            "dec-tag-flipped": dict(dec_job("aes-meta", **aes), body_b64=b64(s3ec.flip_tag(cls.ours["aes-meta"]).body)),
            "dec-ct-flipped": dict(dec_job("kms-meta", **kms),
                                   body_b64=b64(s3ec.flip_ciphertext(cls.ours["kms-meta"], "start").body)),
            "dec-wrong-context": dec_job("kms-meta", wrap="kms_context", kms=http_kms, context={"purpose": "x"}),
            "dec-wrong-kek": dec_job("aes-meta", wrap="aes_gcm", kek_b64=b64(os.urandom(32))),
        }
        names = list(cls.jobs)
        try:
            results = s3ec.run_ruby([cls.jobs[n] for n in names])
        except BaseException:
            cls.peer.stop()
            raise
        cls.results = dict(zip(names, results))

    @classmethod
    def tearDownClass(cls):
        cls.peer.stop()

    def result(self, name, ok=True):
        r = self.results[name]
        self.assertEqual(r["ok"], ok, f"{name}: {r}")
        return r

    def ruby_object(self, name):
        r = self.result(name)
        instr = r["instruction"]
        return s3ec.Encrypted(base64.b64decode(r["body_b64"]), r["metadata"],
                              None if instr is None else json.loads(instr)), r

    def test_ruby_v2_kms_context_stubbed_kms(self):
        enc, r = self.ruby_object("enc-kms-stub")
        self.assertEqual(set(enc.metadata), set(self.ours["kms-meta"].metadata))
        self.assertEqual(enc.metadata["x-amz-wrap-alg"], "kms+context")
        self.assertEqual(base64.b64decode(enc.metadata["x-amz-key-v2"]), self.stub_blob)
        call = r["kms_requests"][0]
        self.assertEqual((call["operation"], call["key_id"]), ("generate_data_key", "key-a"))
        self.assertEqual(call["encryption_context"], {"aws:x-amz-cek-alg": "AES/GCM/NoPadding", "purpose": "logs"})
        self.assertEqual(json.loads(enc.metadata["x-amz-matdesc"]), call["encryption_context"])
        self.assertEqual(enc.metadata["x-amz-unencrypted-content-length"], str(len(PLAIN)))
        self.peer.register_blob(self.stub_blob, self.stub_dk, "key-b", call["encryption_context"])
        self.assertEqual(s3ec.decrypt(enc, kms=self.peer, expected_context={"purpose": "logs"}), PLAIN)
        with self.assertRaises(S3ECError) as cm:
            s3ec.decrypt(s3ec.flip_tag(enc), kms=self.peer)
        self.assertEqual(cm.exception.reason, "tag")

    def test_ruby_v2_kms_context_through_the_peer(self):
        enc, _ = self.ruby_object("enc-kms-http-instr")
        self.assertEqual(set(enc.metadata), {"x-amz-unencrypted-content-length"})
        self.assertEqual(set(enc.instruction), set(self.ours["kms-instr"].instruction))
        self.assertEqual(s3ec.decrypt(enc, kms=self.peer, expected_context={"purpose": "logs"}), PLAIN)
        # The official Ruby signer (aws-sigv4, with a session token, region eu-west-3) passed our check.
        gdk = [e for e in self.peer.log if e["op"] == "GenerateDataKey"]
        self.assertEqual(len(gdk), 1)
        self.assertEqual((gdk[0]["signature_ok"], gdk[0]["region"], gdk[0]["session_token"], gdk[0]["key_id"]),
                         (True, "eu-west-3", "session/token+1", "key-a"))
        self.assertFalse([e for e in self.peer.log if not e["signature_ok"]], self.peer.log)

    def test_ruby_v2_aes_gcm(self):
        for name in ("enc-aes-meta", "enc-aes-instr"):
            enc, _ = self.ruby_object(name)
            with self.subTest(name):
                env = enc.instruction if enc.instruction is not None else enc.metadata
                self.assertEqual((env["x-amz-wrap-alg"], env["x-amz-matdesc"], env["x-amz-cek-alg"]),
                                 ("AES/GCM", "{}", "AES/GCM/NoPadding"))
                ref = self.ours["aes-instr" if enc.instruction is not None else "aes-meta"]
                self.assertEqual(set(enc.metadata), set(ref.metadata))
                self.assertEqual(s3ec.decrypt(enc, kek=self.kek), PLAIN)
                with self.assertRaises(S3ECError):
                    s3ec.decrypt(s3ec.flip_ciphertext(enc, "middle"), kek=self.kek)

    def test_ruby_legacy_kms(self):
        enc, r = self.ruby_object("enc-legacy-kms")
        # What the v1 clients wrote with KMS: x-amz-key-v2 with the `kms` wrap and CBC content.
        self.assertEqual((enc.metadata["x-amz-wrap-alg"], enc.metadata["x-amz-cek-alg"], enc.metadata["x-amz-matdesc"]),
                         ("kms", "AES/CBC/PKCS5Padding", '{"kms_cmk_id":"key-a"}'))
        self.assertEqual(set(enc.metadata), set(self.ours["legacy-kms"].metadata))
        self.assertEqual(r["kms_requests"][0]["encryption_context"], {"kms_cmk_id": "key-a"})
        self.peer.register_blob(self.stub_blob, self.stub_dk, "key-b", {"kms_cmk_id": "key-a"})
        self.assertEqual(s3ec.decrypt(enc, kms=self.peer), PLAIN)

    def test_ruby_reads_our_objects(self):
        for name in ("dec-kms-meta", "dec-kms-instr", "dec-aes-meta", "dec-aes-instr", "dec-legacy-kms"):
            with self.subTest(name):
                self.assertEqual(base64.b64decode(self.result(name)["plaintext_b64"]), PLAIN)
        self.assertEqual(base64.b64decode(self.result("dec-empty")["plaintext_b64"]), b"")
        # It fetched the tag with a ranged GET and the instruction file by its suffix.
        self.assertIn({"key": "obj", "range": "bytes=-16"}, self.result("dec-aes-meta")["gets"])
        self.assertIn({"key": "obj.instruction", "range": None}, self.result("dec-aes-instr")["gets"])
        # Its KMS Decrypt calls carried our stored context and passed the signature check.
        dec = [e for e in self.peer.log if e["op"] == "Decrypt" and e["status"] == 200]
        self.assertIn({"purpose": "logs", "aws:x-amz-cek-alg": "AES/GCM/NoPadding"}, [e["context"] for e in dec])
        self.assertIn({"kms_cmk_id": "key-a"}, [e["context"] for e in dec])

    def test_ruby_refuses_what_we_refuse(self):
        self.assertIn("CipherError", self.result("dec-tag-flipped", ok=False)["error"])
        self.assertIn("CipherError", self.result("dec-ct-flipped", ok=False)["error"])
        self.assertIn("LegacyDecryptionError", self.result("dec-legacy-refused", ok=False)["error"])
        r = self.result("dec-wrong-context", ok=False)
        self.assertIn("does not match the provided encryption context", r["message"])
        self.assertIn("CipherError", self.result("dec-wrong-kek", ok=False)["error"])


if __name__ == "__main__":
    unittest.main()
