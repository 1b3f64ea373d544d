"""`file` source decoding through the real binary (plugins/sources/file/DECODING.md): multiline in
Vector's four modes (Java stack traces, Python tracebacks, date-led records, backslash
continuations), a held multiline event surviving kill -9, CRI with partial records (also across a
kill -9), Docker json-file with partial records, the json codec with `timestamp`."""
import json
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from filetail import Harness, SINK_ID, SOURCE_ID, append, line  # noqa: E402
from lib import wait_for  # noqa: E402

T0 = 1704164645  # 2024-01-02T03:04:05Z


def java_exception(i):
    return [f"2024-01-02 03:04:05,{i % 1000:03d} ERROR [main] request failed id={i}",
            f"java.lang.IllegalStateException: boom {i}"] + \
           [f"\tat com.example.Service.method{k}(Service.java:{100 + k})" for k in range(5)] + \
           [f"Caused by: java.io.IOException: inner {i}", "\tat com.example.Io.read(Io.java:7)",
            "\t... 12 more"]


def texts(events, source=None):
    return [e["event"] for e in events if source is None or e.get("source") == source]


class Decoding(unittest.TestCase):
    def _multi(self, h, sources):
        """Adds one file source per (id, file, extra) and feeds all of them to the sink."""
        for sid, fname, extra in sources:
            src = {"type": "file", "include": [h.path(fname)], "scan_interval": "100ms"}
            src.update(extra)
            h.cfg["sources"][sid] = src
        h.cfg["sinks"][SINK_ID]["inputs"] = [SOURCE_ID] + [s[0] for s in sources]
        h.rewrite_config()

    def _wait_events(self, h, n, what, timeout=30):
        try:
            wait_for(lambda: len(h.events()) >= n, timeout, what, interval=0.1)
        except AssertionError:
            self.fail(f"{what}: only {len(h.events())} events; first: {texts(h.events())[:6]}\n{h.all_logs()[-3000:]}")
        h.settle()

    def test_multiline_java_stack_traces_continue_through(self):
        """Verifies 300 Java stack traces (with 'Caused by' and '... n more') interleaved with single
        lines become exactly one event each, with the lines joined by \\n."""
        h = Harness(self, name="java", source={"multiline": {
            "start_pattern": r"^[^\s]", "condition_pattern": r"^[\s]+at|^[\s]+\.\.\.|^Caused by",
            "mode": "continue_through", "timeout": "300ms"}})
        p = h.path("java.log")
        expected = []
        with open(p, "w") as f:
            for i in range(300):
                lines = java_exception(i)
                # "java.lang...: boom" does not match the condition: it is an event of its own.
                expected.append(lines[0])
                expected.append("\n".join(lines[1:]))
                f.write("\n".join(lines) + "\n")
                f.write(line("j", i) + "\n")
                expected.append(line("j", i))
        h.start()
        self._wait_events(h, len(expected), "all multiline events")
        got = texts(h.events())
        self.assertEqual(len(got), len(expected), f"event count; first events: {got[:4]}")
        self.assertEqual(got, expected)
        self.assertEqual(h.stop(), 0)

    def test_multiline_four_modes(self):
        """Verifies continue_past (Python tracebacks), halt_before (date-led records), halt_with
        (backslash continuations) and continue_through, each on its own source."""
        h = Harness(self, name="modes", include=None)
        h.cfg["sources"][SOURCE_ID]["include"] = [h.path("none.log")]
        self._multi(h, [
            ("py", "py.log", {"multiline": {"start_pattern": "^Traceback", "condition_pattern": r"^\s",
                                            "mode": "continue_past", "timeout": "300ms"}}),
            ("dated", "dated.log", {"multiline": {"start_pattern": "", "condition_pattern": r"^\d{4}-\d{2}-\d{2}",
                                                  "mode": "halt_before", "timeout": "300ms"}}),
            ("bs", "bs.log", {"multiline": {"start_pattern": r"\\$", "condition_pattern": r"[^\\]$",
                                            "mode": "halt_with", "timeout": "300ms"}}),
        ])
        py, dated, bs = [], [], []
        with open(h.path("py.log"), "w") as f:
            for i in range(50):
                tb = ["Traceback (most recent call last):", '  File "app.py", line 3, in <module>',
                      "    main()", f"ValueError: bad value {i}"]
                f.write("\n".join(tb) + f"\nplain {i}\n")
                py += ["\n".join(tb), f"plain {i}"]
        with open(h.path("dated.log"), "w") as f:
            for i in range(50):
                rec = [f"2024-01-02 03:04:{i % 60:02d} record {i}"] + [f"  continuation {i}.{k}" for k in range(i % 4)]
                f.write("\n".join(rec) + "\n")
                dated.append("\n".join(rec))
        with open(h.path("bs.log"), "w") as f:
            for i in range(50):
                rec = [f"cmd {i} \\", "  --flag \\", "  --last"]
                f.write("\n".join(rec) + f"\nsingle {i}\n")
                bs += ["\n".join(rec), f"single {i}"]
        h.start()
        self._wait_events(h, len(py) + len(dated) + len(bs), "events of the three modes")
        ev = h.events()
        self.assertEqual(texts(ev, h.path("py.log")), py, "continue_past")
        self.assertEqual(texts(ev, h.path("dated.log")), dated, "halt_before")
        self.assertEqual(texts(ev, h.path("bs.log")), bs, "halt_with")
        self.assertEqual(h.stop(), 0)

    def test_multiline_event_held_at_kill9_is_not_lost(self):
        """Verifies a multiline event in progress at kill -9 (timeout 60s) is read again after the
        restart and arrives once, whole."""
        h = Harness(self, name="held", source={"multiline": {
            "start_pattern": r"^[^\s]", "condition_pattern": r"^[\s]+at|^Caused by",
            "mode": "continue_through", "timeout": "60s"}})
        p = h.path("held.log")
        first = ["Exception one", "\tat a.b(C.java:1)"]
        second = ["Exception two", "\tat a.b(C.java:2)", "\tat a.b(C.java:3)"]
        append(p, "\n".join(first + second) + "\n")
        h.start()
        self._wait_events(h, 1, "the first event")
        self.assertEqual(texts(h.events()), ["\n".join(first)])
        h.kill9()
        append(p, "\tat a.b(C.java:4)\nException three\n")
        h.start()
        wait_for(lambda: len(h.events()) >= 2, 30, "the held event after the restart")
        h.settle()
        self.assertEqual(texts(h.events()), ["\n".join(first), "\n".join(second + ["\tat a.b(C.java:4)"])])
        self.assertEqual(h.stop(), 0)  # "Exception three" is flushed at stop (held)

    def test_cri_partial_records_are_joined_with_first_record_time(self):
        """Verifies CRI records: P parts joined with the next F of the same stream (stdout/stderr
        interleaved), the message only as event text, the first record's time."""
        h = Harness(self, name="cri", source={"codec": "cri"})
        p = h.path("pod.log")
        rows, expected = [], []
        for i in range(200):
            ts = f"2024-01-02T03:04:{5 + i % 50:02d}.{i:03d}456789Z"
            if i % 4 == 0:
                rows.append(f"{ts} stdout P {line('c', i)} part-a ")
                rows.append(f"2024-01-02T03:05:00.000000000Z stderr F err {i}")
                rows.append(f"2024-01-02T03:05:01.000000000Z stdout P part-b ")
                rows.append(f"2024-01-02T03:05:02.000000000Z stdout F end")
                expected.append((line("c", i) + " part-a part-b end", T0 + (i % 50) + i / 1000))
                expected.append((f"err {i}", T0 + 55))
            else:
                rows.append(f"{ts} stdout F {line('c', i)}")
                expected.append((line("c", i), T0 + (i % 50) + i / 1000))
        append(p, "\n".join(rows) + "\n")
        h.start()
        self._wait_events(h, len(expected), "all CRI events")
        ev = h.events()
        self.assertEqual(sorted(texts(ev)), sorted(t for t, _ in expected))
        times = {e["event"]: e["time"] for e in ev}
        off = [(t, times.get(t), want) for t, want in expected if abs(times.get(t, 0) - want) > 0.002]
        self.assertEqual(off[:5], [], "event time is the (first) record's time")
        self.assertEqual(h.m0("logship_component_errors_total", component_id=SOURCE_ID, stage="decode"), 0)
        # A P record held at kill -9 is read again after the restart.
        # One write: once the marker arrived, logship has read the P record after it.
        append(p, "2024-01-02T03:05:59.000000000Z stdout F marker\n"
                  "2024-01-02T03:06:00.000000000Z stdout P held-part \n")
        wait_for(lambda: "marker" in texts(h.events()), 30, "the marker before the held record")
        h.kill9()
        append(p, "2024-01-02T03:06:01.000000000Z stdout F done\n")
        h.start()
        wait_for(lambda: "held-part done" in texts(h.events()), 30, "the reassembled held record")
        h.settle()
        self.assertEqual(texts(h.events()).count("held-part done"), 1)
        self.assertEqual(h.stop(), 0)

    def test_docker_json_file_partial_records(self):
        """Verifies Docker json-file records: `log` without final \\n joined with the next one of the
        stream, the final \\n removed, the first record's time."""
        h = Harness(self, name="docker", source={"codec": "docker"})
        p = h.path("c-json.log")
        rows, expected = [], []
        for i in range(200):
            t = f"2024-01-02T03:04:05.{i:03d}Z"
            if i % 5 == 0:
                rows.append(json.dumps({"log": f"{line('d', i)} first ", "stream": "stdout", "time": t}))
                rows.append(json.dumps({"log": f"stderr {i}\n", "stream": "stderr", "time": t}))
                rows.append(json.dumps({"log": "second\n", "stream": "stdout", "time": "2024-01-02T03:09:00Z"}))
                expected += [line("d", i) + " first second", f"stderr {i}"]
            else:
                rows.append(json.dumps({"log": line("d", i) + "\n", "stream": "stdout", "time": t}))
                expected.append(line("d", i))
        append(p, "\n".join(rows) + "\n")
        h.start()
        self._wait_events(h, len(expected), "all docker events")
        ev = h.events()
        self.assertEqual(sorted(texts(ev)), sorted(expected))
        e5 = [e for e in ev if e["event"] == line("d", 5) + " first second"][0]
        self.assertAlmostEqual(e5["time"], T0 + 0.005, places=3)
        self.assertEqual(h.stop(), 0)

    def test_json_codec_with_timestamp_and_bad_lines(self):
        """Verifies codec json: objects sent as objects with the time from `timestamp`, blank lines
        skipped, an invalid line sent as a string and counted (decode/invalid_json)."""
        h = Harness(self, name="json", source={"codec": "json", "timestamp": {"field": "meta.ts", "format": "epoch_ms"}})
        p = h.path("j.log")
        rows = [json.dumps({"seq": i, "msg": "hello", "meta": {"ts": (T0 * 1000) + i}}) for i in range(500)]
        rows.insert(100, "")
        rows.insert(200, "{not json")
        append(p, "\n".join(rows) + "\n")
        h.start()
        self._wait_events(h, 501, "json events")
        ev = h.events()
        self.assertEqual(len(ev), 501)
        objs = [e for e in ev if isinstance(e["event"], dict)]
        self.assertEqual(sorted(o["event"]["seq"] for o in objs), list(range(500)))
        for o in objs:
            self.assertAlmostEqual(o["time"], T0 + o["event"]["seq"] / 1000, places=3)
        self.assertIn("{not json", texts(ev))
        self.assertEqual(h.m0("logship_component_errors_total", component_id=SOURCE_ID, stage="decode",
                              error="invalid_json"), 1)
        self.assertEqual(h.stop(), 0)


if __name__ == "__main__":
    unittest.main()
