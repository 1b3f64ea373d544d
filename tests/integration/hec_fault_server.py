#!/usr/bin/env python3
"""A fault-injecting Splunk HEC test server (python3 stdlib only), following /work/shared/HEC.md.

Run it as a subprocess (what the tests do):

    python3 hec_fault_server.py --port 0 --port-file F --token T [--acks] [--ack-mode immediate]
        [--tls-cert C --tls-key K [--client-ca CA]] [--control-port-file G]

It writes its bound data port to F (and, with --control-port-file, the port of a plain-HTTP
control listener to G; the control paths are also served on the data port when it is plain HTTP).

Data paths (HEC.md §1.1): /services/collector, /services/collector/event, /services/collector/event/1.0,
/services/collector/raw[/1.0], /services/collector/ack, /services/collector/health[/1.0].

Control API (JSON):
    POST /_control   {"key": value, ...}  sets switches (see DEFAULTS); answers the current switches
    POST /_reset                          clears stats, recorded events, ack state, cookies (keeps switches)
    GET  /_stats                          counters (see Recorder.stats)
    GET  /_seqs                           {"counts": {"<seq>": n, ...}} of accepted events
    GET  /_events?offset=N&limit=M        accepted events (parsed objects), in arrival order
    GET  /_requests                       a log of data requests: time, path, status, events, channel

Event numbering: an event whose `event` text contains `seq=<digits>` has that sequence number
(the tests write `seq=0000123 ...`). `reject_seq` rejects the request holding such an event with
400 code 6 and `invalid-event-number` (the events before it are recorded as indexed, as Splunk does).

Also importable: HecServerProcess (subprocess wrapper with control helpers) and HecFaultServer
(the in-process server; the tests use the subprocess).
"""
import argparse
import gzip
import json
import os
import re
import socket
import ssl
import struct
import sys
import threading
import time
import urllib.parse
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SEQ_RE = re.compile(r"seq=(\d+)")
GUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
EVENT_PATHS = ("/services/collector", "/services/collector/event", "/services/collector/event/1.0")
RAW_PATHS = ("/services/collector/raw", "/services/collector/raw/1.0")
ACK_PATHS = ("/services/collector/ack", "/services/collector/ack/1.0")
HEALTH_PATHS = ("/services/collector/health", "/services/collector/health/1.0")
COOKIE_NAME = "hecsticky"
COOKIE_GRACE_S = 0.5  # a request arriving this long after the first Set-Cookie should carry the cookie

DEFAULTS = {
    "token": "test-token",          # accepted token (changeable at runtime)
    "unknown_token_status": 403,    # HEC.md §1.2: 403 code 4; set 401 to answer 401 code 4 instead
    "force_401": False,             # 401 {"text":"Invalid token","code":4} even to the right token
    "acks": False,                  # useACK on the token
    "ack_mode": "immediate",        # immediate | delayed | false_then_true | never
    "ack_delay_s": 1.0,             # delayed: true once the ackId is this old
    "fail_503": 0,                  # next N data requests → 503 code 9
    "retry_after": None,            # seconds, sent with the 503s (and fail_status answers)
    "fail_status": 0,               # next fail_count data requests → fail_status/fail_code/fail_text
    "fail_code": 8,
    "fail_text": "Internal server error",
    "fail_count": 0,
    "delay_ms": 0,                  # every data request answered after this delay
    "delay_count": -1,              # -1: every request; N: only the next N requests are delayed
    "reset": 0,                     # next N data requests: read part of the body, then RST
    "reject_seq": [],               # events with these seqs → 400 code 6 + invalid-event-number
    "max_body": 0,                  # decompressed body > N bytes → 413
    "down": False,                  # close every new/next connection at once (RST)
    "health_code": 17,              # 17 healthy (200); 18 / 23 → 503
    "set_cookie": True,             # Set-Cookie: hecsticky=<channel> on responses to channel requests
    "raw_requires_channel": False,  # /raw needs a channel even without acks (older Splunk)
}

HEALTH_TEXT = {17: "HEC is healthy", 18: "HEC is unhealthy, queues are full",
               19: "HEC is unhealthy, ack service unavailable", 20: "HEC is unhealthy, ack service unavailable",
               23: "HEC is unhealthy, queues are full"}


class Recorder:
    """Everything the server saw, under one lock."""

    def __init__(self):
        self.lock = threading.Lock()
        self.reset()

    def reset(self):
        self.events = []                 # accepted events (parsed objects), arrival order
        self.seq_counts = {}             # seq -> times accepted
        self.status_counts = {}          # "503" -> n (data requests only)
        self.requests = []               # request log
        self.data_requests = 0
        self.ack_polls = 0
        self.ack_ids_polled = 0
        self.acks_true = 0
        self.ack_requests_by_status = {}
        self.health_checks = 0
        self.resets_done = 0
        self.down_refused = 0
        self.tls_handshake_failures = 0
        self.tls_handshake_errors = []
        self.client_cert_subjects = []
        self.bytes_received = 0          # bodies as sent (compressed)
        self.bytes_decompressed = 0
        self.gzip_requests = 0
        self.cookie_expected = 0         # requests on a channel whose cookie was already set
        self.cookie_returned = 0         # ... that carried it back
        self.ack_cookie_expected = 0
        self.ack_cookie_returned = 0
        self.channels = set()
        self.connections = 0
        self.max_concurrent = 0
        self.in_flight = 0
        self.rejected_seqs = []          # seqs answered with invalid-event-number
        self.failed_request_seqs = []    # seqs of requests answered 4xx (other than auth)
        self.user_agents = set()

    def stats(self):
        with self.lock:
            dups = sum(c - 1 for c in self.seq_counts.values() if c > 1)
            return {
                "events_total": len(self.events),
                "unique_seqs": len(self.seq_counts),
                "duplicates": dups,
                "duplicated_seqs": sum(1 for c in self.seq_counts.values() if c > 1),
                "requests_by_status": dict(self.status_counts),
                "data_requests": self.data_requests,
                "ack_polls": self.ack_polls,
                "ack_ids_polled": self.ack_ids_polled,
                "acks_true": self.acks_true,
                "ack_requests_by_status": dict(self.ack_requests_by_status),
                "health_checks": self.health_checks,
                "resets_done": self.resets_done,
                "down_refused": self.down_refused,
                "tls_handshake_failures": self.tls_handshake_failures,
                "tls_handshake_errors": self.tls_handshake_errors[-5:],
                "client_cert_subjects": self.client_cert_subjects[-5:],
                "bytes_received": self.bytes_received,
                "bytes_decompressed": self.bytes_decompressed,
                "gzip_requests": self.gzip_requests,
                "cookie_expected": self.cookie_expected,
                "cookie_returned": self.cookie_returned,
                "ack_cookie_expected": self.ack_cookie_expected,
                "ack_cookie_returned": self.ack_cookie_returned,
                "channels": sorted(self.channels),
                "connections": self.connections,
                "max_concurrent": self.max_concurrent,
                "in_flight": self.in_flight,
                "rejected_seqs": list(self.rejected_seqs),
                "failed_request_seqs": list(self.failed_request_seqs),
                "user_agents": sorted(self.user_agents),
            }


def _seq_of(ev):
    e = ev.get("event") if isinstance(ev, dict) else None
    if isinstance(e, str):
        m = SEQ_RE.search(e)
        if m:
            return int(m.group(1))
    return None


def parse_concatenated(text):
    """Concatenated JSON objects → (objects, error index or None). HEC.md §1.4."""
    dec = json.JSONDecoder()
    out, i, n = [], 0, len(text)
    while True:
        while i < n and text[i] in " \t\r\n":
            i += 1
        if i >= n:
            return out, None
        try:
            obj, i = dec.raw_decode(text, i)
        except ValueError:
            return out, len(out)
        out.append(obj)


class HecHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "HecFaultServer/1.0"
    sys_version = ""

    # -- plumbing ------------------------------------------------------------------------------
    def log_message(self, fmt, *args):  # quiet
        pass

    def setup(self):
        super().setup()
        srv = self.server
        if not getattr(srv, "is_control", False):
            with srv.rec.lock:
                srv.rec.connections += 1
        if isinstance(self.connection, ssl.SSLSocket):
            try:
                self.connection.do_handshake()
                peer = self.connection.getpeercert()
                if peer:
                    with srv.rec.lock:
                        srv.rec.client_cert_subjects.append(str(peer.get("subject")))
            except (ssl.SSLError, OSError) as e:
                with srv.rec.lock:
                    srv.rec.tls_handshake_failures += 1
                    srv.rec.tls_handshake_errors.append(str(e))
                self.close_connection = True
                self._handshake_failed = True
                return
        self._handshake_failed = False

    def handle(self):
        if getattr(self, "_handshake_failed", False):
            return
        try:
            super().handle()
        except (ConnectionError, ssl.SSLError, OSError):
            pass

    def _abort(self):
        """Closes the connection with RST, without answering."""
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        self.close_connection = True
        try:
            if isinstance(self.connection, ssl.SSLSocket):
                raw = self.connection
                raw.close()
            else:
                self.connection.close()
        except OSError:
            pass

    def _reply(self, status, obj, extra_headers=None):
        body = json.dumps(obj, separators=(",", ":")).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=UTF-8")
            self.send_header("Content-Length", str(len(body)))
            for k, v in (extra_headers or []):
                self.send_header(k, v)
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(body)
            self.wfile.flush()
        except (ConnectionError, OSError):
            self.close_connection = True

    def _read_body(self, limit=None):
        n = int(self.headers.get("Content-Length") or 0)
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        if limit is not None:
            n = min(n, limit)
        return self.rfile.read(n) if n > 0 else b""

    def _query(self):
        u = urllib.parse.urlsplit(self.path)
        return u.path.rstrip("/") or "/", dict(urllib.parse.parse_qsl(u.query))

    # -- dispatch ------------------------------------------------------------------------------
    def do_GET(self):
        path, q = self._query()
        if path.startswith("/_"):
            return self._control_get(path, q)
        if path in HEALTH_PATHS:
            with self.server.rec.lock:
                self.server.rec.health_checks += 1
            code = int(self.server.cfg["health_code"])
            return self._reply(200 if code == 17 else 503, {"text": HEALTH_TEXT.get(code, "unhealthy"), "code": code})
        self._reply(404, {"text": "The requested URL was not found on this server.", "code": 404})

    def do_POST(self):
        path, q = self._query()
        if path.startswith("/_"):
            return self._control_post(path)
        if path in EVENT_PATHS or path in RAW_PATHS:
            return self._data(path, q)
        if path in ACK_PATHS:
            return self._ack(q)
        self._read_body()
        self._reply(404, {"text": "The requested URL was not found on this server.", "code": 404})

    # -- control -------------------------------------------------------------------------------
    def _control_get(self, path, q):
        rec = self.server.rec
        if path == "/_stats":
            s = rec.stats()
            s["config"] = dict(self.server.cfg)
            return self._reply(200, s)
        if path == "/_seqs":
            with rec.lock:
                return self._reply(200, {"counts": {str(k): v for k, v in rec.seq_counts.items()}})
        if path == "/_events":
            off, lim = int(q.get("offset", 0)), int(q.get("limit", 10 ** 9))
            with rec.lock:
                return self._reply(200, {"events": rec.events[off:off + lim], "total": len(rec.events)})
        if path == "/_requests":
            with rec.lock:
                return self._reply(200, {"requests": list(rec.requests)})
        self._reply(404, {"text": "unknown control path"})

    def _control_post(self, path):
        body = self._read_body()
        if path == "/_control":
            try:
                upd = json.loads(body or b"{}")
            except ValueError:
                return self._reply(400, {"text": "bad json"})
            with self.server.cfg_lock:
                for k, v in upd.items():
                    if k not in DEFAULTS:
                        return self._reply(400, {"text": f"unknown switch {k}"})
                    if k == "reject_seq":
                        v = [int(x) for x in (v if isinstance(v, list) else [v])]
                    self.server.cfg[k] = v
                cur = dict(self.server.cfg)
            return self._reply(200, cur)
        if path == "/_reset":  # a fresh server: stats, events, ack state and cookies (keeps switches)
            with self.server.rec.lock:
                self.server.rec.reset()
            with self.server.ack_lock:
                self.server.acks.clear()
            with self.server.cookie_lock:
                self.server.cookies_set.clear()
            return self._reply(200, {"ok": True})
        self._reply(404, {"text": "unknown control path"})

    # -- switches consumed per request ----------------------------------------------------------
    def _take(self, key):
        """Decrements counter switch `key` if positive; True when this request takes one."""
        with self.server.cfg_lock:
            if self.server.cfg[key] > 0:
                self.server.cfg[key] -= 1
                return True
        return False

    def _auth(self):
        """HEC.md §1.2. Returns None when authorised, else (status, body)."""
        cfg = self.server.cfg
        h = self.headers.get("Authorization")
        if h is None:
            return 401, {"text": "Token is required", "code": 2}
        if not h.startswith("Splunk "):
            return 401, {"text": "Invalid authorization", "code": 3}
        if cfg["force_401"]:
            return 401, {"text": "Invalid token", "code": 4}
        if h[len("Splunk "):].strip() != cfg["token"]:
            return int(cfg["unknown_token_status"]), {"text": "Invalid token", "code": 4}
        return None

    def _channel(self, q):
        return self.headers.get("X-Splunk-Request-Channel") or q.get("channel")

    def _cookie_check(self, channel, is_ack):
        """Stickiness: did the client send back the cookie we set for this channel?"""
        rec = self.server.rec
        if not channel:
            return
        with self.server.cookie_lock:
            t_set = self.server.cookies_set.get(channel)
        # Requests the client sent before it could have read the Set-Cookie are not expected to carry it.
        if t_set is None or time.monotonic() - t_set < COOKIE_GRACE_S:
            return
        got = False
        for c in self.headers.get_all("Cookie") or []:
            for part in c.split(";"):
                k, _, v = part.strip().partition("=")
                if k == COOKIE_NAME and v == channel:
                    got = True
        with rec.lock:
            if is_ack:
                rec.ack_cookie_expected += 1
                rec.ack_cookie_returned += int(got)
            else:
                rec.cookie_expected += 1
                rec.cookie_returned += int(got)

    def _cookie_headers(self, channel):
        if not channel or not self.server.cfg["set_cookie"]:
            return []
        with self.server.cookie_lock:
            self.server.cookies_set.setdefault(channel, time.monotonic())
        return [("Set-Cookie", f"{COOKIE_NAME}={channel}; Path=/")]

    # -- data ----------------------------------------------------------------------------------
    def _data(self, path, q):
        srv, rec, cfg = self.server, self.server.rec, self.server.cfg
        t_start = time.time()
        with rec.lock:
            rec.in_flight += 1
            rec.max_concurrent = max(rec.max_concurrent, rec.in_flight)
        try:
            self._data_inner(path, q, t_start)
        finally:
            with rec.lock:
                rec.in_flight -= 1

    def _log_request(self, t_start, path, status, code, n_events, channel, seqs=None, note=None):
        rec = self.server.rec
        with rec.lock:
            rec.status_counts[str(status)] = rec.status_counts.get(str(status), 0) + 1
            entry = {"t": t_start, "t_end": time.time(), "path": path, "status": status, "code": code,
                     "events": n_events, "channel": channel, "port": self.server.server_address[1]}
            if note:
                entry["note"] = note
            rec.requests.append(entry)
            if seqs is not None:
                rec.failed_request_seqs.extend(seqs)

    def _data_inner(self, path, q, t_start):
        srv, rec, cfg = self.server, self.server.rec, self.server.cfg
        with rec.lock:
            rec.data_requests += 1
            ua = self.headers.get("User-Agent")
            if ua:
                rec.user_agents.add(ua)
        channel = self._channel(q)

        # Connection reset mid-body: read part of it, then RST without answering.
        if self._take("reset"):
            n = int(self.headers.get("Content-Length") or 0)
            self._read_body(limit=max(1, n // 2))
            with rec.lock:
                rec.resets_done += 1
            self._log_request(t_start, path, 0, None, 0, channel, note="reset")
            return self._abort()

        raw = self._read_body()
        with rec.lock:
            rec.bytes_received += len(raw)
        if channel:
            with rec.lock:
                rec.channels.add(channel)
        self._cookie_check(channel, False)
        cookie = self._cookie_headers(channel)

        # Slow server.
        delay = cfg["delay_ms"]
        if delay and (cfg["delay_count"] < 0 or self._take("delay_count")):
            time.sleep(delay / 1000.0)

        def reply(status, obj, n_events=0, seqs=None, note=None, headers=()):
            self._log_request(t_start, path, status, obj.get("code"), n_events, channel, seqs, note)
            self._reply(status, obj, list(headers) + cookie)

        if self._take("fail_503"):
            h = [("Retry-After", str(cfg["retry_after"]))] if cfg["retry_after"] is not None else []
            return reply(503, {"text": "Server is busy", "code": 9}, headers=h)
        if self._take("fail_count"):
            h = [("Retry-After", str(cfg["retry_after"]))] if cfg["retry_after"] is not None else []
            st = int(cfg["fail_status"] or 500)
            seqs = None
            if 400 <= st < 500:
                seqs = self._seqs_of_body(raw)
            return reply(st, {"text": cfg["fail_text"], "code": int(cfg["fail_code"])}, headers=h,
                         seqs=seqs, n_events=len(seqs or []))

        bad = self._auth()
        if bad:
            return reply(bad[0], bad[1])

        is_raw = path in RAW_PATHS
        if cfg["acks"] or (is_raw and cfg["raw_requires_channel"]):
            if not channel:
                return reply(400, {"text": "Data channel is missing", "code": 10})
            if not GUID_RE.match(channel):
                return reply(400, {"text": "Invalid data channel", "code": 11})

        body = raw
        if self.headers.get("Content-Encoding", "").lower() == "gzip":
            with rec.lock:
                rec.gzip_requests += 1
            try:
                body = gzip.decompress(raw)
            except (OSError, EOFError, zlib.error):
                return reply(400, {"text": "Invalid data format", "code": 6})
        elif self.headers.get("Content-Encoding", "").lower() not in ("", "identity"):
            return reply(415, {"text": "Unsupported content encoding", "code": 6})
        with rec.lock:
            rec.bytes_decompressed += len(body)

        if cfg["max_body"] and len(body) > cfg["max_body"]:
            return reply(413, {"text": "Content too large", "code": 27}, n_events=body.count(b'"event"'),
                         note=f"{len(body)} bytes")

        if not body.strip():
            return reply(400, {"text": "No data", "code": 5})

        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            return reply(400, {"text": "Invalid data format", "code": 6, "invalid-event-number": 0})

        if is_raw:
            events = [{"event": line, "host": q.get("host"), "source": q.get("source"),
                       "sourcetype": q.get("sourcetype"), "index": q.get("index"), "_raw": True}
                      for line in text.splitlines() if line.strip()]
            bad_i, bad_reply = None, None
        else:
            events, perr = parse_concatenated(text)
            bad_i, bad_reply = None, None
            if perr is not None:
                bad_i, bad_reply = perr, {"text": "Invalid data format", "code": 6}
            rejects = set(cfg["reject_seq"])
            for i, ev in enumerate(events):
                if bad_i is not None and i >= bad_i:
                    break
                if not isinstance(ev, dict):
                    bad_i, bad_reply = i, {"text": "Invalid data format", "code": 6}
                elif "event" not in ev:
                    bad_i, bad_reply = i, {"text": "Event field is required", "code": 12}
                elif ev["event"] == "" or (isinstance(ev["event"], str) and not ev["event"].strip()):
                    bad_i, bad_reply = i, {"text": "Event field cannot be blank", "code": 13}
                elif "fields" in ev and isinstance(ev["fields"], dict) and any(
                        isinstance(v, dict) or (isinstance(v, list) and any(not isinstance(x, str) for x in v))
                        for v in ev["fields"].values()):
                    bad_i, bad_reply = i, {"text": "Error in handling indexed fields", "code": 15}
                elif rejects and _seq_of(ev) in rejects:
                    bad_i, bad_reply = i, {"text": "Invalid data format", "code": 6}
                if bad_i is not None:
                    break

        accepted = events if bad_i is None else events[:bad_i]
        with rec.lock:
            for ev in accepted:
                rec.events.append(ev)
                s = _seq_of(ev)
                if s is not None:
                    rec.seq_counts[s] = rec.seq_counts.get(s, 0) + 1
            if bad_i is not None and bad_i < len(events):
                s = _seq_of(events[bad_i])
                if s is not None:
                    rec.rejected_seqs.append(s)

        if bad_i is not None:
            bad_reply["invalid-event-number"] = bad_i
            return reply(400, bad_reply, n_events=len(events), note=f"accepted {len(accepted)}")

        ok = {"text": "Success", "code": 0}
        if cfg["acks"]:
            ok["ackId"] = srv.new_ack(channel)
        reply(200, ok, n_events=len(events))

    def _seqs_of_body(self, raw):
        try:
            body = gzip.decompress(raw) if self.headers.get("Content-Encoding", "").lower() == "gzip" else raw
            evs, _ = parse_concatenated(body.decode("utf-8", "replace"))
            return [s for s in (_seq_of(e) for e in evs) if s is not None]
        except Exception:  # noqa: BLE001 (diagnostics only)
            return []

    # -- acks ----------------------------------------------------------------------------------
    def _ack(self, q):
        srv, rec, cfg = self.server, self.server.rec, self.server.cfg
        raw = self._read_body()
        channel = self._channel(q)
        self._cookie_check(channel, True)
        cookie = self._cookie_headers(channel)

        def reply(status, obj):
            with rec.lock:
                rec.ack_requests_by_status[str(status)] = rec.ack_requests_by_status.get(str(status), 0) + 1
            self._reply(status, obj, cookie)

        bad = self._auth()
        if bad:
            return reply(*bad)
        if not cfg["acks"]:
            return reply(400, {"text": "ACK is disabled", "code": 14})
        if not channel:
            return reply(400, {"text": "Data channel is missing", "code": 10})
        if not GUID_RE.match(channel):
            return reply(400, {"text": "Invalid data channel", "code": 11})
        try:
            if self.headers.get("Content-Encoding", "").lower() == "gzip":
                raw = gzip.decompress(raw)
            ids = json.loads(raw)["acks"]
            ids = [int(i) for i in ids]
        except (ValueError, KeyError, TypeError, OSError):
            return reply(400, {"text": "Invalid data format", "code": 6})
        result = {}
        now = time.monotonic()
        mode = cfg["ack_mode"]
        with srv.ack_lock:
            pending = srv.acks.setdefault(channel, {"next": 0, "ids": {}})["ids"]
            for i in ids:
                st = pending.get(i)
                val = False
                if st is not None:
                    st["polls"] += 1
                    if mode == "immediate":
                        val = True
                    elif mode == "delayed":
                        val = now - st["t"] >= float(cfg["ack_delay_s"])
                    elif mode == "false_then_true":
                        val = st["polls"] >= 2
                    if val:
                        del pending[i]  # a true is returned once, then forgotten (HEC.md §2.1)
                result[str(i)] = val
        with rec.lock:
            rec.ack_polls += 1
            rec.ack_ids_polled += len(ids)
            rec.acks_true += sum(1 for v in result.values() if v)
        reply(200, {"acks": result})


class HecFaultServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, host="127.0.0.1", port=0, ssl_context=None, **switches):
        self.cfg = dict(DEFAULTS)
        self.cfg["reject_seq"] = []
        for k, v in switches.items():
            if k not in DEFAULTS:
                raise ValueError(f"unknown switch {k}")
            self.cfg[k] = v
        self.cfg_lock = threading.Lock()
        self.rec = Recorder()
        self.ack_lock = threading.Lock()
        self.acks = {}          # channel -> {"next": n, "ids": {id: {"t": mono, "polls": n}}}
        self.cookie_lock = threading.Lock()
        self.cookies_set = {}   # channel -> monotonic time the cookie was first set
        self.ssl_context = ssl_context
        super().__init__((host, port), HecHandler)

    def new_ack(self, channel):
        with self.ack_lock:
            ch = self.acks.setdefault(channel, {"next": 0, "ids": {}})
            i = ch["next"]
            ch["next"] += 1
            ch["ids"][i] = {"t": time.monotonic(), "polls": 0}
            return i

    def get_request(self):
        sock, addr = self.socket.accept()
        if self.ssl_context is not None:
            sock = self.ssl_context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, addr

    def verify_request(self, request, client_address):
        if self.cfg["down"]:
            with self.rec.lock:
                self.rec.down_refused += 1
            try:
                request.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            except OSError:
                pass
            return False
        return True

    def handle_error(self, request, client_address):
        pass  # client hang-ups and TLS failures are expected here

    def start_thread(self):
        t = threading.Thread(target=self.serve_forever, daemon=True)
        t.start()
        return t


def make_ssl_context(cert, key, client_ca=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    if client_ca:
        ctx.load_verify_locations(client_ca)
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def _write_atomic(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")
    ap.add_argument("--control-port-file", help="also serve the control API on a plain-HTTP port")
    ap.add_argument("--tls-cert")
    ap.add_argument("--tls-key")
    ap.add_argument("--client-ca", help="require client certificates signed by this CA")
    ap.add_argument("--token", default="test-token")
    ap.add_argument("--acks", action="store_true")
    ap.add_argument("--ack-mode", default="immediate", choices=["immediate", "delayed", "false_then_true", "never"])
    ap.add_argument("--ack-delay", type=float, default=1.0)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=JSON", help="initial switch")
    a = ap.parse_args(argv)
    switches = {"token": a.token, "acks": a.acks, "ack_mode": a.ack_mode, "ack_delay_s": a.ack_delay}
    for s in a.set:
        k, _, v = s.partition("=")
        switches[k] = json.loads(v)
    ctx = make_ssl_context(a.tls_cert, a.tls_key, a.client_ca) if a.tls_cert else None
    srv = HecFaultServer(a.host, a.port, ctx, **switches)
    ctl = None
    if a.control_port_file:
        ctl = ThreadingHTTPServer((a.host, 0), HecHandler)
        ctl.daemon_threads = True
        ctl.is_control = True
        ctl.ssl_context = None
        # The control listener shares the data server's state.
        for attr in ("cfg", "cfg_lock", "rec", "ack_lock", "acks", "cookie_lock", "cookies_set"):
            setattr(ctl, attr, getattr(srv, attr))
        ctl.handle_error = lambda *x: None
        threading.Thread(target=ctl.serve_forever, daemon=True).start()
        _write_atomic(a.control_port_file, str(ctl.server_address[1]))
    if a.port_file:
        _write_atomic(a.port_file, str(srv.server_address[1]))
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


# ---------------------------------------------------------------------------------------------
# Test-side helpers: the server as a subprocess, driven through its control port.
# ---------------------------------------------------------------------------------------------
class HecServerProcess:
    """Starts hec_fault_server.py as a subprocess and talks to its control API."""

    def __init__(self, workdir, name="hec", token="test-token", acks=False, ack_mode="immediate",
                 ack_delay=1.0, tls_cert=None, tls_key=None, client_ca=None, switches=None):
        import subprocess
        self.name = name
        self.tls = bool(tls_cert)
        pf = os.path.join(workdir, f"{name}.port")
        cf = os.path.join(workdir, f"{name}.ctlport")
        self.log_path = os.path.join(workdir, f"{name}.server.log")
        args = [sys.executable, "-u", os.path.abspath(__file__), "--port", "0", "--port-file", pf,
                "--control-port-file", cf, "--token", token, "--ack-mode", ack_mode, "--ack-delay", str(ack_delay)]
        if acks:
            args.append("--acks")
        if tls_cert:
            args += ["--tls-cert", tls_cert, "--tls-key", tls_key]
        if client_ca:
            args += ["--client-ca", client_ca]
        for k, v in (switches or {}).items():
            args += ["--set", f"{k}={json.dumps(v)}"]
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(args, stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while not (os.path.exists(pf) and os.path.exists(cf)):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"HEC fault server {name} did not start: {self.server_log()}")
            time.sleep(0.02)
        with open(pf) as f:
            self.port = int(f.read())
        with open(cf) as f:
            self.control_port = int(f.read())

    @property
    def url(self):
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def server_log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")[-3000:]
        except FileNotFoundError:
            return ""

    def _call(self, method, path, obj=None):
        import http.client
        conn = http.client.HTTPConnection("127.0.0.1", self.control_port, timeout=30)
        try:
            body = json.dumps(obj).encode() if obj is not None else None
            conn.request(method, path, body=body, headers={"Content-Type": "application/json"} if body else {})
            r = conn.getresponse()
            data = r.read()
            if r.status != 200:
                raise AssertionError(f"control {path}: {r.status} {data!r}")
            return json.loads(data)
        finally:
            conn.close()

    def control(self, **switches):
        return self._call("POST", "/_control", switches)

    def reset_stats(self):
        return self._call("POST", "/_reset", {})

    def stats(self):
        return self._call("GET", "/_stats")

    def seq_counts(self):
        return {int(k): v for k, v in self._call("GET", "/_seqs")["counts"].items()}

    def events(self, offset=0, limit=None):
        q = f"/_events?offset={offset}" + (f"&limit={limit}" if limit else "")
        return self._call("GET", q)["events"]

    def requests(self):
        return self._call("GET", "/_requests")["requests"]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except Exception:  # noqa: BLE001
                self.proc.kill()
                self.proc.wait()
        self._log.close()


if __name__ == "__main__":
    sys.exit(main())
