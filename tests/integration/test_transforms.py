"""Transforms (docs/CONFIG.md "Transforms"): redact, filter, route, set, sample, throttle, the
conditions they share, and the file source's `event_id`, through real logship processes.

Most pipelines: file source(s) -> transform(s) -> splunk_hec sink -> a logship HEC receiver
(splunk_hec source -> file sink; one shared per test class where the test allows it) -> JSON lines.
The counting tests (sample, throttle, conditions) put a file sink right after the transform and
wait on /metrics: sink sent + transform dropped == events written. Every wait polls a condition.

  RedactTest          1. built-in detectors end to end   2. hash pseudonyms
                      3. fields scope, drop_field, drop_event (+ checkpoint over dropped events)
  FilterRouteTest     4. filter + file checkpoints       5. route to two receivers + _unmatched
  SampleThrottleTest  6. sample (random, keyed, exempt)  7. throttle (path and template keys, exempt)
  SetEventIdTest      8. set                             11. event_id
  ConditionTest       9. every operator and function, absent fields, %message/%host/%time ...
  ConfigErrorTest    10. config errors: exit 2 and file:line:col of the offending token
"""
import collections
import hashlib
import hmac
import json
import os
import re
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import (Logship, TempDir, free_port, http_get, metric, parse_metrics, read_jsonl,  # noqa: E402
                 receiver_config, run_logship, wait_for, wait_hec_up, write_config)
from bufferlib import checkpoint_offset  # noqa: E402

TOKEN = "transforms-test-token-5f0c"
REDACTIONS = "logship_redactions_total"
DROPPED = "logship_component_dropped_events_total"
SENT = "logship_component_sent_events_total"
RECEIVED = "logship_component_received_events_total"
ALL_DETECTORS = ["email", "ipv4", "ipv6", "credit_card", "iban", "phone", "aws_access_key_id",
                 "aws_secret_access_key", "jwt", "bearer_token", "us_ssn"]

# Personal data (all synthetic / documentation values). Cards are Luhn-valid, IBANs checksum-valid.
EMAIL_A = "alice.smith@example.com"
EMAIL_URL = "carol.jones@example.net"          # appears inside a URL's query string
EMAIL_ESCAPED = "dave@example.com"             # written as dave\u0040example.com in JSON
IPV4 = "203.0.113.42"
IPV6_ZONE = "fe80::1%eth0"
IPV6_MAPPED = "::ffff:192.0.2.1"
IPV6_FULL = "2001:db8:85a3::8a2e:370:7334"
CARD_SPACES = "4111 1111 1111 1111"
CARD_DASHES = "5500-0000-0000-0004"
CARD_PLAIN = "4012888888881881"
CARD_NUMBER = 4012888888881881                 # the same card as a JSON number
CARD_BAD = "4111111111111112"                  # 16 digits, Luhn-invalid: must stay
IBAN_SPACES = "DE89 3704 0044 0532 0130 00"
IBAN_COMPACT = "GB82WEST12345698765432"
PHONE = "+44 20 7946 0958"
PHONE_COMPACT = "+14155552671"
AWS_KEY = "AKIAIOSFODNN7EXAMPLE"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
JWT_PAYLOAD = "eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ"
JWT_SIG = "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
JWT = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9." + JWT_PAYLOAD + "." + JWT_SIG
BEARER = "abcdef123456789"
SSN = "078-05-1120"

# What must not be found anywhere in the receiver's output (whole values and telling parts).
PERSONAL = {
    "email": EMAIL_A, "email in a URL": EMAIL_URL, "JSON-escaped email (decoded)": EMAIL_ESCAPED,
    "JSON-escaped email (as written)": "dave\\u0040example.com",
    "ipv4": IPV4, "ipv6 with zone": "fe80::1", "ipv4-mapped ipv6": IPV6_MAPPED,
    "ipv4 inside the mapped ipv6": "192.0.2.1", "ipv6": IPV6_FULL, "ipv6 tail": "8a2e:370:7334",
    "card with spaces": CARD_SPACES, "card tail": "1111 1111 1111", "card with dashes": CARD_DASHES,
    "card digits": CARD_PLAIN, "iban with spaces": IBAN_SPACES, "iban part": "3704 0044 0532",
    "iban compact": IBAN_COMPACT, "phone": PHONE, "phone tail": "7946 0958", "phone compact": PHONE_COMPACT,
    "aws access key id": AWS_KEY, "aws secret access key": AWS_SECRET, "jwt payload": JWT_PAYLOAD,
    "jwt signature": JWT_SIG, "bearer token": BEARER, "us ssn": SSN,
}


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------
def append_lines(path, lines):
    with open(path, "a", encoding="utf-8", newline="") as f:
        f.write("".join(line + "\n" for line in lines))
        f.flush()


def jline(obj):
    return json.dumps(obj, ensure_ascii=False)


def write_secret(path, text, mode=0o600):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(path, mode)
    return path


def event_obj(e):
    """The event of an output line as a JSON object: the object itself, or a string event whose
    text is a JSON object (a JSON-looking line of a `lines` source may come out either way);
    None for any other event."""
    ev = e.get("event")
    if isinstance(ev, dict):
        return ev
    if isinstance(ev, str) and ev.lstrip().startswith("{"):
        try:
            v = json.loads(ev)
        except ValueError:
            return None
        return v if isinstance(v, dict) else None
    return None


def event_text(e):
    ev = e.get("event")
    return ev if isinstance(ev, str) else json.dumps(ev, ensure_ascii=False)


def shape(v):
    """The key structure of a JSON value (dict keys and list lengths; scalars are None)."""
    if isinstance(v, dict):
        return {k: shape(x) for k, x in v.items()}
    if isinstance(v, list):
        return [shape(x) for x in v]
    return None


def file_source(include, **extra):
    src = {"type": "file", "include": [include] if isinstance(include, str) else list(include),
           "scan_interval": "100ms", "host": "test-host"}
    src.update(extra)
    return src


def file_sink(inputs, path):
    return {"type": "file", "inputs": list(inputs), "path": path}


class Receiver:
    """logship as the HEC receiver: splunk_hec source (acknowledgements off) -> file sink."""

    def __init__(self, name="receiver"):
        self.tmp = TempDir(prefix="logship-transforms-recv-")
        self.port = free_port()
        self.admin_port = free_port()
        self.out = self.tmp.join("out.jsonl")
        cfg = receiver_config(self.tmp, self.port, self.out, tokens=[TOKEN])
        cfg["admin"] = {"address": f"127.0.0.1:{self.admin_port}"}
        self.proc = Logship(write_config(self.tmp.join("receiver.yaml"), cfg), name)
        self.stopped = False

    def start(self):
        self.proc.start()
        try:
            wait_hec_up(self.port)
        except AssertionError as e:
            raise AssertionError(f"{e}\n--- receiver log ---\n{self.proc.log()[-3000:]}") from None
        return self

    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def stop(self):
        if self.proc.proc is None or self.stopped:
            return self.proc.proc.returncode if self.proc.proc else None
        self.stopped = True
        return self.proc.stop()

    def cleanup(self):
        try:
            self.stop()
        finally:
            self.tmp.cleanup()

    def events(self, pred=None):
        return [e for e in read_jsonl(self.out) if pred is None or pred(e)]

    def raw(self):
        try:
            with open(self.out, "rb") as f:
                return f.read()
        except FileNotFoundError:
            return b""

    def log(self):
        return self.proc.log()


def hec_sink(inputs, receiver, **extra):
    sink = {"type": "splunk_hec", "inputs": list(inputs), "endpoints": [receiver.url()], "token": TOKEN,
            "acknowledgements": {"enabled": False},
            "retry": {"initial_backoff": "50ms", "max_backoff": "500ms"}}
    sink.update(extra)
    return sink


class Shipper:
    """One logship config (with an admin port) and its successive processes."""

    def __init__(self, tc, tmp, name, sources, sinks, transforms=None, data_dir=None, env=None):
        self.tc, self.name, self.env = tc, name, env
        self.admin_port = free_port()
        self.data_dir = data_dir or tmp.join(f"data-{name}")
        self.cfg = {"data_dir": self.data_dir, "admin": {"address": f"127.0.0.1:{self.admin_port}"},
                    "sources": sources, "sinks": sinks}
        if transforms:
            self.cfg["transforms"] = transforms
        self.cfg_path = write_config(tmp.join(f"{name}.yaml"), self.cfg)
        self.proc = None
        self.runs = 0

    def start(self):
        self.runs += 1
        p = Logship(self.cfg_path, f"{self.name}-run{self.runs}", env=self.env).start()
        self.proc = p
        self.tc.addCleanup(lambda: p.alive() and p.stop())
        wait_for(lambda: http_get(f"http://127.0.0.1:{self.admin_port}/metrics")[0] == 200 or not p.alive(),
                 30, f"{self.name} admin /metrics")
        if not p.alive():
            self.tc.fail(f"{self.name} exited at start (rc {p.proc.returncode}):\n{p.log()[-3000:]}")
        return self

    def stop(self):
        rc = self.proc.stop()
        self.tc.assertEqual(rc, 0, f"{self.name} exit code\n{self.proc.log()[-3000:]}")

    def m(self, name, **labels):
        return metric(self.admin_port, name, **labels)

    def m0(self, name, **labels):
        return self.m(name, **labels) or 0

    def samples(self, name):
        status, text = http_get(f"http://127.0.0.1:{self.admin_port}/metrics")
        return [(l, v) for n, l, v in parse_metrics(text) if n == name] if status == 200 else None

    def log(self):
        return self.proc.log() if self.proc else ""


class Rig:
    """A test's temp dir (logs/ for the sources' files), its shippers and own receivers."""

    def __init__(self, tc, name, shared=None):
        self.tc = tc
        self.tmp = TempDir(prefix=f"logship-transforms-{name}-")
        tc.addCleanup(self.tmp.cleanup)
        self.logdir = self.tmp.join("logs")
        os.makedirs(self.logdir)
        self.shippers = []
        self.receivers = [shared] if shared else []

    def path(self, name):
        return os.path.join(self.logdir, name)

    def shipper(self, name, sources, sinks, transforms=None, **kw):
        s = Shipper(self.tc, self.tmp, name, sources, sinks, transforms, **kw)
        self.shippers.append(s)
        return s

    def receiver(self, name="receiver"):
        r = Receiver(name)
        self.tc.addCleanup(r.cleanup)
        r.start()
        self.receivers.append(r)
        return r

    def mine(self, e):
        """An output line of this test (its events' source is a file under logs/)."""
        return str(e.get("source", "")).startswith(self.logdir + os.sep)

    def diag(self):
        out = []
        for s in self.shippers:
            out.append(f"--- {s.name} log (tail) ---\n{s.log()[-3000:]}")
        for r in self.receivers:
            out.append(f"--- receiver log (tail) ---\n{r.log()[-1500:]}")
        return "\n" + "\n".join(out)


class TransformTestBase(unittest.TestCase):
    SHARED_RECEIVER = False
    recv = None

    @classmethod
    def setUpClass(cls):
        cls.recv = None
        if cls.SHARED_RECEIVER:
            cls.recv = Receiver(f"receiver-{cls.__name__}")
            try:
                cls.recv.start()
            except Exception:
                cls.recv.cleanup()
                raise

    @classmethod
    def tearDownClass(cls):
        if cls.recv:
            try:
                rc = cls.recv.stop()
                assert rc == 0, f"receiver exited with {rc}:\n{cls.recv.log()[-3000:]}"
            finally:
                cls.recv.cleanup()

    def setUp(self):
        self.t0 = time.monotonic()

    def tearDown(self):
        print(f"[{self.id().rsplit('.', 1)[-1]}] {time.monotonic() - self.t0:.1f} s", flush=True)

    def rig(self, name):
        return Rig(self, name, shared=self.recv)

    def wait_events(self, get, n, what, rig, timeout=60):
        """Polls get() until it returns at least n events; returns them."""
        try:
            return wait_for(lambda: (lambda evs: evs if len(evs) >= n else None)(get()), timeout, what,
                            interval=0.1)
        except AssertionError as e:
            self.fail(f"{e}: got {len(get())} of {n}" + rig.diag())

    def wait_true(self, cond, what, rig, timeout=60):
        try:
            return wait_for(cond, timeout, what, interval=0.1)
        except AssertionError as e:
            self.fail(f"{e}" + rig.diag())

    def wait_done(self, sh, pairs, what, rig, timeout=60):
        """Waits until, for every (transform id, sink id, reason, total), the sink's sent events plus
        the transform's dropped events (that reason) make `total`: every event was decided."""
        def done():
            return all(sh.m0(SENT, component_id=sink) + sh.m0(DROPPED, component_id=t, reason=reason) == total
                       for t, sink, reason, total in pairs)
        try:
            wait_for(done, timeout, what, interval=0.1)
        except AssertionError as e:
            state = [(t, sink, sh.m0(SENT, component_id=sink), sh.m0(DROPPED, component_id=t, reason=reason), total)
                     for t, sink, reason, total in pairs]
            self.fail(f"{e}; (transform, sink, sent, dropped, total): {state}" + rig.diag())


# ---------------------------------------------------------------------------------------------
# 1-3. redact
# ---------------------------------------------------------------------------------------------
LINE_TEMPLATES = [
    f"GET /index.html 200 user={EMAIL_A} from {IPV4}",
    f"GET /index.html 302 redirect https://example.com/reset?email={EMAIL_URL}&step=2",
    f"link-local peer {IPV6_ZONE} mapped {IPV6_MAPPED} global {IPV6_FULL}",
    f"payment card {CARD_SPACES} backup {CARD_DASHES} plain {CARD_PLAIN}",
    f"order ref {CARD_BAD} is not a card",
    f"iban {IBAN_SPACES} and {IBAN_COMPACT}",
    f"call {PHONE} or {PHONE_COMPACT}",
    f"aws_access_key_id={AWS_KEY} aws_secret_access_key={AWS_SECRET}",
    f"session token={JWT} ok",
    f"Authorization: Bearer {BEARER}",
    f"ssn {SSN} on file",
    "nothing personal here: GET /index.html took 12 ms",
]


def personal_json(seq):
    return {"seq": seq, "request": "GET /index.html", "count": 3, "ok": True,
            "user": {"email": EMAIL_A, "name": "Alice", "ip": IPV4, "ip6": IPV6_MAPPED},
            "note": f"reach me at {EMAIL_ESCAPED}", "link": f"https://example.com/u?email={EMAIL_URL}",
            "card": CARD_SPACES, "card_num": CARD_NUMBER, "iban": IBAN_SPACES, "phone": PHONE,
            "headers": {"Authorization": f"Bearer {BEARER}", "X-Peer": IPV6_ZONE},
            "aws": [AWS_KEY, f"aws_secret_access_key={AWS_SECRET}"], "jwt": JWT, "ssn": SSN,
            "ref": CARD_BAD}


def personal_json_text(seq):
    """The JSON text of personal_json(seq), with the note's `@` written as the escape \\u0040."""
    text = jline(personal_json(seq))
    escaped = text.replace(EMAIL_ESCAPED, "dave\\u0040example.com")
    assert escaped != text and json.loads(escaped) == personal_json(seq)
    return escaped


class RedactTest(TransformTestBase):
    SHARED_RECEIVER = True  # for 2 and 3; 1 has a receiver of its own (it searches the whole file)

    # Verifies every built-in detector masks its data in lines and JSON events end to end, JSON stays JSON with the same keys, the rest survives, and the counters count.
    def test_builtin_detectors_mask_personal_data_end_to_end(self):
        rig = Rig(self, "redact")
        recv = rig.receiver()
        lines_path, json_path = rig.path("app.log"), rig.path("app.json.log")
        reps = 10
        lines = []
        for k in range(reps):
            lines += [f"n={k} {t}" for t in LINE_TEMPLATES]
            # JSON by its text (first non-space character `{`) although the source's codec is lines.
            lines.append(jline({"n": k, "msg": f"json-looking line mail {EMAIL_A}", "ip": IPV4}))
        append_lines(lines_path, lines)
        append_lines(json_path, [personal_json_text(k) for k in range(reps)])
        sh = rig.shipper(
            "redact",
            sources={"lines": file_source(lines_path), "json": file_source(json_path, codec="json")},
            transforms={"redact": {"type": "redact", "inputs": ["lines", "json"], "rules": [{"match": ALL_DETECTORS}]}},
            sinks={"hec": hec_sink(["redact"], recv)})
        sh.start()
        total = len(lines) + reps
        self.wait_events(lambda: recv.events(rig.mine), total, "every redacted event at the receiver", rig)
        self.wait_true(lambda: sh.m0(SENT, component_id="hec") == total, "hec sink sent == total", rig)
        events = recv.events(rig.mine)
        self.assertEqual(len(events), total, "nothing dropped, nothing twice")

        # None of the personal values anywhere: in the file's bytes, and in every string decoded
        # (the envelope's escapes, and those of string events that hold JSON text).
        raw = recv.raw()
        decoded = [jline(e) for e in events]
        decoded += [jline(event_obj(e)) for e in events if isinstance(e.get("event"), str) and event_obj(e)]
        leaks = [f"{name} ({value!r}) in the raw output" for name, value in PERSONAL.items() if value.encode() in raw]
        leaks += [f"{name} ({value!r}) in a decoded event" for name, value in PERSONAL.items()
                  if any(value in d for d in decoded)]
        self.assertEqual(leaks, [], "personal data reached the receiver")
        self.assertIn(b"[REDACTED]", raw)

        # Non-personal text survives; the Luhn-invalid number is not a card.
        texts = [event_text(e) for e in events if e.get("source") == lines_path]
        self.assertEqual(sum("GET /index.html" in t for t in texts), 3 * reps, texts[:15])
        # The URL around the email stays (how much of `email=` an email detector takes is its own choice).
        self.assertEqual(sum("https://example.com/reset" in t and t.endswith("&step=2") for t in texts), reps, texts[:15])
        for k in range(reps):
            self.assertIn(f"n={k} order ref {CARD_BAD} is not a card", texts)
            self.assertIn(f"n={k} nothing personal here: GET /index.html took 12 ms", texts)

        # The JSON-looking lines are still JSON objects with the same keys.
        looking = [event_obj(e) for e in events if e.get("source") == lines_path and event_obj(e) is not None]
        self.assertEqual(sorted(o.get("n") for o in looking), list(range(reps)), texts[:15])
        for o in looking:
            self.assertEqual(set(o), {"n", "msg", "ip"})
            self.assertTrue(o["msg"].startswith("json-looking line mail "), o)

        # The codec json events: objects, same key structure, non-personal values unchanged.
        objs = [event_obj(e) for e in events if e.get("source") == json_path]
        self.assertTrue(all(isinstance(e.get("event"), dict) for e in events if e.get("source") == json_path),
                        "codec json events are sent as objects")
        self.assertEqual(sorted(o["seq"] for o in objs), list(range(reps)))
        for o in objs:
            self.assertEqual(shape(o), shape(personal_json(o["seq"])), o)
            self.assertEqual((o["request"], o["count"], o["ok"], o["user"]["name"], o["ref"]),
                             ("GET /index.html", 3, True, "Alice", CARD_BAD), o)
            self.assertTrue(o["note"].startswith("reach me at "), o)
            self.assertNotEqual(o["card_num"], CARD_NUMBER, "a card as a JSON number is masked too")

        # One counter per detector (rule 0, action mask), each > 0.
        counts = {d: sh.m0(REDACTIONS, component_id="redact", rule="0", detector=d, action="mask")
                  for d in ALL_DETECTORS}
        self.assertEqual([d for d, v in counts.items() if not v > 0], [],
                         f"detectors without redactions: {counts}; all samples: {sh.samples(REDACTIONS)}")
        self.assertEqual(sh.m0(DROPPED, component_id="redact"), 0, "mask drops nothing")
        sh.stop()

    # Verifies hash pseudonyms equal prefix + the first `length` hex digits of HMAC-SHA256(key, match), are the same from a second process and change with the key.
    def test_hash_pseudonyms_are_hmac_sha256_stable_and_key_dependent(self):
        rig = self.rig("hash")
        key_a = "key-A-" + os.urandom(16).hex()
        key_b = "key-B-" + os.urandom(16).hex()
        key_a_file = write_secret(rig.tmp.join("a.key"), key_a + "\n")  # the trailing newline is stripped
        key_b_file = write_secret(rig.tmp.join("b.key"), key_b)
        emails = ["alice@example.com", "bob.builder@example.org", "carol_99@mail.example.net"]
        lines = [f"login ok user={emails[k % 3]} n={k}" for k in range(12)]
        lines.append(f"mail from {emails[0]} to {emails[1]} n=12")
        log = rig.path("auth.log")
        append_lines(log, lines)

        def pseudonym(key, match):
            return "u_" + hmac.new(key.encode(), match.encode(), hashlib.sha256).hexdigest()[:12]

        def expected(key):
            out = []
            for line in lines:
                for m in emails:
                    line = line.replace(m, pseudonym(key, m))
                out.append(line)
            return sorted(out)

        runs = {}
        for tag, key_file in (("a1", key_a_file), ("a2", key_a_file), ("b", key_b_file)):
            sh = rig.shipper(
                f"hash_{tag}", sources={"app": file_source(log, host=f"run-{tag}")},
                transforms={"pseudo": {"type": "redact", "inputs": ["app"],
                                       "rules": [{"match": ["email"], "action": "hash"}],
                                       "hash": {"key_file": key_file, "prefix": "u_", "length": 12}}},
                sinks={"hec": hec_sink(["pseudo"], self.recv)})
            runs[tag] = sh.start()

        def texts(tag):
            return sorted(event_text(e) for e in self.recv.events(lambda e: rig.mine(e) and e.get("host") == f"run-{tag}"))

        for tag in runs:
            self.wait_events(lambda t=tag: texts(t), len(lines), f"the events of run {tag}", rig)
        self.assertEqual(texts("a1"), expected(key_a))
        self.assertEqual(texts("a2"), texts("a1"), "a second process (fresh data_dir) gives the same pseudonyms")
        self.assertEqual(texts("b"), expected(key_b))
        self.assertNotEqual(pseudonym(key_a, emails[0]), pseudonym(key_b, emails[0]))
        self.assertNotEqual(texts("b"), texts("a1"), "another key gives other pseudonyms")
        for tag, sh in runs.items():
            for t in texts(tag):
                self.assertRegex(t, r"u_[0-9a-f]{12}")
                self.assertNotIn("@", t)
            self.assertEqual(sh.m0(REDACTIONS, component_id="pseudo", rule="0", detector="email", action="hash"),
                             len(lines) + 1, f"run {tag}: one count per email")
            self.assertNotIn(key_a, sh.log())
            self.assertNotIn(key_b, sh.log())
            sh.stop()

    # Verifies `fields` limits a rule to its fields, drop_field removes the field, drop_event drops JWT events exactly, and the checkpoint moves over dropped events (nothing re-sent after a restart).
    def test_fields_scope_drop_field_and_drop_event(self):
        rig = self.rig("scope")
        log = rig.path("users.log")

        def ev(k):
            if k >= 30 or k % 3 == 2:
                return {"seq": k, "user": {"name": "Eve"}, "auth": f"token {JWT}", "msg": "login with a token"}
            if k % 3 == 0:
                return {"seq": k, "user": {"email": "alice@example.com", "ssn": SSN, "name": "Alice"},
                        "msg": "contact alice@example.com for access"}
            return {"seq": k, "user": {"email": "bob@example.org", "ssn": "n/a", "name": "Bob"},
                    "msg": "bob@example.org logged in"}

        # The last five events carry a JWT: the end of the file is only dropped events.
        n = 35
        append_lines(log, [jline(ev(k)) for k in range(n)])
        kept = [k for k in range(n) if not (k >= 30 or k % 3 == 2)]
        jwt_events = n - len(kept)
        self.assertEqual((len(kept), jwt_events), (20, 15))
        sh = rig.shipper(
            "scope", sources={"users": file_source(log, codec="json")},
            transforms={"scrub": {"type": "redact", "inputs": ["users"], "rules": [
                {"match": ["email"], "fields": [".user.email"]},
                {"match": ["us_ssn"], "fields": [".user.ssn"], "action": "drop_field"},
                {"match": ["jwt"], "action": "drop_event"},
            ]}},
            sinks={"hec": hec_sink(["scrub"], self.recv)})
        sh.start()
        mine = lambda: self.recv.events(rig.mine)  # noqa: E731
        self.wait_events(mine, len(kept), "the events without a JWT", rig)
        size = os.path.getsize(log)
        self.wait_true(lambda: checkpoint_offset(sh.data_dir, log, source="users") == size,
                       "the checkpoint at the end of the file (past the dropped events)", rig)
        self.wait_true(lambda: sh.m0(DROPPED, component_id="scrub", reason="redacted") == jwt_events,
                       f"{jwt_events} events dropped (reason redacted)", rig)
        events = mine()
        objs = {o.get("seq"): o for o in ((event_obj(e) or {}) for e in events)}
        self.assertEqual(sorted(objs), kept, "exactly the events without a JWT arrive, once each")
        self.assertEqual(len(events), len(kept))
        for k, o in objs.items():
            if k % 3 == 0:
                self.assertEqual(o["user"], {"email": "[REDACTED]", "name": "Alice"}, "ssn dropped, email masked")
                self.assertEqual(o["msg"], "contact alice@example.com for access", "outside `fields`: untouched")
            else:
                self.assertEqual(o["user"], {"email": "[REDACTED]", "ssn": "n/a", "name": "Bob"},
                                 "no match in .user.ssn: the field stays")
                self.assertEqual(o["msg"], "bob@example.org logged in")
        self.assertEqual(sh.m0(REDACTIONS, component_id="scrub", rule="0", detector="email", action="mask"), 20)
        self.assertEqual(sh.m0(REDACTIONS, component_id="scrub", rule="1", detector="us_ssn", action="drop_field"), 10)
        self.assertEqual(sh.m0(REDACTIONS, component_id="scrub", rule="2", detector="jwt", action="drop_event"),
                         jwt_events)
        sh.stop()

        # Restart on the same data_dir: only the new event is read, sent and counted.
        sh.start()
        append_lines(log, [jline({"seq": 99, "user": {"name": "Zed"}, "msg": "sentinel"})])
        self.wait_true(lambda: any((event_obj(e) or {}).get("seq") == 99 for e in mine()), "the sentinel", rig)
        self.wait_true(lambda: sh.m0(RECEIVED, component_id="users") >= 1, "the source counted the sentinel", rig)
        self.assertEqual(sh.m0(RECEIVED, component_id="users"), 1, "the restarted source re-read old events")
        self.assertEqual(sh.m0(DROPPED, component_id="scrub", reason="redacted"), 0, "dropped events read again")
        seqs = collections.Counter((event_obj(e) or {}).get("seq") for e in mine())
        self.assertEqual(sorted(seqs), kept + [99])
        self.assertEqual([s for s, c in seqs.items() if c > 1], [], "re-sent events")
        sh.stop()


# ---------------------------------------------------------------------------------------------
# 4-5. filter, route
# ---------------------------------------------------------------------------------------------
SEQ_RE = re.compile(r"seq=(\d{4})")


def seqs_of(events):
    out = collections.Counter()
    for e in events:
        m = SEQ_RE.search(event_text(e))
        if m:
            out[int(m.group(1))] += 1
    return out


class FilterRouteTest(TransformTestBase):
    SHARED_RECEIVER = True

    # Verifies a filter passes exactly the 10 of 1,000 lines that match, the checkpoint moves over filtered lines, and after a restart only the 2 new matching lines arrive.
    def test_filter_and_file_checkpoints(self):
        rig = self.rig("filter")
        log = rig.path("app.log")

        def line(i, error):
            return f"seq={i:04d} level={'ERROR' if error else 'INFO'} request handled"
        first = [line(i, i % 100 == 50) for i in range(1000)]  # the last line does not match
        append_lines(log, first)
        want = {i for i in range(1000) if i % 100 == 50}
        sh = rig.shipper("filter", sources={"app": file_source(log)},
                         transforms={"errors_only": {"type": "filter", "inputs": ["app"],
                                                     "condition": 'contains(%message, "ERROR")'}},
                         sinks={"hec": hec_sink(["errors_only"], self.recv)})
        sh.start()
        mine = lambda: self.recv.events(rig.mine)  # noqa: E731
        self.wait_events(mine, len(want), "the 10 ERROR lines", rig)
        size = os.path.getsize(log)
        self.wait_true(lambda: checkpoint_offset(sh.data_dir, log, source="app") == size,
                       "the checkpoint at the end of the file", rig)
        self.wait_true(lambda: sh.m0(DROPPED, component_id="errors_only", reason="filtered") == 990,
                       "990 events filtered", rig)
        self.assertEqual(seqs_of(mine()), collections.Counter({i: 1 for i in want}))
        sh.stop()

        sh.start()
        append_lines(log, [line(i, i in (1001, 1003)) for i in range(1000, 1005)])
        want |= {1001, 1003}
        self.wait_events(mine, len(want), "the 2 new ERROR lines", rig)
        size = os.path.getsize(log)
        self.wait_true(lambda: checkpoint_offset(sh.data_dir, log, source="app") == size,
                       "the checkpoint at the new end of the file", rig)
        self.wait_true(lambda: sh.m0(DROPPED, component_id="errors_only", reason="filtered") >= 3,
                       "3 new events filtered", rig)
        self.assertEqual(sh.m0(RECEIVED, component_id="app"), 5, "the restarted source read old lines again")
        self.assertEqual(sh.m0(DROPPED, component_id="errors_only", reason="filtered"), 3)
        self.wait_true(lambda: sh.m0(SENT, component_id="hec") >= 2, "the sink counted the 2 new events", rig)
        self.assertEqual(sh.m0(SENT, component_id="hec"), 2)
        self.assertEqual(seqs_of(mine()), collections.Counter({i: 1 for i in want}), "exactly once each")
        sh.stop()

    # Verifies route sends each event to every route it matches (two receivers) and the others to `_unmatched` (a file sink), with exact counts.
    def test_route_to_two_receivers_and_unmatched(self):
        rig = self.rig("route")
        recv_errors = self.recv
        recv_slow = rig.receiver("receiver-slow")
        log = rig.path("route.log")
        unmatched_out = rig.tmp.join("unmatched.jsonl")

        def ev(i):
            o = {"seq": i}
            if i % 10 != 3:
                o["level"] = ("error", "warn", "info", "debug")[i % 4]
            if i % 10 != 7:
                o["ms"] = (i * 37) % 1000
            return o
        n = 200
        events = [ev(i) for i in range(n)]
        append_lines(log, [jline(o) for o in events])
        want_errors = {o["seq"] for o in events if o.get("level") == "error"}
        want_slow = {o["seq"] for o in events if "ms" in o and o["ms"] > 500}
        want_unmatched = set(range(n)) - want_errors - want_slow
        self.assertTrue(want_errors & want_slow and want_unmatched and want_errors - want_slow, "the data covers every case")
        sh = rig.shipper(
            "route", sources={"app": file_source(log, codec="json")},
            transforms={"r": {"type": "route", "inputs": ["app"],
                              "routes": {"errors": '.level == "error"', "slow": ".ms > 500"}}},
            sinks={"to_errors": hec_sink(["r.errors"], recv_errors),
                   "to_slow": hec_sink(["r.slow"], recv_slow),
                   "rest": file_sink(["r._unmatched"], unmatched_out)})
        sh.start()
        got = {
            "errors": lambda: recv_errors.events(rig.mine),
            "slow": lambda: recv_slow.events(rig.mine),
            "unmatched": lambda: read_jsonl(unmatched_out),
        }
        want = {"errors": want_errors, "slow": want_slow, "unmatched": want_unmatched}
        sinks = {"errors": "to_errors", "slow": "to_slow", "unmatched": "rest"}
        for name in got:
            self.wait_events(got[name], len(want[name]), f"route {name}", rig)
        for name, sink in sinks.items():
            self.wait_true(lambda s=sink, w=len(want[name]): sh.m0(SENT, component_id=s) >= w,
                           f"sink {sink} sent its events", rig)
            self.assertEqual(sh.m0(SENT, component_id=sink), len(want[name]), f"sink {sink}: sent events")
        for name in got:
            evs = got[name]()
            seqs = collections.Counter(event_obj(e)["seq"] for e in evs)
            self.assertEqual(set(seqs), want[name], f"route {name}")
            self.assertEqual(len(evs), len(want[name]), f"route {name}: duplicates")
            for e in evs:
                self.assertEqual(event_obj(e), events[event_obj(e)["seq"]], "route does not change events")
        sh.stop()


# ---------------------------------------------------------------------------------------------
# 6-7. sample, throttle
# ---------------------------------------------------------------------------------------------
class SampleThrottleTest(TransformTestBase):
    # Verifies sample keeps 1 in 10 of 100,000 events (within 5 %), keeps or drops all events of a key together, and always keeps exempt events.
    def test_sample_ratio_key_and_exempt(self):
        rig = self.rig("sample")
        n_rnd, users, per_user, n_ex = 100_000, 1000, 20, 2000
        rnd_log, key_log, ex_log = rig.path("rnd.log"), rig.path("keyed.log"), rig.path("ex.log")
        append_lines(rnd_log, [f"seq={i:06d} sample me" for i in range(n_rnd)])
        # A user's events are spread over the whole file (and over several batches).
        append_lines(key_log, [jline({"user": f"user{u:04d}", "i": j}) for j in range(per_user) for u in range(users)])
        append_lines(ex_log, [jline({"n": i, "vip": i % 10 == 0}) for i in range(n_ex)])
        outs = {k: rig.tmp.join(f"out_{k}.jsonl") for k in ("rnd", "key", "ex")}
        sh = rig.shipper(
            "sample",
            sources={"rnd": file_source(rnd_log), "keyed": file_source(key_log, codec="json"),
                     "ex": file_source(ex_log, codec="json")},
            transforms={"s_rnd": {"type": "sample", "inputs": ["rnd"], "rate": 10},
                        "s_key": {"type": "sample", "inputs": ["keyed"], "rate": 10, "key": ".user"},
                        "s_ex": {"type": "sample", "inputs": ["ex"], "rate": 10, "exempt": ".vip == true"}},
            sinks={"out_rnd": file_sink(["s_rnd"], outs["rnd"]), "out_key": file_sink(["s_key"], outs["key"]),
                   "out_ex": file_sink(["s_ex"], outs["ex"])})
        sh.start()
        self.wait_done(sh, [("s_rnd", "out_rnd", "sampled", n_rnd), ("s_key", "out_key", "sampled", users * per_user),
                            ("s_ex", "out_ex", "sampled", n_ex)], "every event sampled", rig, timeout=120)

        rnd = read_jsonl(outs["rnd"])
        self.assertEqual(len(rnd), sh.m0(SENT, component_id="out_rnd"))
        kept = collections.Counter(int(e["event"][4:10]) for e in rnd)
        self.assertEqual([s for s, c in kept.items() if c > 1], [], "duplicates")
        self.assertTrue(9_500 <= len(kept) <= 10_500, f"kept {len(kept)} of {n_rnd} at rate 10")
        self.assertEqual(sh.m0(DROPPED, component_id="s_rnd", reason="sampled"), n_rnd - len(kept))

        keyed = read_jsonl(outs["key"])
        per = collections.Counter(e["event"]["user"] for e in keyed)
        partial = {u: c for u, c in per.items() if c != per_user}
        self.assertEqual(partial, {}, "users with some but not all of their 20 events kept")
        self.assertTrue(50 <= len(per) <= 150, f"{len(per)} of {users} users kept at rate 10")

        ex = read_jsonl(outs["ex"])
        vip = [e["event"]["n"] for e in ex if e["event"]["vip"]]
        self.assertEqual(sorted(vip), list(range(0, n_ex, 10)), "every exempt event is kept")
        others = len(ex) - len(vip)
        self.assertTrue(100 <= others <= 260, f"{others} of {n_ex - len(vip)} non-exempt events kept at rate 10")
        self.assertEqual(sh.m0(DROPPED, component_id="s_ex", reason="sampled"), n_ex - len(ex))
        sh.stop()

    # Verifies throttle keeps the first 5 events per key and window (path key and template key), drops and counts the other 45, and keeps exempt events.
    def test_throttle_per_key_with_exempt(self):
        rig = self.rig("throttle")
        log = rig.path("th.log")
        users = ["alice", "bob", "carol"]
        rows = []
        for j in range(20):
            for u in users:
                rows.append({"user": u, "i": j})
                if j == 10:  # exempt events well after each user reached the threshold
                    rows += [{"user": u, "i": 100 + a, "audit": True} for a in range(3)]
        append_lines(log, [jline(o) for o in rows])
        total = len(rows)
        self.assertEqual(total, 69)
        outs = {k: rig.tmp.join(f"out_{k}.jsonl") for k in ("path", "tpl")}
        # Fixed 1h windows may be aligned to the clock: keep the run away from the top of the hour.
        boundary = (int(time.time()) // 3600 + 1) * 3600
        if boundary - time.time() < 20:
            wait_for(lambda: time.time() >= boundary + 0.5, 30, "the next hour (fixed 1h windows)", interval=0.2)
        sh = rig.shipper(
            "throttle", sources={"app": file_source(log, codec="json")},
            transforms={"th": {"type": "throttle", "inputs": ["app"], "threshold": 5, "window": "1h",
                               "key": ".user", "exempt": ".audit == true"},
                        "th_tpl": {"type": "throttle", "inputs": ["app"], "threshold": 5, "window": "1h",
                                   "key": "{{ .user }}", "exempt": "exists(.audit)"}},
            sinks={"out_path": file_sink(["th"], outs["path"]), "out_tpl": file_sink(["th_tpl"], outs["tpl"])})
        sh.start()
        self.wait_done(sh, [("th", "out_path", "throttled", total), ("th_tpl", "out_tpl", "throttled", total)],
                       "every event throttled or kept", rig)
        for tid, kind in (("th", "path"), ("th_tpl", "tpl")):
            evs = [e["event"] for e in read_jsonl(outs[kind])]
            self.assertEqual(len(evs), 15 + 9, f"{tid}: 5 per user + 9 exempt")
            self.assertEqual(sh.m0(DROPPED, component_id=tid, reason="throttled"), 45, tid)
            for u in users:
                self.assertEqual(sorted(e["i"] for e in evs if e["user"] == u and not e.get("audit")), list(range(5)),
                                 f"{tid}: the first 5 events of {u} (one window)")
                self.assertEqual(sorted(e["i"] for e in evs if e["user"] == u and e.get("audit")), [100, 101, 102],
                                 f"{tid}: exempt events of {u}")
        sh.stop()


# ---------------------------------------------------------------------------------------------
# 8, 11. set, event_id
# ---------------------------------------------------------------------------------------------
class SetEventIdTest(TransformTestBase):
    SHARED_RECEIVER = True

    # Verifies set: index/sourcetype/host/source templates, an indexed field from a template and ${VAR}, event fields set and removed, a non-JSON event's text untouched.
    def test_set_metadata_fields_event_and_remove(self):
        rig = self.rig("set")
        js_log, plain_log = rig.path("set.json.log"), rig.path("set.log")
        objs = [
            {"seq": 0, "region": "eu", "kind": "web", "secret": "s3cr3t-0", "ctx": {"a": 1, "drop": "y"}, "msg": "hello"},
            {"seq": 1, "region": "us", "kind": "api", "secret": "s3cr3t-1", "ctx": {"a": 2, "drop": "y"}, "msg": "hi"},
            {"seq": 2, "kind": "batch", "ctx": {"a": 3}, "msg": "no region, no secret"},
        ]
        append_lines(js_log, [jline(o) for o in objs])
        append_lines(plain_log, ["plain line one"])
        sh = rig.shipper(
            "set",
            sources={"js": file_source(js_log, codec="json", host="web-01"),
                     "plain": file_source(plain_log, host="db-02")},
            transforms={"enrich": {
                "type": "set", "inputs": ["js", "plain"],
                "index": "idx_{{ .region }}",
                "sourcetype": "app:{{ .kind }}:v1",
                "host": "{{ %host }}-relay",
                "source": "{{ %source }}#set",
                "fields": {"env": "prod-{{ .region }}", "team": "${LOGSHIP_TEST_TEAM}"},
                "event": {"tag": "x", "ctx.b": "{{ .kind }}"},
                "remove": [".secret", ".ctx.drop"],
            }},
            sinks={"hec": hec_sink(["enrich"], self.recv)},
            env={"LOGSHIP_TEST_TEAM": "payments"})
        sh.start()
        evs = self.wait_events(lambda: self.recv.events(rig.mine), 4, "the 4 events", rig)
        self.assertEqual(len(evs), 4)
        by_seq = {}
        plain = None
        for e in evs:
            o = event_obj(e)
            if o is None:
                plain = e
            else:
                by_seq[o["seq"]] = e
        self.assertEqual(sorted(by_seq), [0, 1, 2])
        for src in objs:
            e = by_seq[src["seq"]]
            region, kind = src.get("region", ""), src["kind"]
            self.assertEqual(e["index"], f"idx_{region}")
            self.assertEqual(e["sourcetype"], f"app:{kind}:v1")
            self.assertEqual(e["host"], "web-01-relay")
            self.assertEqual(e["source"], js_log + "#set")
            self.assertEqual(e.get("fields"), {"env": f"prod-{region}", "team": "payments"})
            want = {k: v for k, v in src.items() if k != "secret"}
            want["ctx"] = {k: v for k, v in src["ctx"].items() if k != "drop"}
            want["ctx"]["b"] = kind
            want["tag"] = "x"
            self.assertEqual(event_obj(e), want)
        self.assertIsNotNone(plain, "the plain line")
        self.assertEqual(plain["event"], "plain line one", "event.* and remove leave a non-JSON event as it is")
        self.assertEqual((plain["index"], plain["sourcetype"], plain["host"], plain["source"]),
                         ("idx_", "app::v1", "db-02-relay", plain_log + "#set"))
        self.assertEqual(plain.get("fields"), {"env": "prod-", "team": "payments"})
        sh.stop()

    # Verifies event_id: every event carries a distinct 32-hex logship_event_id, a fresh process with the same source id gives the same ids, another source id other ones.
    def test_event_id_is_deterministic_per_position_and_source_id(self):
        rig = self.rig("eventid")
        log = rig.path("ids.log")
        lines = [f"event {i} of the id test" for i in range(40)] + ["the same text"] * 10
        append_lines(log, lines)
        runs = {}
        for tag, sid in (("a1", "app"), ("a2", "app"), ("b", "other")):
            runs[tag] = rig.shipper(f"ids_{tag}", sources={sid: file_source(log, event_id=True, host=f"run-{tag}")},
                                    sinks={"hec": hec_sink([sid], self.recv)}).start()

        def got(tag):
            return self.recv.events(lambda e: rig.mine(e) and e.get("host") == f"run-{tag}")
        ids = {}
        for tag in runs:
            evs = self.wait_events(lambda t=tag: got(t), len(lines), f"the events of run {tag}", rig)
            self.assertEqual(len(evs), len(lines), f"run {tag}")
            self.assertEqual(sorted(event_text(e) for e in evs), sorted(lines))
            for e in evs:
                self.assertRegex((e.get("fields") or {}).get("logship_event_id", ""), r"^[0-9a-f]{32}$", e)
            ids[tag] = [e["fields"]["logship_event_id"] for e in evs]
            self.assertEqual(len(set(ids[tag])), len(lines), f"run {tag}: ids are distinct (same text included)")
            by_text = {event_text(e): e["fields"]["logship_event_id"] for e in evs if event_text(e) != "the same text"}
            ids[tag + "/text"] = by_text
        self.assertEqual(set(ids["a1"]), set(ids["a2"]), "same file, same source id: the same ids")
        self.assertEqual(ids["a1/text"], ids["a2/text"], "each event keeps its id")
        self.assertEqual(set(ids["a1"]) & set(ids["b"]), set(), "another source id: other ids")
        for sh in runs.values():
            sh.stop()


# ---------------------------------------------------------------------------------------------
# 9. conditions
# ---------------------------------------------------------------------------------------------
JS_EVENTS = [
    {"id": 0, "level": "error", "ms": 750, "user": {"name": "Alice", "tags": ["a", "b"]}, "msg": "Disk FULL on /var",
     "ok": True, "n": None, "ts": 1700000000},
    {"id": 1, "level": "info", "ms": 120, "user": {"name": "bob", "tags": ["c"]}, "msg": "request done", "ok": False,
     "ts": 1700000100},
    {"id": 2, "level": "warn", "ms": 500, "msg": "timeout talking to db-01", "ok": True, "ts": 1700000200},
    {"id": 3, "level": "ERROR", "ms": 501.5, "user": {"name": "carol"}, "msg": "needle in a haystack", "ts": 1700000300},
    {"id": 4, "ms": -3, "msg": "", "ts": 1700000400},
    {"id": 5, "level": "debug", "ms": 0, "msg": "path=/a/b.txt code=E42", "n": 1, "ts": 1700000500},
]
P1, P2, P4 = "plain ERROR disk full", "plain info all good", "{not json level=error"
PLAIN_LINES = [P1, P2, '  {"id": 100, "level": "error", "ms": 900}', P4]  # the third is JSON by its text
J = {0, 1, 2, 3, 4, 5}
PLAIN = {P1, P2, 100, P4}
ALL = J | PLAIN

# (condition, the ids of the events for which it is true). JSON events are identified by `.id`,
# the non-JSON lines by their text. The json source has host Web-01, sourcetype app:json, index
# main and `%time` from `.ts`; the plain source host db-02, no index, `%time` = read time (now).
CONDITIONS = [
    ('.level == "error"', {0, 100}),
    ('.level != "error"', ALL - {0, 100}),
    (".ms > 500", {0, 3, 100}),
    (".ms >= 500", {0, 2, 3, 100}),
    (".ms < 500", {1, 4, 5}),
    (".ms <= 120", {1, 4, 5}),
    (".ms == 501.5", {3}),
    (".ms < 0", {4}),
    (".id == 3", {3}),
    (".ok == true", {0, 2}),
    (".ok == false", {1}),
    (".ok != true", ALL - {0, 2}),
    (".n == null", {0}),
    (".missing == null", set()),
    (".missing != 1", ALL),
    (".missing < 5", set()),
    (".missing >= 5", set()),
    ("exists(.missing)", set()),
    ("not exists(.missing)", ALL),
    ("exists(.user.name)", {0, 1, 3}),
    ('.user.name == "Alice"', {0}),
    ('.user.tags[0] == "c"', {1}),
    ('.user.tags[1] == "b"', {0}),
    ("exists(.user.tags[0])", {0, 1}),
    ("not exists(.user.tags[1])", ALL - {0}),
    ('contains(.msg, "FULL")', {0}),
    ('starts_with(.msg, "request")', {1}),
    ('ends_with(.msg, ".txt code=E42")', {5}),
    ('matches(.msg, "^timeout .* db-[0-9]+")', {2}),
    ('lower(.level) == "error"', {0, 3, 100}),
    ('contains(lower(.msg), "full")', {0}),
    ('.msg == ""', {4}),
    ('.level == "error" and .ms > 500', {0, 100}),
    ('.level == "error" and not (.ms < 800)', {100}),
    ('.level == "error" or .level == "warn"', {0, 2, 100}),
    ('not (.level == "error" or .ms < 500)', {2, 3, P1, P2, P4}),
    ('.level == "info" or .level == "warn" and .ms > 1000', {1}),  # `and` binds tighter than `or`
    ('(.level == "info" or .level == "warn") and .ms >= 500', {2}),
    ("true", ALL),
    ("false", set()),
    ('contains(%message, "ERROR")', {3, P1}),  # %message of a JSON event is its JSON text
    ('starts_with(%message, "plain ")', {P1, P2}),
    ('matches(%message, "^[{]not json")', {P4}),
    ('%host == "db-02"', PLAIN),
    ('lower(%host) == "web-01"', J),
    ('ends_with(%source, "/plain.log")', PLAIN),
    ('%sourcetype == "app:json"', J),
    ('%index == "main"', J),
    ("%time < 1700000150", {0, 1}),
    ("%time >= 1700000200 and %time <= 1700000400", {2, 3, 4}),
    ("%time > 1700000500", PLAIN),
]


def ident(e):
    o = event_obj(e)
    if o is not None and "id" in o:
        return o["id"]
    return e.get("event")


class ConditionTest(TransformTestBase):
    # Verifies every operator and function of conditions, absent fields, array elements, %message/%host/%source/%sourcetype/%index/%time, over events with known answers.
    def test_every_operator_and_function(self):
        rig = self.rig("cond")
        js_log, plain_log = rig.path("cond.json.log"), rig.path("plain.log")
        append_lines(js_log, [jline(o) for o in JS_EVENTS])
        append_lines(plain_log, PLAIN_LINES)
        total = len(JS_EVENTS) + len(PLAIN_LINES)
        transforms, sinks, outs = {}, {}, {}
        for i, (cond, _) in enumerate(CONDITIONS):
            transforms[f"f{i:02d}"] = {"type": "filter", "inputs": ["js", "plain"], "condition": cond}
            outs[i] = rig.tmp.join(f"c{i:02d}.jsonl")
            sinks[f"c{i:02d}"] = file_sink([f"f{i:02d}"], outs[i])
        sh = rig.shipper(
            "cond",
            sources={"js": file_source(js_log, codec="json", host="Web-01", sourcetype="app:json", index="main",
                                       timestamp={"field": "ts", "format": "epoch_s"}),
                     "plain": file_source(plain_log, host="db-02")},
            transforms=transforms, sinks=sinks)
        sh.start()
        self.wait_done(sh, [(f"f{i:02d}", f"c{i:02d}", "filtered", total) for i in range(len(CONDITIONS))],
                       "every event decided by every filter", rig)
        wrong = []
        for i, (cond, want) in enumerate(CONDITIONS):
            got = [ident(e) for e in read_jsonl(outs[i])]
            if sorted(map(repr, got)) != sorted(map(repr, want)):
                wrong.append(f"{cond!r}: got {sorted(map(repr, got))}, want {sorted(map(repr, want))}")
        self.assertEqual(wrong, [], "conditions with wrong answers:\n" + "\n".join(wrong))
        sh.stop()


# ---------------------------------------------------------------------------------------------
# 10. config errors
# ---------------------------------------------------------------------------------------------
class ConfigErrorTest(TransformTestBase):
    def setUp(self):
        super().setUp()
        self.tmp = TempDir(prefix="logship-transforms-cfg-")
        self.addCleanup(self.tmp.cleanup)
        self.key = write_secret(self.tmp.join("hash.key"), "hash-key-" + os.urandom(8).hex() + "\n")

    def doc(self, transform_lines, sink_input):
        logs = self.tmp.join("logs")
        return ([f"data_dir: {self.tmp.join('data')}", "sources:", f'  app: {{type: file, include: ["{logs}/*.log"]}}',
                 "transforms:"] + transform_lines +
                ["sinks:", f"  bh: {{type: blackhole, inputs: [{sink_input}]}}"])

    @staticmethod
    def at(lines, needle, offset=0):
        """(line, col), 1-based, of `needle` (on the one line holding it) plus `offset` columns."""
        hits = [(n, line.index(needle)) for n, line in enumerate(lines) if needle in line]
        assert len(hits) == 1, (needle, hits)
        return hits[0][0] + 1, hits[0][1] + 1 + offset

    @classmethod
    def in_expr(cls, lines, expr, offsets):
        """Positions of characters `offsets` (0-based) of a single-quoted expression: the quote is at
        column C, the expression's character i at C + 1 + i."""
        line, quote_col = cls.at(lines, f"'{expr}'")
        return [(line, quote_col + 1 + i) for i in offsets]

    def check(self, name, lines, positions, word=None):
        path = self.tmp.join(name + ".yaml")
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")
        r = run_logship("check", "-c", path)
        self.assertEqual(r.returncode, 2, f"{name}: {r.stdout}{r.stderr}")
        msg = r.stderr.strip()
        self.assertEqual(len(msg.splitlines()), 1, f"{name}: one error expected:\n{msg}")
        want = [f"{path}:{l}:{c}:" for l, c in positions]
        self.assertTrue(any(msg.startswith(w) for w in want), f"{name}: expected one of {want}:\n{msg}")
        if word:
            self.assertIn(word, msg, name)

    # Verifies bad conditions, detectors, hash settings, drop_field without fields and an unknown route input exit 2 with file:line:col of the offending token; a valid config of every transform passes.
    def test_config_errors_point_at_the_offending_token(self):
        # Positive control: every transform type, valid, with route outputs as inputs.
        ok = self.doc([
            "  f:", "    type: filter", "    inputs: [app]", "    condition: 'contains(%message, \"x\")'",
            "  r:", "    type: route", "    inputs: [f]", "    routes:", "      errors: '.level == \"error\"'",
            "      slow: '.ms > 500'",
            "  red:", "    type: redact", "    inputs: [r.errors]", "    hash:", f"      key_file: {self.key}",
            "      prefix: u_", "      length: 12", "    rules:", "      - match: [email, {regex: 'id=[0-9]+'}]",
            "        action: hash", "      - match: [us_ssn]", "        fields: [.user.ssn]", "        action: drop_field",
            "  st:", "    type: set", "    inputs: [red, r._unmatched]", "    index: 'i_{{ .region }}'",
            "    fields: {env: 'prod-{{ .region }}'}", "    event: {tag: x}", "    remove: [.secret]",
            "  sa:", "    type: sample", "    inputs: [st]", "    rate: 10", "    key: .user", "    exempt: '.vip == true'",
            "  th:", "    type: throttle", "    inputs: [sa]", "    threshold: 5", "    window: 1h", "    key: .user",
            "    exempt: 'exists(.audit)'",
        ], "th, r.slow")
        path = self.tmp.join("ok.yaml")
        with open(path, "w") as f:
            f.write("\n".join(ok) + "\n")
        r = run_logship("check", "-c", path)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

        def filter_case(expr):
            return self.doc(["  f:", "    type: filter", "    inputs: [app]", f"    condition: '{expr}'"], "f")

        # (name, expression, candidate 0-based offsets of the offending token within it, word)
        exprs = [
            ("incomplete", ".a == ", [6, 5, 3], None),          # the end of the input (or the `==` left open)
            ("unknown_function", "foo(.a)", [0], "foo"),
            ("contains_number", "contains(.a, 5)", [13], None),
            ("string_lt_number", '"a" < 5', [4, 6, 0], None),   # the `<` (or an operand)
            ("not_string", 'not "x"', [4, 0], None),
            ("bad_regex", 'matches(.a, "(")', [12, 13], None),
        ]
        for name, expr, offsets, word in exprs:
            with self.subTest(name):
                lines = filter_case(expr)
                self.check(name, lines, self.in_expr(lines, expr, offsets), word)

        with self.subTest("route_condition"):
            expr = '.level = "error"'
            lines = self.doc(["  r:", "    type: route", "    inputs: [app]", "    routes:", f"      errors: '{expr}'"],
                             "r.errors")
            self.check("route_condition", lines, self.in_expr(lines, expr, [7]))
        with self.subTest("throttle_exempt"):
            expr = "exists(.a"
            lines = self.doc(["  t:", "    type: throttle", "    inputs: [app]", "    threshold: 5", "    window: 1m",
                              "    key: .user", f"    exempt: '{expr}'"], "t")
            self.check("throttle_exempt", lines, self.in_expr(lines, expr, [9, 6]))
        with self.subTest("sample_exempt"):
            expr = ".a >"
            lines = self.doc(["  s:", "    type: sample", "    inputs: [app]", "    rate: 10", f"    exempt: '{expr}'"], "s")
            self.check("sample_exempt", lines, self.in_expr(lines, expr, [4, 3]))

        def redact(rule_lines, extra=()):
            return self.doc(["  red:", "    type: redact", "    inputs: [app]"] + list(extra) + ["    rules:"] + rule_lines,
                            "red")
        with self.subTest("unknown_detector"):
            lines = redact(["      - match: [email, credit_crad]"])
            self.check("unknown_detector", lines, [self.at(lines, "credit_crad")], "credit_crad")
        with self.subTest("bad_rule_regex"):
            lines = redact(['      - match: [{regex: "a(b"}]'])
            self.check("bad_rule_regex", lines, [self.at(lines, '"a(b"'), self.at(lines, '"a(b"', 1)])
        with self.subTest("hash_without_key_file"):
            lines = redact(["      - match: [email]", "        action: hash"])
            # The `hash` value that needs the key, or the transform / rule that lacks it.
            self.check("hash_without_key_file", lines,
                       [self.at(lines, "action: hash", len("action: ")), self.at(lines, "type: redact"),
                        self.at(lines, "red:"), self.at(lines, "match: [email]")], "key_file")
        with self.subTest("hash_length_7"):
            lines = redact(["      - match: [email]", "        action: hash"],
                           extra=["    hash:", f"      key_file: {self.key}", "      length: 7"])
            self.check("hash_length_7", lines, [self.at(lines, "length: 7", len("length: "))])
        with self.subTest("drop_field_without_fields"):
            lines = redact(["      - match: [us_ssn]", "        action: drop_field"])
            self.check("drop_field_without_fields", lines,
                       [self.at(lines, "action: drop_field", len("action: ")), self.at(lines, "match: [us_ssn]")],
                       "fields")
        with self.subTest("unknown_route"):
            lines = self.doc(["  r:", "    type: route", "    inputs: [app]", "    routes:",
                              "      errors: '.level == \"error\"'"], "r.nope")
            self.check("unknown_route", lines, [self.at(lines, "r.nope")], "nope")
        with self.subTest("group_readable_hash_key"):
            key = write_secret(self.tmp.join("open.key"), "not-so-secret-key\n", mode=0o640)
            lines = redact(["      - match: [email]", "        action: hash"], extra=["    hash:", f"      key_file: {key}"])
            path = self.tmp.join("open_key.yaml")
            with open(path, "w") as f:
                f.write("\n".join(lines) + "\n")
            r = run_logship("check", "-c", path)
            self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
            self.assertIn(key, r.stderr)
            self.assertNotIn("not-so-secret-key", r.stdout + r.stderr)


if __name__ == "__main__":
    unittest.main()
