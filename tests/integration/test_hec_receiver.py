"""The splunk_hec source (HEC receiver) against real clients: python's http.client / ssl and
Splunk's own JavaScript HEC client (npm splunk-logging). Every HEC status code the receiver can
produce is asserted (HEC.md §1.7), events are checked in the file sink's output, and the admin
endpoint is exercised on the same process.

Environment (set by ctest): LOGSHIP_BIN, LOGSHIP_SOURCE_DIR, LOGSHIP_BUILD_DIR.
"""
import gzip
import http.client
import json
import os
import signal
import socket
import threading
import time
import ssl
import subprocess
import sys
import unittest
import uuid

sys.path.insert(0, os.path.dirname(__file__))
from lib import (SOURCE_DIR, Logship, TempDir, free_port, hec_request, http_get, make_cert, metric,  # noqa: E402
                 read_jsonl, run_logship, wait_for, wait_hec_up, write_config)

TOKEN = "5c1d7e0a-4a53-4d3f-8e1b-7a2f9c0d1e2f"
OTHER_TOKEN = "c0ffee00-1111-2222-3333-444455556666"
CHANNEL = "FE0ECFAD-13D5-401B-847D-77833BD77131"
MAX_BODY = 64 * 1024
NODE_MODULES = os.path.join(SOURCE_DIR, "tests", "node_modules")


def marker():
    return "m-" + uuid.uuid4().hex


class Receiver:
    """A logship process: splunk_hec source -> file sink, with the admin endpoint."""

    def __init__(self, acks=False, tls=None, extra=None):
        self.tmp = TempDir()
        self.port = free_port()
        self.admin_port = free_port()
        self.out = self.tmp.join("out.jsonl")
        src = {"type": "splunk_hec", "address": f"127.0.0.1:{self.port}",
               "tokens": [TOKEN, OTHER_TOKEN], "max_body_bytes": MAX_BODY}
        if acks:
            src["acknowledgements"] = {"enabled": True}
        if tls:
            src["tls"] = tls
        if extra:
            src.update(extra)
        cfg = {
            "data_dir": self.tmp.join("data"),
            "admin": {"address": f"127.0.0.1:{self.admin_port}"},
            "sources": {"hec_in": src},
            "sinks": {"out": {"type": "file", "inputs": ["hec_in"], "path": self.out}},
        }
        self.config = write_config(self.tmp.join("receiver.yaml"), cfg)
        self.proc = Logship(self.config, name="receiver")
        self.stopped = False

    def start(self, tls_ca=None, client_cert=None):
        self.proc.start()
        if client_cert:
            wait_for(lambda: self._tls_up(tls_ca, client_cert), 30, "HEC receiver (mTLS)")
        else:
            wait_hec_up(self.port, tls_ca=tls_ca)
        return self

    def _tls_up(self, ca, cert):
        try:
            s, _ = request(self.port, "/services/collector/health", method="GET", token=None,
                           tls_ca=ca, client_cert=cert)
            return s == 200
        except OSError:
            return False

    def stop(self):
        """SIGTERM, wait, return the exit code (also closes the log of an exited process)."""
        if self.proc.proc is None or self.stopped:
            return self.proc.proc.returncode if self.proc.proc else None
        self.stopped = True
        try:
            return self.proc.stop()
        except AssertionError as e:
            raise AssertionError(f"{e}\n{self.proc.log()}") from None

    def cleanup(self):
        try:
            self.stop()
        finally:
            self.tmp.cleanup()

    def events(self):
        return read_jsonl(self.out)

    def wait_events(self, pred, n, what):
        return wait_for(lambda: (lambda evs: evs if len(evs) >= n else None)(
            [e for e in self.events() if pred(e)]), 30, what)


def request(port, path, body=b"", token=TOKEN, method="POST", headers=None, tls_ca=None,
            client_cert=None, auth=None, gzip_body=False):
    """lib.hec_request plus client certificates."""
    if client_cert is None:
        return hec_request(port, path, body=body, token=token, method=method, headers=headers,
                           tls_ca=tls_ca, gzip_body=gzip_body, auth=auth)
    if isinstance(body, str):
        body = body.encode()
    ctx = ssl.create_default_context(cafile=tls_ca)
    ctx.load_cert_chain(*client_cert)
    conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=10, context=ctx)
    h = {"Authorization": f"Splunk {token}"} if token else {}
    h.update(headers or {})
    try:
        conn.request(method, path, body=body if method != "GET" else None, headers=h)
        r = conn.getresponse()
        data = r.read().decode()
        return r.status, json.loads(data)
    finally:
        conn.close()


def event_text(e):
    ev = e.get("event")
    return ev if isinstance(ev, str) else json.dumps(ev)


class HecReceiverTest(unittest.TestCase):
    """One receiver (acknowledgements off) shared by the status-code tests."""

    @classmethod
    def setUpClass(cls):
        cls.r = Receiver()
        try:
            cls.r.start()
        except Exception:
            print(cls.r.proc.log(), file=sys.stderr)
            cls.r.cleanup()
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            rc = cls.r.stop()
            log = cls.r.proc.log()
            assert rc == 0, f"receiver exited with {rc}:\n{log}"
            assert TOKEN not in log and OTHER_TOKEN not in log, "a token appeared in the log"
        finally:
            cls.r.cleanup()

    def post(self, path="/services/collector/event", body=b"", **kw):
        return request(self.r.port, path, body=body, **kw)

    def sent(self, text):
        """Posts one sentinel event and waits for it: everything accepted before it is written."""
        s, b = self.post(body=json.dumps({"event": text}))
        self.assertEqual((s, b), (200, {"text": "Success", "code": 0}))
        self.r.wait_events(lambda e: e.get("event") == text, 1, "sentinel event")

    # Verifies health answers code 17 on both paths without a token.
    def test_health_is_code_17(self):
        for path in ("/services/collector/health", "/services/collector/health/1.0"):
            s, b = request(self.r.port, path, method="GET", token=None)
            self.assertEqual((s, b), (200, {"text": "HEC is healthy", "code": 17}))

    # Verifies the authorization table of HEC.md §1.2 and that query-string tokens are refused.
    def test_auth_codes(self):
        m = marker()
        body = json.dumps({"event": m})
        self.assertEqual(self.post(body=body, token=None),
                         (401, {"text": "Token is required", "code": 2}))
        self.assertEqual(self.post(body=body, auth=f"Bearer {TOKEN}"),
                         (401, {"text": "Invalid authorization", "code": 3}))
        self.assertEqual(self.post(body=body, token="not-a-known-token"),
                         (403, {"text": "Invalid token", "code": 4}))
        self.assertEqual(self.post(f"/services/collector/event?token={TOKEN}", body=body, token=None),
                         (400, {"text": "Query string authorization is not enabled", "code": 16}))
        self.assertEqual(self.post(f"/services/collector/event?token={TOKEN}", body=body),
                         (400, {"text": "Query string authorization is not enabled", "code": 16}))
        self.sent(marker())
        self.assertFalse([e for e in self.r.events() if e.get("event") == m])
        errors = metric(self.r.admin_port, "logship_component_errors_total", component_id="hec_in",
                        error="invalid_token")
        self.assertGreaterEqual(errors, 1)

    # Verifies unknown paths answer 404 with Splunk's body.
    def test_unknown_path_is_404(self):
        for path in ("/services/collector/nope", "/", "/services/collectorx"):
            self.assertEqual(self.post(path, body="{}"),
                             (404, {"text": "The requested URL was not found on this server.", "code": 404}))

    # Verifies every endpoint alias accepts events and the envelope arrives intact in the sink.
    def test_envelope_reaches_the_sink(self):
        m = marker()
        evs = [
            {"event": f"{m} a", "time": 1433188255.5, "host": "h1", "source": "src", "sourcetype": "st",
             "index": "main", "fields": {"k": "v", "multi": ["x", "y"]}},
            {"event": {"msg": f"{m} b", "n": [1, 2, {"z": None}]}, "time": "1433188256.250"},
            {"event": f"{m} c \"quoted\" \\ é日本"},
        ]
        body = "\n".join(json.dumps(e, ensure_ascii=False) for e in evs) + "\n"
        for path in ("/services/collector", "/services/collector/event", "/services/collector/event/1.0"):
            s, b = self.post(path, body=body.replace(m, m + path))
            self.assertEqual((s, b), (200, {"text": "Success", "code": 0}), path)
        got = self.r.wait_events(lambda e: m in event_text(e), 9, "envelope events")
        by = {event_text(e): e for e in got}
        a = by[f"{m}/services/collector/event a"]
        self.assertEqual(a["time"], 1433188255.5)
        self.assertEqual((a["host"], a["source"], a["sourcetype"], a["index"]), ("h1", "src", "st", "main"))
        self.assertEqual(a["fields"], {"k": "v", "multi": ["x", "y"]})
        b = next(e for e in got if isinstance(e["event"], dict) and e["event"]["msg"] == f"{m}/services/collector b")
        self.assertEqual(b["event"]["n"], [1, 2, {"z": None}])
        self.assertEqual(b["time"], 1433188256.25)
        self.assertEqual(b["host"], "127.0.0.1")  # no host: the client address
        c = by[f"{m}/services/collector/event/1.0 c \"quoted\" \\ é日本"]
        self.assertNotIn("fields", c)

    # Verifies an empty body is code 5.
    def test_empty_body_is_code_5(self):
        self.assertEqual(self.post(body=b""), (400, {"text": "No data", "code": 5}))
        self.assertEqual(self.post(body=b"  \n"), (400, {"text": "No data", "code": 5}))
        self.assertEqual(self.post("/services/collector/raw", body=b"\r\n"), (400, {"text": "No data", "code": 5}))

    # Verifies invalid JSON at index 2: code 6 with invalid-event-number 2, the first two events kept.
    def test_invalid_event_number(self):
        m = marker()
        body = (json.dumps({"event": f"{m} 0"}) + json.dumps({"event": f"{m} 1"}) +
                '{"event":"' + m + ' 2",}' + json.dumps({"event": f"{m} 3"}))
        s, b = self.post(body=body)
        self.assertEqual((s, b), (400, {"text": "Invalid data format", "code": 6, "invalid-event-number": 2}))
        self.sent(marker())
        self.assertEqual(sorted(event_text(e) for e in self.r.events() if m in event_text(e)),
                         [f"{m} 0", f"{m} 1"])

    # Verifies the envelope errors 12, 13 and 15 with their event numbers.
    def test_envelope_errors(self):
        ok = json.dumps({"event": "ok"})
        self.assertEqual(self.post(body=ok + json.dumps({"host": "h"})),
                         (400, {"text": "Event field is required", "code": 12, "invalid-event-number": 1}))
        self.assertEqual(self.post(body=json.dumps({"event": ""})),
                         (400, {"text": "Event field cannot be blank", "code": 13, "invalid-event-number": 0}))
        self.assertEqual(self.post(body=json.dumps({"event": "x", "fields": {"a": {"b": "c"}}})),
                         (400, {"text": "Error in handling indexed fields", "code": 15,
                                "invalid-event-number": 0}))
        self.assertEqual(self.post(body='[{"event":"x"}]'),
                         (400, {"text": "Invalid data format", "code": 6, "invalid-event-number": 0}))

    # Verifies /raw: one event per line (CRLF stripped, empty lines skipped), metadata from the query.
    def test_raw_lines(self):
        m = marker()
        for path in ("/services/collector/raw", "/services/collector/raw/1.0"):
            body = f"{m} one\r\n{m} two\n\n{m} three"
            s, b = self.post(f"{path}?sourcetype=raw%3Ast&host=rawhost&source=a+b&index=idx", body=body)
            self.assertEqual((s, b), (200, {"text": "Success", "code": 0}))
        got = self.r.wait_events(lambda e: m in event_text(e), 6, "raw events")
        self.assertEqual(sorted(e["event"] for e in got)[:3], [f"{m} one"] * 2 + [f"{m} three"])
        for e in got:
            self.assertEqual((e["sourcetype"], e["host"], e["source"], e["index"]),
                             ("raw:st", "rawhost", "a b", "idx"))

    # Verifies gzip bodies are inflated, other encodings are 415.
    def test_content_encoding(self):
        m = marker()
        body = "".join(json.dumps({"event": f"{m} {i}"}) for i in range(100))
        self.assertEqual(self.post(body=body, gzip_body=True), (200, {"text": "Success", "code": 0}))
        self.r.wait_events(lambda e: m in event_text(e), 100, "gzip events")
        s, _ = self.post(body=b"x\x9c", headers={"Content-Encoding": "deflate"})
        self.assertEqual(s, 415)
        s, b = self.post(body=b"\x1f\x8b not gzip", headers={"Content-Encoding": "gzip"})
        self.assertEqual((s, b["code"]), (400, 6))

    # Verifies bodies over max_body_bytes are 413, raw or after inflation (gzip bomb).
    def test_body_too_large(self):
        big = json.dumps({"event": "x" * (MAX_BODY + 10)})
        s, _ = self.post(body=big)
        self.assertEqual(s, 413)
        bomb = json.dumps({"event": "y" * (MAX_BODY * 20)})
        self.assertLess(len(gzip.compress(bomb.encode())), MAX_BODY)
        s, _ = self.post(body=bomb, gzip_body=True)
        self.assertEqual(s, 413)
        # Chunked transfer encoding over the limit.
        conn = http.client.HTTPConnection("127.0.0.1", self.r.port, timeout=10)
        try:
            conn.request("POST", "/services/collector/event", body=iter([big.encode()]),
                         headers={"Authorization": f"Splunk {TOKEN}"}, encode_chunked=True)
            self.assertEqual(conn.getresponse().status, 413)
        finally:
            conn.close()
        self.sent(marker())  # still serving

    # Verifies /ack is code 14 and replies carry no ackId while acknowledgements are off.
    def test_ack_disabled(self):
        self.assertEqual(self.post("/services/collector/ack", body='{"acks":[0]}',
                                   headers={"X-Splunk-Request-Channel": CHANNEL}),
                         (400, {"text": "ACK is disabled", "code": 14}))
        s, b = self.post(body=json.dumps({"event": marker()}), headers={"X-Splunk-Request-Channel": CHANNEL})
        self.assertEqual((s, b), (200, {"text": "Success", "code": 0}))

    # Verifies several requests share one keep-alive connection, errors included.
    def test_keep_alive(self):
        m = marker()
        conn = http.client.HTTPConnection("127.0.0.1", self.r.port, timeout=10)
        try:
            for i in range(5):
                conn.request("POST", "/services/collector/event", body=json.dumps({"event": f"{m} {i}"}),
                             headers={"Authorization": f"Splunk {TOKEN}"})
                r = conn.getresponse()
                self.assertEqual(r.status, 200)
                r.read()
                conn.request("POST", "/services/collector/event", body=json.dumps({"event": "x"}),
                             headers={"Authorization": "Splunk wrong"})
                r = conn.getresponse()
                self.assertEqual(r.status, 403)
                r.read()
            self.assertIsNotNone(conn.sock)  # never closed by the server
        finally:
            conn.close()
        self.r.wait_events(lambda e: m in event_text(e), 5, "keep-alive events")

    # Verifies Expect: 100-continue is answered before the body is sent, and early rejection too.
    def test_expect_continue(self):
        m = marker()
        body = json.dumps({"event": m}).encode()

        def exchange(token, length, send_body):
            with socket.create_connection(("127.0.0.1", self.r.port), timeout=10) as s:
                s.sendall((f"POST /services/collector/event HTTP/1.1\r\nHost: x\r\n"
                           f"Authorization: Splunk {token}\r\nContent-Length: {length}\r\n"
                           f"Expect: 100-continue\r\n\r\n").encode())
                first = s.recv(4096).decode()
                if send_body and first.startswith("HTTP/1.1 100"):
                    s.sendall(body)
                    rest = b""
                    while b"}" not in rest:
                        chunk = s.recv(4096)
                        if not chunk:
                            break
                        rest += chunk
                    return first, rest.decode()
                return first, ""

        first, rest = exchange(TOKEN, len(body), True)
        self.assertTrue(first.startswith("HTTP/1.1 100 Continue"), first)
        self.assertIn('"code":0', first + rest)
        first, _ = exchange("wrong", len(body), False)
        self.assertTrue(first.startswith("HTTP/1.1 403"), first)
        first, _ = exchange(TOKEN, MAX_BODY + 1, False)
        self.assertTrue(first.startswith("HTTP/1.1 413"), first)
        self.r.wait_events(lambda e: e.get("event") == m, 1, "100-continue event")

    # Verifies the admin endpoint: metrics in Prometheus text, health, readiness, 404.
    def test_admin_endpoint(self):
        self.sent(marker())
        s, text = http_get(f"http://127.0.0.1:{self.r.admin_port}/metrics")
        self.assertEqual(s, 200)
        self.assertIn("logship_component_received_events_total", text)
        self.assertGreaterEqual(metric(self.r.admin_port, "logship_component_received_events_total",
                                       component_id="hec_in"), 1)
        self.assertEqual(http_get(f"http://127.0.0.1:{self.r.admin_port}/health"), (200, '{"status":"ok"}'))
        self.assertEqual(http_get(f"http://127.0.0.1:{self.r.admin_port}/ready")[0], 200)
        self.assertEqual(http_get(f"http://127.0.0.1:{self.r.admin_port}/nope")[0], 404)
        with urllib_open(f"http://127.0.0.1:{self.r.admin_port}/metrics") as r:
            self.assertEqual(r.headers["Content-Type"], "text/plain; version=0.0.4; charset=utf-8")

    # Verifies a batch from Splunk's JavaScript client (npm splunk-logging) arrives intact.
    def test_splunk_logging_client(self):
        if not os.path.isdir(os.path.join(NODE_MODULES, "splunk-logging")):
            self.fail(f"{NODE_MODULES}/splunk-logging is missing: run `npm ci` in tests/")
        script = os.path.join(os.path.dirname(__file__), "splunk_logging_send.js")
        p = subprocess.run(["node", script, f"http://127.0.0.1:{self.r.port}", TOKEN, "50", "10"],
                           capture_output=True, text=True, timeout=60,
                           env=dict(os.environ, LOGSHIP_NODE_MODULES=NODE_MODULES))
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        summary = json.loads(p.stdout.strip().splitlines()[-1])
        self.assertEqual(summary["requests"], 5)
        self.assertEqual([b["body"] for b in summary["bodies"]], [{"text": "Success", "code": 0}] * 5)
        got = self.r.wait_events(lambda e: e.get("source") == "splunk-logging", 50, "splunk-logging events")
        self.assertEqual(sorted(e["event"]["message"]["seq"] for e in got), list(range(50)))
        for e in got:
            i = e["event"]["message"]["seq"]
            self.assertEqual(e["event"], {"message": {"seq": i, "text": f"event {i} \"quoted\" \\ é日本"},
                                          "severity": "info"})
            self.assertEqual((e["host"], e["sourcetype"], e["index"]), ("node-host", "npm:test", "main"))
            self.assertAlmostEqual(e["time"], 1700000000 + i + 0.25, places=3)


def urllib_open(url):
    import urllib.request
    return urllib.request.urlopen(url, timeout=5)


class HecReceiverAckTest(unittest.TestCase):
    """Acknowledgements on: channels, ackIds, /ack polling."""

    def setUp(self):
        self.r = Receiver(acks=True)
        self.addCleanup(self.r.cleanup)
        self.r.start()

    def post(self, path="/services/collector/event", body=b"", **kw):
        return request(self.r.port, path, body=body, **kw)

    # Verifies channel checks (10, 11), per-channel ackIds and an ack that is true once, then false.
    def test_ack_flow(self):
        m = marker()
        body = json.dumps({"event": m})
        self.assertEqual(self.post(body=body), (400, {"text": "Data channel is missing", "code": 10}))
        self.assertEqual(self.post(body=body, headers={"X-Splunk-Request-Channel": "not-a-guid"}),
                         (400, {"text": "Invalid data channel", "code": 11}))
        hdr = {"X-Splunk-Request-Channel": CHANNEL}
        self.assertEqual(self.post(body=body, headers=hdr), (200, {"text": "Success", "code": 0, "ackId": 0}))
        self.assertEqual(self.post(f"/services/collector/raw?channel={CHANNEL}", body=m + " raw"),
                         (200, {"text": "Success", "code": 0, "ackId": 1}))
        other = str(uuid.uuid4())
        self.assertEqual(self.post(body=body, headers={"X-Splunk-Request-Channel": other}),
                         (200, {"text": "Success", "code": 0, "ackId": 0}))
        self.assertEqual(self.post("/services/collector/ack", body='{"acks":[0]}'),
                         (400, {"text": "Data channel is missing", "code": 10}))

        # A poll may catch one id true before the other: then it is forgotten; poll each id alone.
        seen = set()

        def poll():
            for i in (0, 1):
                if i in seen:
                    continue
                s, b = self.post("/services/collector/ack", body=json.dumps({"acks": [i]}), headers=hdr)
                self.assertEqual(s, 200)
                if b["acks"][str(i)]:
                    seen.add(i)
            return len(seen) == 2
        wait_for(poll, 30, "acks 0 and 1 true")
        s, b = self.post("/services/collector/ack", body='{"acks":[0,1,7]}', headers=hdr)
        self.assertEqual((s, b), (200, {"acks": {"0": False, "1": False, "7": False}}))
        self.assertEqual(len(self.r.wait_events(lambda e: m in event_text(e), 3, "acked events")), 3)
        self.assertEqual(self.post("/services/collector/ack", body="nope", headers=hdr)[1]["code"], 6)


class HecReceiverAckChannelLimitsTest(unittest.TestCase):
    """Acknowledgement channels are bounded per token and per client address, and idle ones expire:
    one token holder opening thousands of channels cannot lock the others out."""

    def setUp(self):
        self.r = Receiver(extra={"acknowledgements": {
            "enabled": True, "max_channels_per_token": 20, "max_channels_per_client": 30,
            "channel_idle_timeout": "3s"}})
        self.addCleanup(self.r.cleanup)
        self.r.start()

    def send(self, token, channel, text="x"):
        return request(self.r.port, "/services/collector/event", body=json.dumps({"event": text}), token=token,
                       headers={"X-Splunk-Request-Channel": channel})

    def ack(self, token, channel, ids):
        return request(self.r.port, "/services/collector/ack", body=json.dumps({"acks": ids}), token=token,
                       headers={"X-Splunk-Request-Channel": channel})

    # Verifies the per-token and per-client limits (503 code 9 beyond them, other tokens still
    # served), that a channel whose ackIds were all reported makes room, that channels are per
    # token, and that idle channels expire.
    def test_channels_per_token_and_per_client(self):
        mine = [str(uuid.uuid4()) for _ in range(21)]
        for ch in mine[:20]:
            self.assertEqual(self.send(TOKEN, ch), (200, {"text": "Success", "code": 0, "ackId": 0}))
        self.assertEqual(self.send(TOKEN, mine[20]), (503, {"text": "Server is busy", "code": 9}))
        # An existing channel keeps working; another token is still served.
        self.assertEqual(self.send(TOKEN, mine[0]), (200, {"text": "Success", "code": 0, "ackId": 1}))
        others = [str(uuid.uuid4()) for _ in range(11)]
        for ch in others[:10]:
            self.assertEqual(self.send(OTHER_TOKEN, ch)[0], 200)
        # 30 channels from this client address: the client's limit, whatever the token.
        self.assertEqual(self.send(OTHER_TOKEN, others[10]), (503, {"text": "Server is busy", "code": 9}))
        # Channels are per token: the other token neither sees nor consumes this token's acks.
        self.assertEqual(self.ack(OTHER_TOKEN, mine[0], [0, 1]), (200, {"acks": {"0": False, "1": False}}))
        seen = set()

        def drained():
            s, b = self.ack(TOKEN, mine[0], [0, 1])
            self.assertEqual(s, 200)
            seen.update(int(k) for k, v in b["acks"].items() if v)
            return seen == {0, 1}
        wait_for(drained, 30, "both ackIds of the first channel true")
        # That channel holds nothing now: a new channel of the same token takes its place.
        self.assertEqual(self.send(TOKEN, mine[20]), (200, {"text": "Success", "code": 0, "ackId": 0}))
        self.assertEqual(self.send(TOKEN, str(uuid.uuid4())), (503, {"text": "Server is busy", "code": 9}))
        # Idle channels expire (channel_idle_timeout): new channels are served again.
        time.sleep(3.5)
        for _ in range(20):
            self.assertEqual(self.send(TOKEN, str(uuid.uuid4())), (200, {"text": "Success", "code": 0, "ackId": 0}))
        log = self.r.proc.log()
        self.assertNotIn(TOKEN, log)


class HecReceiverTlsTest(unittest.TestCase):
    """HTTPS with a self-signed certificate; client certificates when ca_file is set."""

    def setUp(self):
        self.certdir = TempDir()
        self.addCleanup(self.certdir.cleanup)
        self.cert, self.key = make_cert(self.certdir.path)

    # Verifies HTTPS serves health and events to a verifying client; plain HTTP gets no answer.
    def test_tls(self):
        r = Receiver(tls={"cert_file": self.cert, "key_file": self.key})
        self.addCleanup(r.cleanup)
        r.start(tls_ca=self.cert)
        m = marker()
        self.assertEqual(request(r.port, "/services/collector/event", body=json.dumps({"event": m}),
                                 tls_ca=self.cert), (200, {"text": "Success", "code": 0}))
        self.assertEqual(request(r.port, "/services/collector/event", body=json.dumps({"event": m}),
                                 token="wrong", tls_ca=self.cert), (403, {"text": "Invalid token", "code": 4}))
        r.wait_events(lambda e: e.get("event") == m, 1, "TLS event")
        with self.assertRaises((http.client.HTTPException, OSError)):
            request(r.port, "/services/collector/health", method="GET", token=None)
        self.assertEqual(r.stop(), 0)

    # Verifies ca_file requires a client certificate the CA verifies.
    def test_mutual_tls(self):
        r = Receiver(tls={"cert_file": self.cert, "key_file": self.key, "ca_file": self.cert})
        self.addCleanup(r.cleanup)
        r.start(tls_ca=self.cert, client_cert=(self.cert, self.key))
        m = marker()
        self.assertEqual(request(r.port, "/services/collector/event", body=json.dumps({"event": m}),
                                 tls_ca=self.cert, client_cert=(self.cert, self.key)),
                         (200, {"text": "Success", "code": 0}))
        with self.assertRaises((ssl.SSLError, OSError, http.client.HTTPException)):
            request(r.port, "/services/collector/health", method="GET", token=None, tls_ca=self.cert)
        r.wait_events(lambda e: e.get("event") == m, 1, "mTLS event")

    # Verifies a missing certificate file is a configuration error (exit code 2, checked when the
    # config is read, with its position) that names the file.
    def test_bad_certificate_path(self):
        missing = self.certdir.join("missing.pem")
        r = Receiver(tls={"cert_file": missing, "key_file": self.key})
        self.addCleanup(r.cleanup)
        r.proc.start()
        r.proc.proc.wait(timeout=30)
        self.assertEqual(r.stop(), 2, r.proc.log())
        self.assertIn(missing, r.proc.log())
        self.assertRegex(r.proc.log(), r"\.yaml:\d+:\d+: ")


class HecReceiverTokensFileTest(unittest.TestCase):
    # Verifies tokens_file is re-read on SIGHUP: a token added is accepted, a token removed is
    # refused, without a restart.
    def test_sighup_reloads_the_tokens_file(self):
        tmp = TempDir()
        self.addCleanup(tmp.cleanup)
        tokens = tmp.join("tokens")

        def write_tokens(text):
            with open(tokens + ".new", "w") as f:
                f.write(text)
            os.chmod(tokens + ".new", 0o600)
            os.replace(tokens + ".new", tokens)

        write_tokens("tok-a\n")
        port = free_port()
        cfg = {"data_dir": tmp.join("data"),
               "sources": {"hec_in": {"type": "splunk_hec", "address": f"127.0.0.1:{port}", "tokens_file": tokens}},
               "sinks": {"out": {"type": "file", "inputs": ["hec_in"], "path": tmp.join("out.jsonl")}}}
        proc = Logship(write_config(tmp.join("r.yaml"), cfg), name="receiver")
        proc.start()
        self.addCleanup(lambda: proc.alive() and proc.stop())
        wait_hec_up(port)
        body = json.dumps({"event": "x"})
        ok, refused = (200, {"text": "Success", "code": 0}), (403, {"text": "Invalid token", "code": 4})
        self.assertEqual(request(port, "/services/collector/event", body=body, token="tok-a"), ok)
        self.assertEqual(request(port, "/services/collector/event", body=body, token="tok-b"), refused)
        write_tokens("tok-a\n  tok-b  \r\n\n")
        proc.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: request(port, "/services/collector/event", body=body, token="tok-b") == ok, 10,
                 "tok-b accepted after SIGHUP")
        write_tokens("tok-b\n")  # tok-a revoked
        proc.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: request(port, "/services/collector/event", body=body, token="tok-a") == refused, 10,
                 "tok-a refused after SIGHUP")
        self.assertEqual(request(port, "/services/collector/event", body=body, token="tok-b"), ok)
        self.assertEqual(proc.stop(), 0)
        self.assertNotIn("tok-a", proc.log())
        self.assertNotIn("tok-b", proc.log())


class HecReceiverShutdownTest(unittest.TestCase):
    # Verifies SIGTERM closes idle keep-alive connections and the process exits 0 promptly.
    def test_idle_connections_do_not_block_shutdown(self):
        r = Receiver()
        self.addCleanup(r.cleanup)
        r.start()
        conn = http.client.HTTPConnection("127.0.0.1", r.port, timeout=10)
        conn.request("POST", "/services/collector/event", body=json.dumps({"event": "idle"}),
                     headers={"Authorization": f"Splunk {TOKEN}"})
        self.assertEqual(conn.getresponse().read(), b'{"text":"Success","code":0}')
        try:
            self.assertEqual(r.stop(), 0, r.proc.log())
        finally:
            conn.close()
        self.assertEqual([e["event"] for e in r.events()], ["idle"])

    # Verifies `logship check` accepts the receiver's keys and rejects an unknown one.
    def test_config_keys(self):
        r = Receiver(extra={"sourcetype": "default:st", "host": "h"})
        self.addCleanup(r.cleanup)
        p = run_logship("check", "-c", r.config)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        bad = Receiver(extra={"max_bodybytes": 5})
        self.addCleanup(bad.cleanup)
        p = run_logship("check", "-c", bad.config)
        self.assertEqual(p.returncode, 2, p.stdout + p.stderr)
        self.assertIn("max_bodybytes", p.stdout + p.stderr)


def read_reply(sock):
    """Reads one HTTP answer (headers + Content-Length body) from a raw socket."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            return data.decode(errors="replace")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    n = 0
    for ln in head.split(b"\r\n"):
        if ln.lower().startswith(b"content-length:"):
            n = int(ln.split(b":")[1])
    while len(rest) < n:
        chunk = sock.recv(4096)
        if not chunk:
            break
        rest += chunk
    return (head + b"\r\n\r\n" + rest).decode(errors="replace")


from filetail import peak_rss_mib  # noqa: E402


class HecReceiverHardeningTest(unittest.TestCase):
    # Verifies 60 connections each sending an 8 MiB body with a wrong token are answered 403
    # without the bodies being buffered (peak RSS grows by far less than 60 x 8 MiB), and each
    # connection stays usable (keep-alive) for a next, valid request.
    def test_rejected_bodies_are_never_buffered(self):
        r = Receiver(extra={"max_body_bytes": "8MiB"})
        self.addCleanup(r.cleanup)
        r.start()
        pid = r.proc.proc.pid
        base = peak_rss_mib(pid)
        body = b"x" * (8 << 20)
        results = []

        def client(i):
            with socket.create_connection(("127.0.0.1", r.port), timeout=60) as sk:
                sk.sendall((f"POST /services/collector/event HTTP/1.1\r\nHost: x\r\n"
                            f"Authorization: Splunk wrong-{i}\r\nContent-Length: {len(body)}\r\n\r\n").encode())
                sk.sendall(body)
                first = read_reply(sk)
                ev = json.dumps({"event": f"after-reject {i}"}).encode()
                sk.sendall((f"POST /services/collector/event HTTP/1.1\r\nHost: x\r\n"
                            f"Authorization: Splunk {TOKEN}\r\nContent-Length: {len(ev)}\r\n\r\n").encode() + ev)
                second = read_reply(sk)
                results.append((first, second))

        threads = [threading.Thread(target=client, args=(i,)) for i in range(60)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        self.assertEqual(len(results), 60)
        for first, second in results:
            self.assertTrue(first.startswith("HTTP/1.1 403"), first[:200])
            self.assertTrue(second.startswith("HTTP/1.1 200"), second[:200])
        peak = peak_rss_mib(pid)
        print(f"60 x 8 MiB rejected bodies: peak RSS {base:.1f} -> {peak:.1f} MiB")
        self.assertLess(peak - base, 60, "rejected bodies were buffered")
        r.wait_events(lambda e: str(e.get("event", "")).startswith("after-reject"), 60, "the valid requests")

    # Verifies a request with 10,000 distinct host values (Splunk accepts it; the limit was 4,096)
    # is accepted whole and every event keeps its own host.
    def test_ten_thousand_distinct_metadata_values_in_one_request(self):
        r = Receiver(extra={"max_body_bytes": "8MiB"})
        self.addCleanup(r.cleanup)
        r.start()
        body = "".join(json.dumps({"event": f"m{i}", "host": f"host-{i}"}) for i in range(10000))
        self.assertEqual(request(r.port, "/services/collector/event", body=body), (200, {"text": "Success", "code": 0}))
        evs = r.wait_events(lambda e: str(e.get("event", "")).startswith("m"), 10000, "10,000 events")
        self.assertEqual({e["event"]: e["host"] for e in evs}, {f"m{i}": f"host-{i}" for i in range(10000)})

    # Verifies broken chunked framing (a chunk size that is not hex, or 20 hex digits) is answered
    # 400 instead of a silent close.
    def test_bad_chunked_framing_is_answered_400(self):
        r = Receiver()
        self.addCleanup(r.cleanup)
        r.start()
        for size in ("zz", "1" * 20):
            with self.subTest(size=size), socket.create_connection(("127.0.0.1", r.port), timeout=10) as sk:
                sk.sendall((f"POST /services/collector/event HTTP/1.1\r\nHost: x\r\n"
                            f"Authorization: Splunk {TOKEN}\r\nTransfer-Encoding: chunked\r\n\r\n"
                            f"{size}\r\n{{\"event\":\"x\"}}\r\n0\r\n\r\n").encode())
                answer = read_reply(sk)
                self.assertTrue(answer.startswith("HTTP/1.1 400"), answer[:200])

    # Verifies that with max_pending_body_bytes reached (one request's body still arriving), a new
    # request gets 503 code 9 (Server is busy, with Retry-After) and succeeds once memory is free.
    def test_busy_when_bodies_in_memory_reach_the_limit(self):
        r = Receiver(extra={"max_body_bytes": "1MiB", "max_pending_body_bytes": "1MiB"})
        self.addCleanup(r.cleanup)
        r.start()
        ev = json.dumps({"event": "held"}).encode()
        held = ev + b" " * ((1 << 20) - len(ev))
        a = socket.create_connection(("127.0.0.1", r.port), timeout=10)
        self.addCleanup(a.close)
        a.sendall((f"POST /services/collector/event HTTP/1.1\r\nHost: x\r\n"
                   f"Authorization: Splunk {TOKEN}\r\nContent-Length: {len(held)}\r\n\r\n").encode() + held[:1000])

        def busy():
            s_, b_ = request(r.port, "/services/collector/event", body=json.dumps({"event": "small"}))
            return (s_, b_) if s_ == 503 else None
        status, body = wait_for(busy, 10, "a 503 while the held body is in memory")
        self.assertEqual(body, {"text": "Server is busy", "code": 9})
        a.sendall(held[1000:])
        self.assertTrue(read_reply(a).startswith("HTTP/1.1 200"))
        # The held body's reservation is released just after its reply is written: a request sent
        # the instant that reply is read may still meet it (a 503), so the next one is polled.
        wait_for(lambda: request(r.port, "/services/collector/event", body=json.dumps({"event": "small"}))[0] == 200,
                 10, "a 200 once the held body is released")


if __name__ == "__main__":
    unittest.main()
