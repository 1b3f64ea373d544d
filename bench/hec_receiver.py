#!/usr/bin/env python3
"""A small HEC receiver for the latency and outage benchmarks: it timestamps every event on
arrival, which nginx cannot do.

Each request body (the concatenated JSON envelopes `{"time":…,"event":"…"}{…}` of
/services/collector/event, gzip-decoded if Content-Encoding says so) is read whole, then the
arrival time is taken (CLOCK_REALTIME, ns) and every event carrying the writer's marker
`{"wt":<write time ns>,"seq":<n>,…}` is appended to the record file as two int64 values:
seq and (arrival_ns - write_ns). Appends are whole records under a lock, so the file can be read
while the receiver runs (a process killed mid-write leaves at most one partial record, which the
reader drops). Requests without markers (the curl upload) are answered and not recorded.

It answers `{"text":"Success","code":0}` to POSTs and code 17 to the health probe, over TLS.

  python3 bench/hec_receiver.py PORT CERT KEY RECORD_FILE
"""
import array
import gzip
import http.server
import re
import ssl
import sys
import threading
import time

MARK = re.compile(rb'\\"wt\\":(\d+),\\"seq\\":(\d+)')
SUCCESS = b'{"text":"Success","code":0}'
HEALTHY = b'{"text":"HEC is healthy","code":17}'


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "bench-hec"

    def log_message(self, *args):
        pass

    # TCP_NODELAY, and the reply in one write: headers and body written separately meet Nagle on
    # this side and delayed ACK on the client, which costs ~40 ms per request.
    disable_nagle_algorithm = True

    def _reply(self, body, status=200):
        self.wfile.write(b"HTTP/1.1 %d OK\r\nServer: bench-hec\r\nContent-Type: application/json\r\n"
                         b"Content-Length: %d\r\n\r\n%s" % (status, len(body), body))

    def do_GET(self):
        self._reply(HEALTHY)

    def do_POST(self):
        length = self.headers.get("Content-Length")
        if length is not None:
            body = self.rfile.read(int(length))
        else:  # chunked
            parts = []
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                if size == 0:
                    self.rfile.readline()
                    break
                parts.append(self.rfile.read(size))
                self.rfile.readline()
            body = b"".join(parts)
        if (self.headers.get("Content-Encoding") or "").lower() == "gzip":
            body = gzip.decompress(body)
        arrival = time.time_ns()
        rec = array.array("q")
        for wt, seq in MARK.findall(body):
            rec.append(int(seq))
            rec.append(arrival - int(wt))
        if rec:
            srv = self.server
            with srv.lock:
                srv.out.write(rec.tobytes())
                srv.out.flush()
        self._reply(SUCCESS)


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64


def serve(port, cert, key, record_path):
    srv = Server(("127.0.0.1", port), Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    srv.lock = threading.Lock()
    srv.out = open(record_path, "ab")
    srv.serve_forever(poll_interval=0.5)


def read_records(record_path):
    """Returns (seqs, latencies_ns) as int64 arrays."""
    with open(record_path, "rb") as f:
        data = f.read()
    a = array.array("q")
    a.frombytes(data[: len(data) // 16 * 16])
    return a[0::2], a[1::2]


if __name__ == "__main__":
    serve(int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4])
