"""End to end through two real logship processes:
writer -> log file -> forwarder (file source -> splunk_hec sink, HTTPS, gzip)
       -> receiver (splunk_hec source -> file sink) -> out.jsonl.
"""
import os
import signal
import socket
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from lib import (Logship, TempDir, free_port, make_cert, metric, read_jsonl, receiver_config, wait_for,  # noqa: E402
                 wait_hec_up, write_config, count_lines)

TOKEN = "0b7c5a8e-5d6f-4c1e-9d55-e2e2e2e2e2e2"
PAYLOAD = 'quote=" backslash=\\ tab=\t unicode=é日本🙂 json={"a":1}'


def line_text(i):
    return f"seq={i:07d} {PAYLOAD}"


def write_lines(path, start, end, chunk=1000, rate=None):
    """Appends lines [start, end) in chunks; `rate` lines/s caps the speed."""
    t0 = time.monotonic()
    with open(path, "a", encoding="utf-8") as f:
        for c in range(start, end, chunk):
            f.write("".join(line_text(i) + "\n" for i in range(c, min(end, c + chunk))))
            f.flush()
            if rate:
                ahead = (min(end, c + chunk) - start) / rate - (time.monotonic() - t0)
                if ahead > 0:
                    time.sleep(ahead)


def seqs(events):
    out = []
    for e in events:
        ev = e.get("event")
        if isinstance(ev, str) and ev.startswith("seq="):
            out.append(int(ev[4:11]))
    return out


class Pipeline:
    """Receiver + forwarder pair in one temp dir."""

    def __init__(self, tc, sink_extra=None, tls=True):
        self.tmp = TempDir()
        tc.addCleanup(self.tmp.cleanup)
        self.tc = tc
        self.hec_port = free_port()
        self.admin_port = free_port()
        self.logdir = self.tmp.join("logs")
        os.makedirs(self.logdir)
        self.logfile = os.path.join(self.logdir, "app.log")
        self.out = self.tmp.join("out.jsonl")
        tls_src = None
        self.ca = None
        if tls:
            cert, key = make_cert(self.tmp.path)
            tls_src = {"cert_file": cert, "key_file": key}
            self.ca = cert
        rcfg = receiver_config(self.tmp, self.hec_port, self.out, tokens=[TOKEN], tls=tls_src)
        self.rcfg_path = write_config(self.tmp.join("receiver.yaml"), rcfg)
        token_file = self.tmp.join("hec.token")
        with open(token_file, "w") as f:
            f.write(TOKEN + "\n")
        os.chmod(token_file, 0o600)
        scheme = "https" if tls else "http"
        sink = {
            "type": "splunk_hec",
            "inputs": ["app"],
            "endpoints": [f"{scheme}://127.0.0.1:{self.hec_port}"],
            "token_file": token_file,
            "sourcetype": "{{ sourcetype }}",
            "retry": {"initial_backoff": "50ms", "max_backoff": "500ms"},
        }
        if tls:
            sink["tls"] = {"ca_file": self.ca}
        if sink_extra:
            sink.update(sink_extra)
        fcfg = {
            "data_dir": self.tmp.join("forwarder-data"),
            "admin": {"address": f"127.0.0.1:{self.admin_port}"},
            "sources": {"app": {"type": "file", "include": [self.logdir + "/*.log"], "host": "test-host",
                                "sourcetype": "app:log", "index": "main", "scan_interval": "200ms"}},
            "sinks": {"splunk": sink},
        }
        self.fcfg_path = write_config(self.tmp.join("forwarder.yaml"), fcfg)
        self.receiver = None
        self.forwarder = None

    def start_receiver(self):
        self.receiver = Logship(self.rcfg_path, "receiver").start()
        self.tc.addCleanup(lambda r=self.receiver: r.alive() and r.stop())
        wait_hec_up(self.hec_port, tls_ca=self.ca)
        return self.receiver

    def start_forwarder(self, env=None, args=()):
        self.forwarder = Logship(self.fcfg_path, "forwarder", env=env, args=args).start()
        self.tc.addCleanup(lambda f=self.forwarder: f.alive() and f.stop())
        return self.forwarder

    def diagnostics(self):
        return (f"\n--- forwarder log ---\n{self.forwarder.log()[-4000:] if self.forwarder else ''}"
                f"\n--- receiver log ---\n{self.receiver.log()[-4000:] if self.receiver else ''}")


class EndToEnd(unittest.TestCase):
    def test_100k_lines_arrive_exactly_once_with_metadata_and_exact_text(self):
        """Verifies every one of 100,000 lines arrives once, intact, with time/host/source/sourcetype."""
        p = Pipeline(self)
        p.start_receiver()
        p.start_forwarder()
        n = 100_000
        t0 = time.time()
        writer = threading.Thread(target=write_lines, args=(p.logfile, 0, n))
        writer.start()
        writer.join()
        try:
            wait_for(lambda: count_lines(p.out) >= n, 180, "100,000 events at the receiver", interval=0.2)
        except AssertionError:
            self.fail(f"only {count_lines(p.out)} events arrived" + p.diagnostics())
        events = read_jsonl(p.out)
        got = seqs(events)
        self.assertEqual(len(got), n, "duplicates or foreign events")
        self.assertEqual(sorted(got), list(range(n)))
        for e in events[:1000] + events[-1000:]:
            i = int(e["event"][4:11])
            self.assertEqual(e["event"], line_text(i))
            self.assertEqual(e["host"], "test-host")
            self.assertEqual(e["source"], p.logfile)
            self.assertEqual(e["sourcetype"], "app:log")
            self.assertEqual(e["index"], "main")
            self.assertGreaterEqual(e["time"], t0 - 5)
            self.assertLessEqual(e["time"], time.time() + 5)
        # /metrics reports what was sent.
        wait_for(lambda: metric(p.admin_port, "logship_component_sent_events_total", component_id="splunk") == n,
                 30, "sink sent_events_total == 100000")
        self.assertEqual(metric(p.admin_port, "logship_component_received_events_total", component_id="app"), n)
        self.assertGreater(metric(p.admin_port, "logship_component_sent_bytes_total", component_id="splunk"),
                           n * len(line_text(0)) * 0.99)
        self.assertEqual(p.forwarder.stop(), 0, p.diagnostics())
        self.assertEqual(p.receiver.stop(), 0, p.diagnostics())
        # The token never appears in the logs.
        self.assertNotIn(TOKEN, p.forwarder.log())
        self.assertNotIn(TOKEN, p.receiver.log())

    def test_receiver_down_mid_stream_then_back_loses_nothing(self):
        """Verifies lines written while the receiver is down are delivered once it is back."""
        p = Pipeline(self, tls=False)
        p.start_receiver()
        p.start_forwarder()
        write_lines(p.logfile, 0, 20_000)
        wait_for(lambda: count_lines(p.out) >= 5_000, 60, "first events", interval=0.1)
        self.assertEqual(p.receiver.stop(), 0, p.diagnostics())
        write_lines(p.logfile, 20_000, 40_000)
        # The forwarder keeps retrying while the receiver is down.
        wait_for(lambda: (metric(p.admin_port, "logship_component_errors_total", component_id="splunk") or 0) > 0,
                 30, "send errors counted while the receiver is down")
        p.start_receiver()
        write_lines(p.logfile, 40_000, 50_000)
        try:
            wait_for(lambda: len(set(seqs(read_jsonl(p.out)))) >= 50_000, 120, "all 50,000 lines", interval=0.3)
        except AssertionError:
            self.fail(f"missing lines: {50_000 - len(set(seqs(read_jsonl(p.out))))}" + p.diagnostics())
        self.assertEqual(sorted(set(seqs(read_jsonl(p.out)))), list(range(50_000)))

    def test_wrong_token_keeps_data_until_token_file_fixed_and_sighup(self):
        """Verifies a 403 keeps the data, and SIGHUP re-reads token_file so delivery resumes with no loss."""
        p = Pipeline(self, tls=False)
        token_file = p.tmp.join("hec.token")
        with open(token_file, "w") as f:
            f.write("wrong-token-0000\n")
        p.start_receiver()
        p.start_forwarder()
        write_lines(p.logfile, 0, 5_000)
        wait_for(lambda: (metric(p.admin_port, "logship_component_errors_total", component_id="splunk") or 0) > 0,
                 30, "auth errors counted")
        self.assertEqual(count_lines(p.out), 0)
        with open(token_file, "w") as f:
            f.write(TOKEN + "\n")
        p.forwarder.proc.send_signal(signal.SIGHUP)
        try:
            wait_for(lambda: len(set(seqs(read_jsonl(p.out)))) >= 5_000, 60, "all lines after SIGHUP", interval=0.2)
        except AssertionError:
            self.fail("not delivered after SIGHUP" + p.diagnostics())
        self.assertEqual(sorted(set(seqs(read_jsonl(p.out)))), list(range(5_000)))
        self.assertNotIn("wrong-token-0000", p.forwarder.log())
        self.assertNotIn(TOKEN, p.forwarder.log())
        self.assertIn("SIGHUP", p.forwarder.log())

    def test_proxy_variables_are_honoured(self):
        """Verifies http_proxy routes HEC traffic through the proxy and NO_PROXY bypasses it."""
        # A port held bound but never listening: connections are refused, and no other process
        # (a receiver of a test running in parallel) can take it meanwhile.
        hold = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        hold.bind(("127.0.0.1", 0))
        self.addCleanup(hold.close)
        dead_proxy = f"http://127.0.0.1:{hold.getsockname()[1]}"
        p = Pipeline(self, tls=False)
        p.start_receiver()
        p.start_forwarder(env={"http_proxy": dead_proxy, "HTTPS_PROXY": dead_proxy, "NO_PROXY": "", "no_proxy": ""},
                          args=["--drain-timeout", "1s"])
        write_lines(p.logfile, 0, 1_000)
        wait_for(lambda: (metric(p.admin_port, "logship_component_errors_total", component_id="splunk",
                                 error="connection") or 0) > 0, 30, "connection errors through the dead proxy")
        self.assertEqual(count_lines(p.out), 0)
        self.assertEqual(p.forwarder.stop(), 0)
        p.start_forwarder(env={"http_proxy": dead_proxy, "HTTPS_PROXY": dead_proxy, "NO_PROXY": "127.0.0.1"})
        wait_for(lambda: len(set(seqs(read_jsonl(p.out)))) >= 1_000, 60, "delivery with NO_PROXY", interval=0.2)


if __name__ == "__main__":
    unittest.main()
