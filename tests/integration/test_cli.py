"""The logship binary's command line: check, version, exit codes, data_dir lock, signals."""
import os
import signal
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from lib import Logship, TempDir, free_port, http_get, make_cert, run_logship, wait_for, write_config  # noqa: E402


def minimal(tmp, **top):
    cfg = {
        "data_dir": tmp.join("data"),
        "sources": {"app": {"type": "file", "include": [tmp.join("logs", "*.log")]}},
        "sinks": {"bh": {"type": "blackhole", "inputs": ["app"], "print_interval": "0"}},
    }
    cfg.update(top)
    return cfg


class Cli(unittest.TestCase):
    def setUp(self):
        self.tmp = TempDir()
        self.addCleanup(self.tmp.cleanup)

    def write(self, name, text):
        path = self.tmp.join(name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def test_version_prints_version_commit_and_libraries(self):
        """Verifies `logship version` names the commit and the linked libraries."""
        r = run_logship("version")
        self.assertEqual(r.returncode, 0)
        for word in ("logship", "commit", "libcurl", "openssl", "simdjson", "boost", "libdeflate"):
            self.assertIn(word, r.stdout.lower())

    def test_version_flag_and_library_versions_as_numbers(self):
        """Verifies `logship --version` works like `logship version` and versions read as x.y.z."""
        r = run_logship("--version")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, run_logship("version").stdout)
        for lib in ("fmt", "xxhash", "zstd", "boost"):
            self.assertRegex(r.stdout, rf"\n  {lib} +\d+\.\d+\.\d+\n")

    def test_drain_timeout_bare_number_is_seconds(self):
        """Verifies `--drain-timeout 5` means 5 s and a malformed one exits 2 with its value."""
        os.makedirs(self.tmp.join("logs"))
        path = write_config(self.tmp.join("a.yaml"), minimal(self.tmp))
        bad = run_logship("run", "-c", path, "--drain-timeout", "5x")
        self.assertEqual(bad.returncode, 2)
        self.assertIn('"5x"', bad.stderr)
        p = Logship(path, "d5", args=["--drain-timeout", "5"]).start()
        self.addCleanup(lambda: p.alive() and p.stop())
        wait_for(lambda: "running" in p.log(), 10, "the pipeline running")
        self.assertEqual(p.stop(signal.SIGTERM), 0, p.log())
        self.assertIn("deadline 5.0s", p.log())

    def test_check_prints_the_topology(self):
        """Verifies `logship check` prints each component, its type and its inputs."""
        path = write_config(self.tmp.join("ok.yaml"), minimal(self.tmp))
        r = run_logship("check", "-c", path)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("app (file)", r.stdout)
        self.assertIn("bh (blackhole) <- app", r.stdout)

    def test_bad_config_exits_2_with_file_line_col(self):
        """Verifies bad configs exit 2 with one message carrying file:line:col."""
        cases = {
            "unknown_key.yaml": ("data_dir: /tmp/x\nsources:\n  app:\n    type: file\n    include: [/tmp/*.log]\n"
                                 "    colour: blue\nsinks:\n  bh: {type: blackhole, inputs: [app]}\n", ":6:5:", "colour"),
            "dangling.yaml": ("sources:\n  app: {type: file, include: [/tmp/*.log]}\n"
                              "sinks:\n  bh: {type: blackhole, inputs: [nope]}\n", ":4:", "nope"),
            "bad_size.yaml": ("sources:\n  app: {type: file, include: [/tmp/*.log], max_line_bytes: 12 parsecs}\n"
                              "sinks:\n  bh: {type: blackhole, inputs: [app]}\n", ":2:", "size"),
            "unknown_type.yaml": ("sources:\n  app: {type: nosuch}\nsinks:\n  bh: {type: blackhole, inputs: [app]}\n",
                                  ":2:", "nosuch"),
            "syntax.yaml": ("sources:\n  app: {type: file\nsinks: [\n", ":", ""),
        }
        for name, (text, pos, word) in cases.items():
            with self.subTest(name):
                path = self.write(name, text)
                r = run_logship("check", "-c", path)
                self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
                msg = r.stderr.strip()
                self.assertEqual(len(msg.splitlines()), 1, msg)
                self.assertTrue(msg.startswith(path + pos), msg)
                self.assertIn(word, msg)

    def test_an_unclosed_quote_is_reported_where_it_opened(self):
        """Verifies that a quoted string left open, which YAML folds over the `key:` lines after it
        (to the end of the file, or to a later quote), exits 2 with one message at the line and
        column of the opening quote, from check and run; a multi-line quoted string passes."""
        rest = (f"sources:\n  app: {{type: file, include: [\"{self.tmp.join('logs', '*.log')}\"]}}\n"
                "sinks:\n  bh: {type: blackhole, inputs: [app]}\n")
        cases = {
            "eof.yaml": ('data_dir: "/tmp/d\nthreads: 2\nlog:\n  level: debug\n', ":1:11:",
                         "the end of the file (line 4; line 2 looks like a key: \"threads: 2\")"),
            "later.yaml": (f"threads: 2\ndata_dir: '{self.tmp.join('data')}\nlog: {{level: 'debug'}}\n" + rest,
                           ":2:11:", "line 3 looks like a key"),
            "eof_plain.yaml": (f"data_dir: {self.tmp.join('data')}\n"
                               f"sources:\n  app: {{type: file, include: [\"{self.tmp.join('logs', '*.log')}\"]}}\n"
                               "sinks:\n  bh:\n    type: blackhole\n    inputs: [app]\n    print_interval: \"1s\n  \n",
                               ":8:21:", "the end of the file (line 9)"),
        }
        for name, (text, pos, words) in cases.items():
            with self.subTest(name):
                path = self.write(name, text)
                for cmd in ("check", "run"):
                    r = run_logship(cmd, "-c", path, timeout=20)
                    self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
                    msg = r.stderr.strip()
                    self.assertEqual(len(msg.splitlines()), 1, msg)
                    self.assertTrue(msg.startswith(path + pos + " unclosed quote"), msg)
                    self.assertIn(words, msg)
        legit = (f"data_dir: {self.tmp.join('data')}\n"
                 f"sources:\n  app:\n    type: file\n    include: [\"{self.tmp.join('logs', '*.log')}\"]\n"
                 "    sourcetype: \"a sourcetype\n      over two lines\"\n"
                 "    index: 'main,\n      with a colon: inside'\n"
                 "sinks:\n  bh: {type: blackhole, inputs: [app]}\n")
        r = run_logship("check", "-c", self.write("legit.yaml", legit))
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_every_error_is_reported_in_file_order(self):
        """Verifies that check and run report every error of a config, one line each in line order
        (a bad top-level value, a bad source key, a bad sink key and an unknown key), although the
        sinks are checked before the sources."""
        text = (f"data_dir: {self.tmp.join('data')}\n"
                "threads: lots\n"
                "sources:\n"
                "  app:\n"
                "    type: file\n"
                f"    include: [\"{self.tmp.join('logs', '*.log')}\"]\n"
                "    read_from: middle\n"
                "sinks:\n"
                "  bh:\n"
                "    type: blackhole\n"
                "    inputs: [app]\n"
                "    print_interval: soon\n"
                "    colour: blue\n")
        path = self.write("three.yaml", text)
        for cmd in ("check", "run"):
            with self.subTest(cmd):
                r = run_logship(cmd, "-c", path, timeout=20)
                self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
                lines = r.stderr.strip().splitlines()
                self.assertEqual(len(lines), 4, r.stderr)
                self.assertTrue(lines[0].startswith(path + ":2:10: invalid integer \"lots\""), lines[0])
                self.assertTrue(lines[1].startswith(path + ":7:16: invalid read_from \"middle\""), lines[1])
                self.assertTrue(lines[2].startswith(path + ":12:21: invalid duration \"soon\""), lines[2])
                self.assertTrue(lines[3].startswith(path + ":13:5: unknown key \"colour\" in sinks.bh"), lines[3])

    def test_an_unknown_key_is_reported_next_to_the_error_it_causes(self):
        """Verifies that `codex: json` (a typo of codec) next to timestamp in a file source is
        reported as an unknown key (did you mean codec), in line order with the timestamp error
        that follows from it."""
        text = (f"data_dir: {self.tmp.join('data')}\n"
                "sources:\n"
                "  app:\n"
                "    type: file\n"
                f"    include: [\"{self.tmp.join('logs', '*.log')}\"]\n"
                "    codex: json\n"
                "    timestamp: {field: time}\n"
                "sinks:\n"
                "  bh: {type: blackhole, inputs: [app]}\n")
        path = self.write("codex.yaml", text)
        r = run_logship("check", "-c", path)
        self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
        lines = r.stderr.strip().splitlines()
        self.assertEqual(len(lines), 2, r.stderr)
        self.assertTrue(lines[0].startswith(path + ":6:5: unknown key \"codex\" in sources.app"), lines[0])
        self.assertIn('did you mean "codec"?', lines[0])
        self.assertTrue(lines[1].startswith(path + ":7:16: timestamp requires codec: json"), lines[1])

    def test_a_file_source_that_would_read_logships_own_output_is_refused(self):
        """Verifies that `check` refuses (exit 2) a file sink whose path a file source's glob
        matches, naming both positions, and accepts it once an exclude removes it. It also refuses
        an include glob that covers data_dir."""
        logs = self.tmp.join("logs")
        loop = (f"data_dir: {self.tmp.join('data')}\nsources:\n  app:\n    type: file\n    include:\n"
                f"      - {logs}/*.log\nsinks:\n  out:\n    type: file\n    inputs: [app]\n"
                f"    path: {logs}/out.log\n")
        path = self.write("loop.yaml", loop)
        r = run_logship("check", "-c", path)
        self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
        msg = r.stderr.strip()
        self.assertEqual(len(msg.splitlines()), 1, msg)
        self.assertTrue(msg.startswith(path + ":11:11:"), msg)
        self.assertIn(f"{path}:6:9", msg, "the include glob's position")
        self.assertIn("out.log", msg)
        r = run_logship("run", "-c", path)
        self.assertEqual(r.returncode, 2, "run refuses it too")
        fixed = loop.replace("    include:", f"    exclude: [{logs}/out.log]\n    include:")
        self.assertEqual(run_logship("check", "-c", self.write("fixed.yaml", fixed)).returncode, 0)
        covers = (f"data_dir: {self.tmp.join('state', 'data')}\nsources:\n  app:\n    type: file\n"
                  f"    include: [\"{self.tmp.join('**', '*.json')}\"]\nsinks:\n  bh: {{type: blackhole, inputs: [app]}}\n")
        path = self.write("covers.yaml", covers)
        r = run_logship("check", "-c", path)
        self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
        self.assertTrue(r.stderr.startswith(path + ":5:"), r.stderr)
        self.assertIn("data_dir", r.stderr)
        self.assertIn(path + ":1:11", r.stderr, "the data_dir position")

    def test_config_and_secret_files_that_are_not_regular_files_are_refused_at_once(self):
        """Verifies that check exits 2 at once, naming the path, for a config that is /dev/zero,
        a FIFO or a directory, and for a token_file that is a FIFO (nothing blocks on open)."""
        fifo = self.tmp.join("fifo")
        os.mkfifo(fifo)
        for path, word in (("/dev/zero", "not a regular file"), (fifo, "not a regular file"),
                           (self.tmp.path, "is a directory")):
            with self.subTest(path=path):
                r = run_logship("check", "-c", path, timeout=10)
                self.assertEqual(r.returncode, 2, r.stderr)
                self.assertTrue(r.stderr.startswith(path + ":1:1:"), r.stderr)
                self.assertIn(word, r.stderr)
        big = self.write("big.yaml", "# " + "x" * (17 << 20) + "\n")
        r = run_logship("check", "-c", big, timeout=10)
        self.assertEqual(r.returncode, 2)
        self.assertIn("16MiB", r.stderr)
        cfg = minimal(self.tmp)
        cfg["sinks"] = {"hec": {"type": "splunk_hec", "inputs": ["app"], "endpoints": ["https://127.0.0.1:8088"],
                                "token_file": fifo}}
        r = run_logship("check", "-c", write_config(self.tmp.join("fifo_token.yaml"), cfg), timeout=10)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("not a regular file", r.stderr)

    def test_secrets_with_line_breaks_or_only_blanks_are_refused_without_being_shown(self):
        """Verifies that a token_file of two lines, a blank token_file, and a token from ${VAR}
        holding CR/LF are refused (exit 2, position given) and the message never shows them."""
        def hec(**tok):
            cfg = minimal(self.tmp)
            cfg["sinks"] = {"hec": dict(type="splunk_hec", inputs=["app"], endpoints=["https://127.0.0.1:8088"], **tok)}
            return cfg
        cases = []
        for name, content, word in (("two", "tok-aaaa-1111\ntok-bbbb-2222\n", "more than one line"),
                                    ("blank", "    \n", "only blanks")):
            p = self.write(name + ".token", content)
            os.chmod(p, 0o600)
            cases.append((name, hec(token_file=p), {}, word, "tok-"))
        cases.append(("env", hec(token="${LOGSHIP_TEST_TOKEN}"), {"LOGSHIP_TEST_TOKEN": "tok-cccc\r\n3333"},
                      "more than one line", "tok-"))
        for name, cfg, env, word, secret in cases:
            with self.subTest(name):
                r = run_logship("check", "-c", write_config(self.tmp.join(name + ".yaml"), cfg), env=env)
                self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
                self.assertIn(word, r.stderr)
                self.assertNotIn(secret, r.stderr)
                self.assertRegex(r.stderr, r"\.yaml:\d+:\d+: ")

    def test_endpoint_ports_credentials_and_tls_files_are_checked(self):
        """Verifies that check refuses endpoint ports 0 and 99999, a URL with user:password (saying
        credentials in URLs are not supported), a missing tls.ca_file, a CA file that is not PEM,
        and a receiver key that does not match its certificate; a group-readable receiver key warns."""
        def hec(url, tls=None):
            cfg = minimal(self.tmp)
            sink = {"type": "splunk_hec", "inputs": ["app"], "endpoints": [url], "token": "abcd-efgh"}
            if tls:
                sink["tls"] = tls
            cfg["sinks"] = {"hec": sink}
            return cfg
        notpem = self.write("notpem.crt", "hello\n")
        cases = [
            ("port0", hec("https://127.0.0.1:0"), "port must be a number from 1 to 65535"),
            ("port99999", hec("https://127.0.0.1:99999"), "port must be a number from 1 to 65535"),
            ("userinfo", hec("https://user:secret@127.0.0.1:8088"), "credentials in endpoint URLs"),
            ("noca", hec("https://127.0.0.1:8088", {"ca_file": self.tmp.join("nope.pem")}), "No such file"),
            ("notpem", hec("https://127.0.0.1:8088", {"ca_file": notpem}), "holds no PEM certificate"),
        ]
        for name, cfg, word in cases:
            with self.subTest(name):
                r = run_logship("check", "-c", write_config(self.tmp.join(name + ".yaml"), cfg))
                self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
                self.assertIn(word, r.stderr)
                self.assertNotIn("secret@", r.stderr)
        cert, key = make_cert(self.tmp.path)
        other = TempDir()
        self.addCleanup(other.cleanup)
        _, other_key = make_cert(other.path)
        cfg = minimal(self.tmp)
        cfg["sources"]["hec_in"] = {"type": "splunk_hec", "address": "127.0.0.1:0", "tokens": ["abcd-efgh"],
                                    "tls": {"cert_file": cert, "key_file": other_key}}
        cfg["sinks"]["bh"]["inputs"] = ["app", "hec_in"]
        r = run_logship("check", "-c", write_config(self.tmp.join("mismatch.yaml"), cfg))
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("does not match", r.stderr)
        cfg["sources"]["hec_in"]["tls"]["key_file"] = key
        os.chmod(key, 0o644)
        r = run_logship("check", "-c", write_config(self.tmp.join("open.yaml"), cfg))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("readable by its group or others", r.stdout + r.stderr)

    def test_unset_variable_is_named(self):
        """Verifies an unset ${VAR} without default is a config error naming the variable."""
        path = self.write("var.yaml", "data_dir: ${LOGSHIP_TEST_UNSET_DIR}\nsources:\n  app: {type: file, include: [/tmp/*.log]}\n"
                                      "sinks:\n  bh: {type: blackhole, inputs: [app]}\n")
        os.environ.pop("LOGSHIP_TEST_UNSET_DIR", None)
        r = run_logship("check", "-c", path)
        self.assertEqual(r.returncode, 2)
        self.assertIn("LOGSHIP_TEST_UNSET_DIR", r.stderr)
        self.assertIn(path + ":1:", r.stderr)

    def test_missing_file_and_usage_errors_exit_2(self):
        """Verifies a missing config file and a bad command line exit with code 2."""
        self.assertEqual(run_logship("check", "-c", self.tmp.join("nope.yaml")).returncode, 2)
        self.assertEqual(run_logship("frobnicate").returncode, 2)
        self.assertEqual(run_logship("run").returncode, 2)

    def test_group_readable_secret_file_is_rejected(self):
        """Verifies a token_file readable by the group is refused (exit 2) without printing it."""
        tok = self.tmp.join("token")
        with open(tok, "w") as f:
            f.write("super-secret-token\n")
        os.chmod(tok, 0o640)
        cfg = minimal(self.tmp)
        cfg["sinks"] = {"hec": {"type": "splunk_hec", "inputs": ["app"], "endpoints": ["https://127.0.0.1:1"],
                                "token_file": tok}}
        path = write_config(self.tmp.join("secret.yaml"), cfg)
        r = run_logship("check", "-c", path)
        self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
        self.assertIn(tok, r.stderr)
        self.assertNotIn("super-secret-token", r.stderr + r.stdout)

    def test_second_process_on_same_data_dir_exits_2(self):
        """Verifies data_dir is locked: a second process exits 2 with a clear message."""
        path = write_config(self.tmp.join("a.yaml"), minimal(self.tmp))
        first = Logship(path, "first").start()
        self.addCleanup(lambda: first.alive() and first.stop())
        wait_for(lambda: os.path.exists(self.tmp.join("data", ".lock")), 10, "lock file")
        wait_for(lambda: "running" in first.log(), 10, "first process running")
        r = run_logship("run", "-c", path, timeout=20)
        self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
        self.assertIn("locked by another logship process", r.stdout + r.stderr)
        self.assertEqual(first.stop(), 0)

    def test_sigterm_drains_and_exits_0_and_admin_serves_health(self):
        """Verifies /health, /ready and /metrics, then SIGTERM exits 0 with checkpoints written."""
        port = free_port()
        os.makedirs(self.tmp.join("logs"))
        with open(self.tmp.join("logs", "a.log"), "w") as f:
            f.write("hello\nworld\n")
        path = write_config(self.tmp.join("a.yaml"), minimal(self.tmp, admin={"address": f"127.0.0.1:{port}"}))
        p = Logship(path).start()
        self.addCleanup(lambda: p.alive() and p.stop())
        wait_for(lambda: http_get(f"http://127.0.0.1:{port}/health")[0] == 200, 10, "/health")
        wait_for(lambda: http_get(f"http://127.0.0.1:{port}/ready")[0] == 200, 10, "/ready")
        status, text = http_get(f"http://127.0.0.1:{port}/metrics")
        self.assertEqual(status, 200)
        self.assertIn("logship_component_received_events_total", text)
        wait_for(lambda: 'component_id="bh"' in http_get(f"http://127.0.0.1:{port}/metrics")[1] and
                 'logship_component_sent_events_total{component_id="bh",component_kind="sink",component_type="blackhole"} 2'
                 in http_get(f"http://127.0.0.1:{port}/metrics")[1], 10, "2 events sent by the blackhole")
        self.assertEqual(p.stop(signal.SIGTERM), 0, p.log())
        with open(self.tmp.join("data", "checkpoints", "app.json")) as f:
            self.assertIn('"offset":12', f.read())

    def test_json_log_format_writes_one_json_object_per_line(self):
        """Verifies log.format json makes every log line a JSON object with level and message."""
        import json
        path = write_config(self.tmp.join("j.yaml"), minimal(self.tmp, log={"level": "info", "format": "json"}))
        p = Logship(path, "json").start()
        self.addCleanup(lambda: p.alive() and p.stop())
        wait_for(lambda: "running" in p.log(), 10, "startup line")
        self.assertEqual(p.stop(), 0)
        lines = [l for l in p.log().splitlines() if l.strip()]
        self.assertGreater(len(lines), 1)
        for l in lines:
            obj = json.loads(l)
            self.assertIn(obj["level"], ("info", "warning", "error", "debug"))
            self.assertIn("message", obj)


if __name__ == "__main__":
    unittest.main()
