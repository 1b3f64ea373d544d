// Verifies multiline aggregation of the file source (CONFIG.md "Source file", `multiline`; the
// modes behave as Vector's).
#include <doctest/doctest.h>

#include <chrono>
#include <string>
#include <vector>

#include "agent/observe/metrics.h"
#include "agent/pipeline/event.h"
#include "plugins/sources/file/decoder.h"

using namespace logship;

namespace {

struct Ev {
  std::string text;
  int64_t time;
  uint8_t flags;
};

struct Collector : EventEmitter {
  std::vector<Ev> evs;
  void emit(std::string_view text, int64_t time_ns, uint8_t flags) override {
    evs.push_back({std::string(text), time_ns, flags});
  }
  std::vector<std::string> texts() const {
    std::vector<std::string> v;
    for (auto& e : evs) v.push_back(e.text);
    return v;
  }
};

FileDecodeConfig ml(std::string start, std::string condition, std::string mode) {
  FileDecodeConfig c;
  c.multiline = true;
  c.start_pattern = std::move(start);
  c.condition_pattern = std::move(condition);
  c.mode = std::move(mode);
  return c;
}

/// Feeds whole lines with consecutive offsets; line i is read at time 1000 + i.
struct Feeder {
  explicit Feeder(const FileDecodeConfig& cfg, const char* id = "decode_ml")
      : metrics(id, "file", "source"), dec(make_line_decoder(cfg, metrics)) {}
  void lines(std::initializer_list<std::string_view> ls) {
    for (auto l : ls) line(l);
  }
  void line(std::string_view l) {
    dec->line(l, false, offset, offset + l.size() + 1, 1000 + n++, out);
    offset += l.size() + 1;
  }
  /// A line the tailer split into parts of `max` bytes.
  void long_line(std::string_view l, size_t max) {
    while (l.size() > max) {
      dec->line(l.substr(0, max), true, offset, offset + max, 1000 + n, out);
      offset += max;
      l.remove_prefix(max);
    }
    dec->line(l, true, offset, offset + l.size() + 1, 1000 + n++, out);
    offset += l.size() + 1;
  }
  void force() { dec->flush(std::chrono::steady_clock::now(), true, out); }
  ComponentMetrics metrics;
  std::unique_ptr<LineDecoder> dec;
  Collector out;
  uint64_t offset = 0;
  int64_t n = 0;
};

using V = std::vector<std::string>;

}  // namespace

TEST_CASE("multiline continue_through: Vector's example and a Java stack trace") {
  Feeder f(ml("^[^\\s]", "^[\\s]+", "continue_through"));
  f.lines({"some usual line", "some other usual line", "first part", " second part", " last part",
           "another normal message", "finishing message",
           " last part of the incomplete finishing message"});
  f.force();
  CHECK(f.out.texts() == V{"some usual line", "some other usual line",
                           "first part\n second part\n last part", "another normal message",
                           "finishing message\n last part of the incomplete finishing message"});
  CHECK(f.out.evs[2].time == 1002);  // the first line's time
  CHECK(f.out.evs[2].flags == 0);

  Feeder j(ml("^[^\\s]", "^[\\s]+at|^Caused by", "continue_through"));
  j.lines({"2024-01-02 ERROR boom", "java.lang.IllegalStateException: bad",
           "    at com.foo.Bar.run(Bar.java:10)", "    at java.lang.Thread.run(Thread.java:750)",
           "Caused by: java.io.IOException: eof", "    at com.foo.Io.read(Io.java:3)",
           "    ... 1 more", "2024-01-02 INFO next"});
  j.force();
  CHECK(j.out.texts() == V{"2024-01-02 ERROR boom",
                           "java.lang.IllegalStateException: bad\n"
                           "    at com.foo.Bar.run(Bar.java:10)\n"
                           "    at java.lang.Thread.run(Thread.java:750)\n"
                           "Caused by: java.io.IOException: eof\n"
                           "    at com.foo.Io.read(Io.java:3)",
                           "    ... 1 more", "2024-01-02 INFO next"});
}

TEST_CASE("multiline continue_past: backslash continuations and a Python traceback") {
  Feeder f(ml("\\\\$", "\\\\$", "continue_past"));
  f.lines({"some usual line", "first part \\", "second part \\", "last part",
           "another normal message"});
  f.force();
  CHECK(f.out.texts() ==
        V{"some usual line", "first part \\\nsecond part \\\nlast part", "another normal message"});

  Feeder p(ml("^Traceback", "^\\s", "continue_past"));
  p.lines({"INFO starting",
           "Traceback (most recent call last):", "  File \"app.py\", line 3, in <module>",
           "    main()", "  File \"app.py\", line 2, in main", "    1/0",
           "ZeroDivisionError: division by zero", "INFO next"});
  p.force();
  CHECK(p.out.texts() == V{"INFO starting",
                           "Traceback (most recent call last):\n"
                           "  File \"app.py\", line 3, in <module>\n"
                           "    main()\n"
                           "  File \"app.py\", line 2, in main\n"
                           "    1/0\n"
                           "ZeroDivisionError: division by zero",
                           "INFO next"});
}

TEST_CASE("multiline halt_before: a Python traceback in a timestamped log") {
  Feeder f(ml("", "^\\d{4}-\\d{2}-\\d{2} ", "halt_before"));
  f.lines({"2024-01-02 10:00:00 INFO a", "2024-01-02 10:00:01 ERROR failed",
           "Traceback (most recent call last):", "  File \"app.py\", line 2, in main",
           "ValueError: x", "2024-01-02 10:00:02 INFO b"});
  CHECK(f.out.texts() == V{"2024-01-02 10:00:00 INFO a",
                           "2024-01-02 10:00:01 ERROR failed\n"
                           "Traceback (most recent call last):\n"
                           "  File \"app.py\", line 2, in main\n"
                           "ValueError: x"});
  CHECK(f.dec->held_from() == f.offset - std::string_view("2024-01-02 10:00:02 INFO b").size() - 1);
  f.force();
  CHECK(f.out.evs.back().text == "2024-01-02 10:00:02 INFO b");
  CHECK_FALSE(f.dec->held_from());
}

TEST_CASE("multiline halt_with: statements ending with a semicolon") {
  Feeder f(ml("[^;]$", ";$", "halt_with"));
  f.lines({"some usual line;", "first part", "second part", "last part;", "another normal message;",
           "finishing message", "last part of the incomplete"});
  f.force();
  CHECK(f.out.texts() == V{"some usual line;", "first part\nsecond part\nlast part;",
                           "another normal message;",
                           "finishing message\nlast part of the incomplete"});
}

TEST_CASE("multiline timeout flush and held_from offsets") {
  auto cfg = ml("^[^\\s]", "^\\s", "continue_through");
  cfg.multiline_timeout = std::chrono::milliseconds(200);
  Feeder f(cfg);
  f.line("plain");  // offset 0..6: passes through once the next line does not continue it
  CHECK(f.dec->held_from() == 0u);
  f.line("start");  // offset 6
  CHECK(f.out.texts() == V{"plain"});
  CHECK(f.dec->held_from() == 6u);
  f.line("  more");
  CHECK(f.dec->held_from() == 6u);
  auto now = std::chrono::steady_clock::now();
  f.dec->flush(now, false, f.out);  // not timed out yet
  CHECK(f.out.evs.size() == 1);
  f.dec->flush(now + std::chrono::milliseconds(250), false, f.out);
  CHECK(f.out.texts() == V{"plain", "start\n  more"});
  CHECK_FALSE(f.dec->held_from());
  f.dec->flush(now + std::chrono::seconds(5), false, f.out);  // nothing more
  CHECK(f.out.evs.size() == 2);
  // A line that would have continued the flushed event now starts nothing: passes through.
  f.line("  orphan");
  CHECK(f.out.evs.back().text == "  orphan");
}

TEST_CASE("multiline max_lines and max_bytes caps flag kTruncated") {
  auto cfg = ml("^[^\\s]", "^\\s", "continue_through");
  cfg.multiline_max_lines = 3;
  Feeder f(cfg);
  f.lines({"head", " 1", " 2", " 3", " 4", "next"});
  f.force();
  CHECK(f.out.texts() == V{"head\n 1\n 2", " 3\n 4", "next"});
  CHECK(f.out.evs[0].flags == Event::kTruncated);
  CHECK(f.out.evs[1].flags == Event::kTruncated);
  CHECK(f.out.evs[2].flags == 0);

  auto cfg2 = ml("^[^\\s]", "^\\s", "continue_through");
  cfg2.multiline_max_bytes = 12;
  Feeder g(cfg2, "decode_ml2");
  g.lines({"head", " abc", " defgh", "x"});
  g.force();
  CHECK(g.out.texts() == V{"head\n abc", " defgh", "x"});
  CHECK(g.out.evs[0].flags == Event::kTruncated);
  CHECK(g.out.evs[1].flags == Event::kTruncated);
  for (auto& e : g.out.evs) CHECK(e.text.size() <= 12);

  // One line longer than max_bytes is cut into max_bytes pieces.
  Feeder h(cfg2, "decode_ml3");
  h.lines({"0123456789abcdefghijklmnopqrstuvwxyz", " tail"});
  h.force();
  CHECK(h.out.texts() == V{"0123456789ab", "cdefghijklmn", "opqrstuvwxyz", " tail"});
  for (auto& e : h.out.evs) CHECK(e.flags == Event::kTruncated);
}

TEST_CASE("multiline glues the parts of a line the tailer split") {
  Feeder f(ml("^[^\\s]", "^\\s", "continue_through"));
  f.line("Exception: first");
  f.long_line("  at very.long.frame(" + std::string(30, 'x') + ")", 10);  // not re-matched
  f.line("next");
  f.force();
  REQUIRE(f.out.evs.size() == 2);
  CHECK(f.out.evs[0].text ==
        "Exception: first\n  at very.long.frame(" + std::string(30, 'x') + ")");
  CHECK(f.out.evs[0].flags == Event::kTruncated);  // it held a split line
  CHECK(f.out.evs[1].text == "next");
}

TEST_CASE("multiline with the json codec: pretty-printed objects") {
  auto cfg = ml("^\\{", "^\\}", "halt_with");
  cfg.codec = "json";
  cfg.timestamp_field = "ts";
  cfg.timestamp_format = "epoch_s";
  Feeder f(cfg, "decode_ml_json");
  f.lines({"{", "  \"ts\": 1700000000,", "  \"msg\": \"hi\"", "}", "not json", "{\"ts\": 5}"});
  REQUIRE(f.out.evs.size() == 2);
  CHECK(f.out.evs[0].text == "{\n  \"ts\": 1700000000,\n  \"msg\": \"hi\"\n}");
  CHECK(f.out.evs[0].flags == Event::kJsonValue);
  CHECK(f.out.evs[0].time == 1700000000LL * 1'000'000'000);
  CHECK(f.out.evs[1].text == "not json");  // matches no start: alone, and not JSON
  CHECK(f.out.evs[1].flags == 0);
  CHECK(f.metrics.errors("decode", "invalid_json").value() == 1);
  f.force();  // a one-line object starts an event (the condition is not checked on it)
  REQUIRE(f.out.evs.size() == 3);
  CHECK(f.out.evs[2].time == 5LL * 1'000'000'000);
  CHECK(f.out.evs[2].flags == Event::kJsonValue);
}
