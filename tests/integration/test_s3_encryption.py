"""Client-side encrypted S3 objects (the Amazon S3 Encryption Client formats) through the real binary:
s3rver holds the objects, our KMS test server (kmspeer.py, which verifies SigV4) holds the key, and the
objects are made by the test encryptor written from the specification (s3ec.py, cross-checked against
the official Ruby SDK in test_s3ec_peers.py). CloudTrail `.json.gz` inside each.

Read: v2 kms+context, v2 AES/GCM (kek_file), v3 wrap 12 and 02, an envelope in an instruction file,
v1 legacy with allow_legacy. Refused, with nothing of them forwarded: a flipped ciphertext byte (start,
middle, end), a flipped tag, a tampered context, a wrong v3 commitment, v3 c/d/i inside an instruction
file, a wrong key-encryption key, a key KMS denies, a legacy object without allow_legacy, a plaintext
object with `required: true`. The spool under data_dir holds nothing once objects are done.
"""
import gzip
import os
import random
import re
import signal
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import s3ec  # noqa: E402
from kmspeer import KmsPeer  # noqa: E402
from s3lib import ACCOUNT, S3Server, ct_file, ct_key  # noqa: E402
from test_s3_source import DAY, NOW, Harness, by_id  # noqa: E402

KEK = bytes(range(32))


def spool_bytes(spool):
    """Bytes held in the spool directory (its files are emptied and reused, removed at stop)."""
    if not os.path.isdir(spool):
        return None
    return sum(os.path.getsize(os.path.join(spool, e)) for e in os.listdir(spool))


def ct_object(rnd, name, n):
    body, ids = ct_file(rnd, name, n, NOW - 600)
    return body, ids


class EncryptedObjects(unittest.TestCase):
    def setUp(self):
        self.kms = KmsPeer(keys=["key-a", "key-denied"], access_key="S3RVER", secret="S3RVER").start()
        self.addCleanup(self.kms.stop)
        self.kms.deny("key-denied")
        self.s3 = S3Server(self)
        self.tmp_kek = os.path.join(self.s3.tmp.path, "kek.bin")
        with open(self.tmp_kek, "wb") as f:
            f.write(KEK)
        os.chmod(self.tmp_kek, 0o600)
        self.rnd = random.Random(11)

    def harness(self, prefix, **cse):
        opts = {"kek_file": self.tmp_kek}
        opts.update(cse)
        return Harness(self, self.s3, {"ct": {"format": "cloudtrail", "prefix": prefix,
                                              "kms_endpoint": self.kms.url, "client_side_encryption": opts}},
                       name="s3enc")

    def upload(self, key, enc):
        objs = [(key, enc.body, None, enc.metadata)]
        if enc.instruction is not None:
            objs.append((key + ".instruction", enc.instruction_body))
        self.s3.put(objs)

    def test_every_format_is_decrypted_and_read_once(self):
        """Verifies v2 kms+context, v2 AES/GCM, v3 (wraps 12 and 02), an instruction file and v1 with
        allow_legacy deliver every CloudTrail record once, with one KMS call per distinct data key."""
        expect = {}
        made = []
        fmts = [
            ("v2kms", lambda pt: s3ec.encrypt_v2_kms_context(pt, self.kms, "key-a", context={"purpose": "logs"})),
            ("v2kek", lambda pt: s3ec.encrypt_v2_aes_gcm(pt, KEK)),
            ("v3kms", lambda pt: s3ec.encrypt_v3_kms_context(pt, self.kms, "key-a", context={"purpose": "logs"})),
            ("v3kek", lambda pt: s3ec.encrypt_v3_aes_gcm(pt, KEK)),
            ("v2ins", lambda pt: s3ec.encrypt_v2_kms_context(pt, self.kms, "key-a", context={"purpose": "logs"},
                                                             instruction_file=True)),
            ("v3ins", lambda pt: s3ec.encrypt_v3_kms_context(pt, self.kms, "key-a", context={"purpose": "logs"},
                                                             instruction_file=True)),
            ("v1", lambda pt: s3ec.encrypt_v1_kms(pt, self.kms, "key-a")),
        ]
        for i, (name, fn) in enumerate(fmts):
            body, ids = ct_object(self.rnd, name, 40 + i)
            expect.update(ids)
            key = ct_key("us-east-1", DAY, f"01{i:02d}", name)
            self.upload(key, fn(body))
            made.append(key)
        h = self.harness(f"AWSLogs/{ACCOUNT}/CloudTrail/", allow_legacy=True,
                         encryption_context={"purpose": "logs"})
        h.start()
        h.wait(lambda: set(by_id(h.events(), "eventID")) >= set(expect), 60, "every decrypted record")
        time.sleep(1.0)
        got = by_id(h.events(), "eventID")
        self.assertEqual(set(got), set(expect))
        self.assertEqual(max(got.values()), 1)
        self.assertEqual(h.metric("logship_s3_objects_total", status="failed"), 0, h.log()[-3000:])
        self.assertEqual(h.metric("logship_s3_objects_decrypted_total"), len(fmts))
        self.assertEqual(h.metric("logship_s3_objects_decrypted_total", format="v3_aes_gcm"), 1)
        self.assertEqual(h.metric("logship_s3_kms_calls_total"), 5)  # one per KMS-wrapped object
        self.assertGreaterEqual(self.kms.ok_counts["Decrypt"], 5)
        spool = os.path.join(h.cfg["data_dir"], "s3-spool-ct")
        h.wait(lambda: spool_bytes(spool) == 0, 10, "an empty spool")
        self.assertIn("allow_legacy", h.log())  # the start-up warning
        h.stop()
        self.assertEqual(os.listdir(spool), [], "spool files left after the stop")

    def test_tampered_and_refused_objects_forward_nothing(self):
        """Verifies that every tampering, a wrong KEK, a denied KMS key, a legacy object without
        allow_legacy and a plaintext object with required: true fail that object with a clear reason,
        forward none of its records, and do not stop the others."""
        good_body, good_ids = ct_object(self.rnd, "good", 30)
        cases = {}

        def add(name, enc_fn, reason_text):
            body, ids = ct_object(self.rnd, name, 20)
            key = ct_key("us-east-1", DAY, f"02{len(cases):02d}", name)
            enc = enc_fn(body)
            if isinstance(enc, bytes):
                self.s3.put([(key, enc)])
            else:
                self.upload(key, enc)
            cases[name] = (key, ids, reason_text)

        v2 = lambda pt: s3ec.encrypt_v2_kms_context(pt, self.kms, "key-a")  # noqa: E731
        v3 = lambda pt: s3ec.encrypt_v3_kms_context(pt, self.kms, "key-a")  # noqa: E731
        add("flipstart", lambda pt: s3ec.flip_ciphertext(v2(pt), "start"), "tag does not verify")
        add("flipmid", lambda pt: s3ec.flip_ciphertext(v2(pt), "middle"), "tag does not verify")
        add("flipend", lambda pt: s3ec.flip_ciphertext(v3(pt), "end"), "tag does not verify")
        add("fliptag", lambda pt: s3ec.flip_tag(v2(pt)), "tag does not verify")
        add("context", lambda pt: s3ec.alter_context(
            s3ec.encrypt_v2_kms_context(pt, self.kms, "key-a", context={"purpose": "logs"})), "")
        add("commit", lambda pt: s3ec.wrong_commitment(v3(pt)), "commitment mismatch")
        add("cdi", lambda pt: s3ec.v3_cdi_in_instruction(
            s3ec.encrypt_v3_kms_context(pt, self.kms, "key-a", instruction_file=True)), "tampered")
        add("wrongkek", lambda pt: s3ec.encrypt_v2_aes_gcm(pt, bytes(32)), "wrong kek_file")
        add("denied", lambda pt: s3ec.encrypt_v2_kms_context(pt, self.kms, "key-denied"), "kms:Decrypt denied")
        add("legacy", lambda pt: s3ec.encrypt_v1_kms(pt, self.kms, "key-a"), "allow_legacy")
        add("plain", lambda pt: gzip.compress(pt) if not pt[:2] == b"\x1f\x8b" else pt, "not client-side encrypted")
        self.upload(ct_key("us-east-1", DAY, "0300", "good"), v2(good_body))

        h = self.harness(f"AWSLogs/{ACCOUNT}/CloudTrail/", required=True)
        h.start()
        h.wait(lambda: h.metric("logship_s3_objects_total", status="failed") == len(cases), 60,
               f"{len(cases)} objects failed")
        h.wait(lambda: set(by_id(h.events(), "eventID")) >= set(good_ids), 30, "the good object's records")
        got = set(by_id(h.events(), "eventID"))
        self.assertEqual(got, set(good_ids))  # nothing of a refused object
        log = h.log()
        for name, (key, ids, reason) in cases.items():
            self.assertIn(key, log, name)
            if reason:
                self.assertTrue(any(reason in line and key in line for line in log.splitlines()),
                                f"{name}: no line names {key} with {reason!r}\n{log[-4000:]}")
        self.assertGreaterEqual(h.metric("logship_s3_decryption_failures_total", reason="tag"), 4)
        self.assertEqual(h.metric("logship_s3_decryption_failures_total", reason="commitment"), 1)
        self.assertEqual(h.metric("logship_s3_decryption_failures_total", reason="kms_access_denied"), 1)
        self.assertEqual(h.metric("logship_s3_decryption_failures_total", reason="legacy_refused"), 1)
        self.assertEqual(h.metric("logship_s3_decryption_failures_total", reason="not_encrypted"), 1)
        self.assertNotIn("S3RVER", log.replace("access key id S3RVER", ""))
        h.stop()

    def test_shared_data_key_one_kms_call_throttling_retried_missing_instruction_file(self):
        """Verifies that objects sharing one wrapped data key cost one kms:Decrypt (the others are
        cache hits), that KMS throttling is retried until the key is obtained (nothing failed), and
        that an object whose envelope is in an instruction file that does not exist fails with that
        reason, forwarding nothing."""
        first_body, expect = ct_object(self.rnd, "share0", 20)
        first = s3ec.encrypt_v2_kms_context(first_body, self.kms, "key-a")
        self.upload(ct_key("us-east-1", DAY, "0400", "share0"), first)
        blob = s3ec.unb64(first.metadata["x-amz-key-v2"])
        for i in range(1, 6):
            body, ids = ct_object(self.rnd, f"share{i}", 20)
            expect.update(ids)
            enc = s3ec.encrypt_v2_kms_context(body, self.kms, "key-a", data_key=first.data_key, blob=blob)
            self.upload(ct_key("us-east-1", DAY, f"04{i:02d}", f"share{i}"), enc)
        body, lost_ids = ct_object(self.rnd, "noinstr", 20)
        enc = s3ec.encrypt_v2_kms_context(body, self.kms, "key-a", instruction_file=True)
        missing_key = ct_key("us-east-1", DAY, "0500", "noinstr")
        self.s3.put([(missing_key, enc.body, None, enc.metadata)])  # its .instruction is not uploaded
        body, ids = ct_object(self.rnd, "other", 20)
        expect.update(ids)
        self.upload(ct_key("us-east-1", DAY, "0600", "other"),
                    s3ec.encrypt_v2_kms_context(body, self.kms, "key-a"))
        self.kms.reset_log()
        self.kms.throttle(3)  # the first kms:Decrypt calls are throttled
        h = self.harness(f"AWSLogs/{ACCOUNT}/CloudTrail/")
        h.start()
        h.wait(lambda: set(by_id(h.events(), "eventID")) >= set(expect), 60, "every shared-key record")
        h.wait(lambda: h.metric("logship_s3_objects_total", status="failed") == 1, 30, "the object failed")
        time.sleep(0.5)
        got = by_id(h.events(), "eventID")
        self.assertEqual(set(got), set(expect))
        self.assertEqual(max(got.values()), 1)
        self.assertEqual(h.metric("logship_s3_kms_calls_total"), 2, h.log()[-3000:])  # share* and other
        self.assertEqual(h.metric("logship_s3_kms_cache_hits_total"), 5)
        self.assertEqual(h.metric("logship_s3_decryption_failures_total", reason="instruction_missing"), 1)
        self.assertEqual(sum(1 for e in list(self.kms.log) if e.get("error") == "ThrottlingException"), 3)
        log = h.log()
        self.assertTrue(any(missing_key in ln and "instruction file" in ln and "missing" in ln
                            for ln in log.splitlines()), log[-3000:])
        h.stop()


    def test_commitment_require_reads_only_v3(self):
        """Verifies `commitment: require`: v3 objects (both wraps) are read, v2 and v1 objects are
        refused with reason commitment_required and nothing of them is forwarded."""
        expect, refused = {}, {}
        cases = [
            ("v3kms", lambda pt: s3ec.encrypt_v3_kms_context(pt, self.kms, "key-a"), True),
            ("v3kek", lambda pt: s3ec.encrypt_v3_aes_gcm(pt, KEK), True),
            ("v2kms", lambda pt: s3ec.encrypt_v2_kms_context(pt, self.kms, "key-a"), False),
            ("v2kek", lambda pt: s3ec.encrypt_v2_aes_gcm(pt, KEK), False),
            ("v1", lambda pt: s3ec.encrypt_v1_kms(pt, self.kms, "key-a"), False),
        ]
        for i, (name, fn, ok) in enumerate(cases):
            body, ids = ct_object(self.rnd, name, 15)
            (expect if ok else refused).update(ids)
            self.upload(ct_key("us-east-1", DAY, f"08{i:02d}", name), fn(body))
        h = self.harness(f"AWSLogs/{ACCOUNT}/CloudTrail/", commitment="require", allow_legacy=True)
        h.start()
        h.wait(lambda: h.metric("logship_s3_objects_total", status="failed") == 3, 60, "three objects refused")
        h.wait(lambda: set(by_id(h.events(), "eventID")) >= set(expect), 30, "the v3 records")
        time.sleep(0.5)
        got = by_id(h.events(), "eventID")
        self.assertEqual(set(got), set(expect))
        self.assertEqual(h.metric("logship_s3_decryption_failures_total", reason="commitment_required"), 3)
        h.stop()


class LargeEncryptedObject(unittest.TestCase):
    def test_1gib_encrypted_object_bounded_memory_kill9_no_plaintext_on_disk(self):
        """Verifies a 1 GiB client-side encrypted object (v2 kms+context, ndjson): peak RSS stays as
        bounded as for plaintext objects; a kill -9 in the middle of it leaves no plaintext under
        data_dir (only the spooled ciphertext, mode 0600); after the restart (which downloads and
        verifies the object again) every line arrives, and what was delivered is not sent again
        in full; the spool is empty at the end."""
        kms = KmsPeer(keys=["key-big"], access_key="S3RVER", secret="S3RVER").start()
        self.addCleanup(kms.stop)
        s3 = S3Server(self)
        marker = b"PLAINTEXT-7f3a"
        n = 2_600_000
        pad = "x" * 380

        def chunks():
            step = 20_000
            for first in range(0, n, step):
                yield "".join(f'{{"seq":{i},"mark":"PLAINTEXT-7f3a","msg":"{pad}"}}\n'
                              for i in range(first, min(n, first + step))).encode()

        path = os.path.join(s3.tmp.path, "big.ciphertext")
        with open(path, "wb") as f:
            enc = s3ec.encrypt_v2_kms_context_stream(chunks(), f, kms, "key-big", context={"purpose": "logs"})
        plain_size = int(enc.metadata["x-amz-unencrypted-content-length"])
        self.assertGreaterEqual(plain_size, 1 << 30)
        s3.put_file("big/one.ndjson", path, metadata=enc.metadata)
        os.unlink(path)

        h = Harness(self, s3, {"big": {"format": "ndjson", "prefix": "big/", "kms_endpoint": kms.url,
                                       "client_side_encryption": {"encryption_context": {"purpose": "logs"}}}},
                    name="s3encbig")
        data_dir = h.cfg["data_dir"]
        spool = os.path.join(data_dir, "s3-spool-big")
        out_size = lambda: os.path.getsize(h.out) if os.path.exists(h.out) else 0  # noqa: E731
        peaks = []

        def peak_of(proc):
            try:
                with open(f"/proc/{proc.proc.pid}/status") as f:
                    for ln in f:
                        if ln.startswith("VmHWM:"):
                            return int(ln.split()[1]) // 1024
            except OSError:
                pass
            return 0

        h.start()
        peak = 0

        def far_enough():
            nonlocal peak
            peak = max(peak, peak_of(h.proc))
            return out_size() > 400 << 20
        h.wait(far_enough, 300, "400 MiB of the object delivered", interval=0.2)
        peaks.append(peak)
        h.stop(kill=True)

        # No plaintext anywhere under data_dir; the spool holds ciphertext only, 0600 in a 0700 dir.
        spooled = 0
        for root, _dirs, files in os.walk(data_dir):
            for name in files:
                p = os.path.join(root, name)
                with open(p, "rb") as f:
                    prev = b""
                    while True:
                        b = f.read(8 << 20)
                        if not b:
                            break
                        self.assertNotIn(marker, prev[-len(marker):] + b, f"plaintext in {p}")
                        prev = b
                if root == spool:
                    spooled += 1
                    self.assertEqual(os.stat(p).st_mode & 0o777, 0o600, p)
        self.assertEqual(os.stat(spool).st_mode & 0o777, 0o700)
        self.assertGreaterEqual(spooled, 1, "the ciphertext was spooled under data_dir")

        h.start()
        peak = 0

        def done():
            nonlocal peak
            peak = max(peak, peak_of(h.proc))
            return h.metric("logship_s3_objects_total", component_id="big", status="done") == 1
        h.wait(done, 600, "the object done after the restart", interval=0.5)
        last = -1
        while out_size() != last:  # the sink has written what it got
            last = out_size()
            time.sleep(0.5)
        peaks.append(peak)
        h.wait(lambda: spool_bytes(spool) == 0, 30, "an empty spool")
        self.assertIn("resuming", h.log())
        self.assertEqual(h.metric("logship_s3_objects_decrypted_total", component_id="big"), 1)
        h.stop()

        seen = bytearray(n)
        pat = re.compile(rb'"seq":(\d+)')
        with open(h.out, "rb") as f:
            rest = b""
            while True:
                b = f.read(16 << 20)
                if not b:
                    break
                b = rest + b
                cut = b.rfind(b"\n") + 1
                for m in pat.finditer(b, 0, cut):
                    i = int(m.group(1))
                    if seen[i] < 255:
                        seen[i] += 1
                rest = b[cut:]
        missing = seen.count(0)
        dups = sum(seen) - (n - missing)
        print(f"1 GiB encrypted object: {n} lines, {plain_size / 2**20:.0f} MiB, peak RSS {peaks} MiB, "
              f"{dups} lines sent again after kill -9")
        self.assertEqual(missing, 0, "lines lost")
        self.assertLess(dups, n // 2, "the object was read again from its start after the restart")
        for p in peaks:
            self.assertLess(p, 200, "memory grew with the object")


    def test_spool_altered_between_the_passes_forwards_nothing_altered(self):
        """Verifies that a spooled ciphertext altered on disk after its tag was verified (logship
        stopped with SIGSTOP once the spool is complete, one bit flipped near its end) fails the
        object with reason "spool" before the altered block is decrypted: every line forwarded is
        an original line."""
        kms = KmsPeer(keys=["key-s"], access_key="S3RVER", secret="S3RVER").start()
        self.addCleanup(kms.stop)
        s3 = S3Server(self)
        n = 250_000
        pad = "x" * 380

        def chunks():
            for first in range(0, n, 10_000):
                yield "".join(f'{{"seq":{i},"msg":"{pad}"}}\n' for i in range(first, min(n, first + 10_000))).encode()

        path = os.path.join(s3.tmp.path, "obj.ciphertext")
        with open(path, "wb") as f:
            enc = s3ec.encrypt_v2_kms_context_stream(chunks(), f, kms, "key-s")
        size = os.path.getsize(path)
        s3.put_file("sp/one.ndjson", path, metadata=enc.metadata)
        os.unlink(path)
        h = Harness(self, s3, {"sp": {"format": "ndjson", "prefix": "sp/", "kms_endpoint": kms.url,
                                      "client_side_encryption": {}}}, name="s3encspool")
        spool = os.path.join(h.cfg["data_dir"], "s3-spool-sp")
        h.start()

        def full():
            try:
                return any(os.path.getsize(os.path.join(spool, e)) >= size for e in os.listdir(spool))
            except OSError:
                return False
        h.wait(full, 120, "the whole ciphertext spooled", interval=0.001)
        os.kill(h.proc.proc.pid, signal.SIGSTOP)
        try:
            (name,) = os.listdir(spool)
            at = size * 9 // 10
            with open(os.path.join(spool, name), "r+b") as f:
                f.seek(at)
                b = f.read(1)
                # In the 'x' run of a line (CTR: the same plaintext bit flips): 'x' -> 'y'.
                f.seek(at)
                f.write(bytes([b[0] ^ 0x01]))
        finally:
            os.kill(h.proc.proc.pid, signal.SIGCONT)
        h.wait(lambda: h.metric("logship_s3_decryption_failures_total", reason="spool") == 1, 60,
               "the object refused (spool)")
        h.wait(lambda: h.metric("logship_s3_objects_total", status="failed") == 1, 30, "the object failed")
        time.sleep(0.5)
        evs = h.events()
        self.assertLess(len(evs), n)
        for e in evs:
            self.assertEqual(e["event"]["msg"], pad, f"an altered line was forwarded: {e}")
        self.assertIn("changed on disk between verification and decryption", h.log())
        h.wait(lambda: spool_bytes(spool) == 0, 10, "an empty spool")
        h.stop()


if __name__ == "__main__":
    unittest.main()
