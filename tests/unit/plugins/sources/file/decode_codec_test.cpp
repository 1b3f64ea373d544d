// Verifies the file source's codecs (lines, json, cri, docker) and their configuration keys
// (CONFIG.md "Source file": codec, timestamp, multiline).
#include <doctest/doctest.h>

#include <chrono>
#include <string>
#include <vector>

#include "agent/config/config.h"
#include "agent/observe/metrics.h"
#include "agent/pipeline/event.h"
#include "plugins/sources/file/decoder.h"

using namespace logship;

namespace {

constexpr int64_t kSec = 1'000'000'000;
constexpr int64_t kRead = 42;  // read time of every line

struct Ev {
  std::string text;
  int64_t time;
  uint8_t flags;
  std::string stream;
};

struct Collector : EventEmitter {
  const LineDecoder* dec = nullptr;
  std::vector<Ev> evs;
  void emit(std::string_view text, int64_t time_ns, uint8_t flags) override {
    evs.push_back({std::string(text), time_ns, flags, std::string(dec->last_stream())});
  }
};

struct Feeder {
  Feeder(const FileDecodeConfig& cfg, const char* id)
      : metrics(id, "file", "source"), dec(make_line_decoder(cfg, metrics)) {
    out.dec = dec.get();
  }
  /// Returns the line's start offset.
  uint64_t line(std::string_view l) {
    uint64_t start = offset;
    dec->line(l, false, offset, offset + l.size() + 1, kRead, out);
    offset += l.size() + 1;
    return start;
  }
  void long_line(std::string_view l, size_t max) {
    while (l.size() > max) {
      dec->line(l.substr(0, max), true, offset, offset + max, kRead, out);
      offset += max;
      l.remove_prefix(max);
    }
    dec->line(l, true, offset, offset + l.size() + 1, kRead, out);
    offset += l.size() + 1;
  }
  void force() { dec->flush(std::chrono::steady_clock::now(), true, out); }
  uint64_t errors(std::string_view kind) { return metrics.errors("decode", kind).value(); }
  ComponentMetrics metrics;
  std::unique_ptr<LineDecoder> dec;
  Collector out;
  uint64_t offset = 0;
};

FileDecodeConfig codec(std::string c) {
  FileDecodeConfig cfg;
  cfg.codec = std::move(c);
  return cfg;
}

FileDecodeConfig parse(const std::string& body, uint64_t max_line_bytes = 1 << 20) {
  std::string text =
      "data_dir: /tmp/x\nsources:\n  in:\n    type: file\n    include: [/var/log/*.log]\n" + body +
      "sinks:\n  out: {type: blackhole, inputs: [in]}\n";
  Config cfg = load_config_text(text, "test.yaml");
  REQUIRE(cfg.sources.size() == 1);
  return FileDecodeConfig::parse(*cfg.sources[0].node, max_line_bytes);
}

}  // namespace

TEST_CASE("decode lines codec passes lines through") {
  Feeder f(codec("lines"), "decode_lines");
  f.line("hello");
  f.line("");
  f.dec->line("part", true, 20, 24, 7, f.out);
  REQUIRE(f.out.evs.size() == 3);
  CHECK(f.out.evs[0].text == "hello");
  CHECK(f.out.evs[0].time == kRead);
  CHECK(f.out.evs[0].flags == 0);
  CHECK(f.out.evs[0].stream.empty());
  CHECK(f.out.evs[1].text.empty());
  CHECK(f.out.evs[2].flags == Event::kTruncated);
  CHECK_FALSE(f.dec->held_from());
}

TEST_CASE("decode json codec: valid objects, timestamps and invalid records") {
  auto cfg = codec("json");
  cfg.timestamp_field = "time";
  Feeder f(cfg, "decode_json1");
  f.line(R"({"time":"2024-01-02T03:04:05.5Z","msg":"a","n":[1,2.5,{"x":null}],"b":true})");
  f.line(R"({"msg":"no time"})");
  f.line(R"({"time":"yesterday","msg":"bad time"})");
  f.line(R"({"time":1704164645,"msg":"number for rfc3339"})");
  f.line("   ");  // blank: skipped
  f.line(R"({"time":"2024-01-02T03:04:05Z","msg":)");
  f.line(R"({"a":1} trailing)");
  f.line(R"([1,2])");
  f.line(R"({"a":tru})");
  f.line(R"({"a":"bad \x escape"})");
  f.line(R"({"a":1,})");
  f.line("not json at all");
  f.line(R"({"time":"2024-01-02T03:04:05Z","nested":{"deep":[{"time":"x"}]}}  )");
  REQUIRE(f.out.evs.size() == 12);
  CHECK(f.out.evs[0].flags == Event::kJsonValue);
  CHECK(f.out.evs[0].time == 1704164645 * kSec + 500'000'000);
  CHECK(f.out.evs[0].text ==
        R"({"time":"2024-01-02T03:04:05.5Z","msg":"a","n":[1,2.5,{"x":null}],"b":true})");
  CHECK(f.out.evs[1].time == kRead);
  CHECK(f.out.evs[1].flags == Event::kJsonValue);
  CHECK(f.out.evs[2].time == kRead);
  CHECK(f.out.evs[3].time == kRead);
  for (int i = 4; i <= 10; ++i) {
    CAPTURE(i);
    CHECK(f.out.evs[i].flags == 0);
    CHECK(f.out.evs[i].time == kRead);
  }
  CHECK(f.out.evs[10].text == "not json at all");
  CHECK(f.out.evs[11].flags == Event::kJsonValue);
  CHECK(f.out.evs[11].time == 1704164645 * kSec);
  CHECK(f.errors("invalid_json") == 7);
  CHECK(f.errors("timestamp_missing") == 1);
  CHECK(f.errors("timestamp_unparseable") == 2);
}

TEST_CASE("decode json codec: nested timestamp fields and epoch formats") {
  auto cfg = codec("json");
  cfg.timestamp_field = "meta.ts";
  cfg.timestamp_format = "epoch_ms";
  Feeder f(cfg, "decode_json2");
  f.line(R"({"meta":{"other":1,"ts":1700000000123},"x":"y"})");
  f.line(R"({"meta":{"ts":"1700000000123.5"}})");
  f.line(R"({"ts":1,"meta":2})");
  f.line(R"({"meta":{"ts":{"v":1}}})");
  REQUIRE(f.out.evs.size() == 4);
  CHECK(f.out.evs[0].time == 1700000000123 * 1'000'000);
  CHECK(f.out.evs[1].time == 1700000000123 * 1'000'000 + 500'000);
  CHECK(f.out.evs[2].time == kRead);
  CHECK(f.out.evs[3].time == kRead);
  CHECK(f.errors("timestamp_missing") == 1);
  CHECK(f.errors("timestamp_unparseable") == 1);
  for (auto& e : f.out.evs) CHECK(e.flags == Event::kJsonValue);

  auto cfg2 = codec("json");
  cfg2.timestamp_field = "t";
  cfg2.timestamp_format = "%d/%b/%Y:%H:%M:%S %z";
  Feeder g(cfg2, "decode_json3");
  g.line(R"({"t":"10/Oct/2000:13:55:36 -0700"})");
  REQUIRE(g.out.evs.size() == 1);
  CHECK(g.out.evs[0].time == 971211336 * kSec);
}

TEST_CASE("decode cri codec: full, partial and interleaved records") {
  Feeder f(codec("cri"), "decode_cri1");
  f.line("2016-10-06T00:17:09.669794202Z stdout F hello world");
  REQUIRE(f.out.evs.size() == 1);
  CHECK(f.out.evs[0].text == "hello world");
  CHECK(f.out.evs[0].time == 1475713029 * kSec + 669'794'202);
  CHECK(f.out.evs[0].stream == "stdout");
  CHECK_FALSE(f.dec->held_from());

  uint64_t p1 = f.line("2016-10-06T00:17:10Z stdout P part one, ");
  CHECK(f.dec->held_from() == p1);
  uint64_t e1 = f.line("2016-10-06T00:17:10.5Z stderr P err ");
  f.line("2016-10-06T00:17:11Z stdout P part two, ");
  CHECK(f.dec->held_from() == p1);
  f.line("2016-10-06T00:17:12Z stdout F done");
  REQUIRE(f.out.evs.size() == 2);
  CHECK(f.out.evs[1].text == "part one, part two, done");
  CHECK(f.out.evs[1].time == 1475713030 * kSec);  // the first record's time
  CHECK(f.out.evs[1].stream == "stdout");
  CHECK(f.dec->held_from() == e1);
  f.line("2016-10-06T00:17:13Z stderr F:x more");  // extra tags
  REQUIRE(f.out.evs.size() == 3);
  CHECK(f.out.evs[2].text == "err more");
  CHECK(f.out.evs[2].stream == "stderr");
  CHECK(f.out.evs[2].time == 1475713030 * kSec + 500'000'000);
  CHECK_FALSE(f.dec->held_from());
  f.line("2016-10-06T00:17:14Z stdout F");  // empty message
  CHECK(f.out.evs.back().text.empty());

  // A partial record left at the end is emitted on a forced flush.
  f.line("2016-10-06T00:17:15Z stdout P dangling");
  f.dec->flush(std::chrono::steady_clock::now() + std::chrono::hours(1), false, f.out);
  CHECK(f.out.evs.back().text.empty());
  f.force();
  CHECK(f.out.evs.back().text == "dangling");
  CHECK_FALSE(f.dec->held_from());
  CHECK(f.errors("cri_malformed") == 0);
}

TEST_CASE("decode cri codec: malformed records pass through and are counted") {
  Feeder f(codec("cri"), "decode_cri2");
  f.line("2016-10-06T00:17:10Z stdout P kept ");
  f.line("not a cri line");
  f.line("2016-13-06T00:17:10Z stdout F bad time");
  f.line("2016-10-06T00:17:10Z stdlog F bad stream");
  f.line("2016-10-06T00:17:10Z stdout X bad tag");
  f.line("2016-10-06T00:17:10Z stdout");
  f.line("2016-10-06T00:17:11Z stdout F going");
  REQUIRE(f.out.evs.size() == 6);
  CHECK(f.out.evs[0].text == "not a cri line");
  CHECK(f.out.evs[0].time == kRead);
  CHECK(f.out.evs[0].stream.empty());
  CHECK(f.out.evs[3].text == "2016-10-06T00:17:10Z stdout X bad tag");
  CHECK(f.out.evs[5].text == "kept going");  // malformed lines do not break reassembly
  CHECK(f.errors("cri_malformed") == 5);
}

TEST_CASE("decode cri codec: reassembled records are capped at max_line_bytes") {
  auto cfg = codec("cri");
  cfg.max_line_bytes = 10;
  Feeder f(cfg, "decode_cri3");
  f.line("2016-10-06T00:17:10Z stdout P 0123456");
  f.line("2016-10-06T00:17:11Z stdout P 789abcdef");
  f.line("2016-10-06T00:17:12Z stdout F XYZ");
  f.line("2016-10-06T00:17:13Z stdout F 0123456789ABCDEFGHIJ!");
  REQUIRE(f.out.evs.size() == 5);
  CHECK(f.out.evs[0].text == "0123456789");
  CHECK(f.out.evs[0].flags == Event::kTruncated);
  CHECK(f.out.evs[1].text == "abcdefXYZ");
  CHECK(f.out.evs[1].flags == Event::kTruncated);
  CHECK(f.out.evs[1].time == 1475713030 * kSec);
  CHECK(f.out.evs[2].text == "0123456789");
  CHECK(f.out.evs[3].text == "ABCDEFGHIJ");
  CHECK(f.out.evs[4].text == "!");
  for (auto& e : f.out.evs) CHECK(e.flags == Event::kTruncated);
}

TEST_CASE("decode cri codec: a record the tailer split is reassembled") {
  Feeder f(codec("cri"), "decode_cri4");
  f.long_line("2016-10-06T00:17:10Z stderr F " + std::string(25, 'a'), 40);
  f.line("2016-10-06T00:17:11Z stdout F next");
  REQUIRE(f.out.evs.size() == 2);
  CHECK(f.out.evs[0].text == std::string(25, 'a'));
  CHECK(f.out.evs[0].stream == "stderr");
  CHECK(f.out.evs[1].text == "next");
}

TEST_CASE("decode docker codec: json-file records with partials") {
  Feeder f(codec("docker"), "decode_docker1");
  f.line(R"({"log":"hello\n","stream":"stdout","time":"2019-03-01T12:00:00.5Z"})");
  REQUIRE(f.out.evs.size() == 1);
  CHECK(f.out.evs[0].text == "hello");
  CHECK(f.out.evs[0].time == 1551441600 * kSec + 500'000'000);
  CHECK(f.out.evs[0].stream == "stdout");
  CHECK(f.out.evs[0].flags == 0);

  uint64_t p1 =
      f.line(R"({"log":"long \"quoted\" ","stream":"stdout","time":"2019-03-01T12:00:01Z"})");
  f.line(R"({"log":"err\r\n","stream":"stderr","time":"2019-03-01T12:00:02Z","attrs":{"a":"b"}})");
  CHECK(f.dec->held_from() == p1);
  f.line(R"({"time":"2019-03-01T12:00:03Z","stream":"stdout","log":"line\u00e9\n"})");
  REQUIRE(f.out.evs.size() == 3);
  CHECK(f.out.evs[1].text == "err");
  CHECK(f.out.evs[1].stream == "stderr");
  CHECK(f.out.evs[2].text == "long \"quoted\" line\xc3\xa9");
  CHECK(f.out.evs[2].time == 1551441601 * kSec);
  CHECK(f.out.evs[2].stream == "stdout");
  CHECK_FALSE(f.dec->held_from());
  CHECK(f.errors("docker_malformed") == 0);
}

TEST_CASE("decode docker codec: malformed records pass through and are counted") {
  Feeder f(codec("docker"), "decode_docker2");
  f.line(R"({"log":"x\n","stream":"stdout"})");
  f.line(R"({"log":"x\n","stream":"stdout","time":"soon"})");
  f.line(R"({"log":1,"stream":"stdout","time":"2019-03-01T12:00:00Z"})");
  f.line(R"({"log":"x\n","stream":"console","time":"2019-03-01T12:00:00Z"})");
  f.line("plain text");
  f.line(R"(["log"])");
  REQUIRE(f.out.evs.size() == 6);
  CHECK(f.out.evs[0].text == R"({"log":"x\n","stream":"stdout"})");
  for (auto& e : f.out.evs) {
    CHECK(e.time == kRead);
    CHECK(e.flags == 0);
    CHECK(e.stream.empty());
  }
  CHECK(f.errors("docker_malformed") == 6);
  // A record longer than max_line_bytes arrives in parts: raw, flagged, never dropped.
  f.long_line(
      R"({"log":"0123456789012345678901234567890123456789\n","stream":"stdout","time":"2019-03-01T12:00:00Z"})",
      40);
  CHECK(f.out.evs.size() == 9);
  CHECK(f.out.evs.back().flags == Event::kTruncated);
}

TEST_CASE("decode docker codec with multiline: a Java stack trace per stream") {
  auto cfg = codec("docker");
  cfg.multiline = true;
  cfg.start_pattern = "^[^\\s]";
  cfg.condition_pattern = "^[\\s]+at";
  cfg.mode = "continue_through";
  Feeder f(cfg, "decode_docker3");
  f.line(R"({"log":"Exception in thread main\n","stream":"stderr","time":"2019-03-01T12:00:00Z"})");
  f.line(R"({"log":"request ok\n","stream":"stdout","time":"2019-03-01T12:00:01Z"})");
  f.line(R"({"log":"\tat a.B.c(B.java:1)\n","stream":"stderr","time":"2019-03-01T12:00:02Z"})");
  f.line(R"({"log":"\tat a.B.d(B.java:2)\n","stream":"stderr","time":"2019-03-01T12:00:03Z"})");
  f.line(R"({"log":"next\n","stream":"stderr","time":"2019-03-01T12:00:04Z"})");
  f.force();
  REQUIRE(f.out.evs.size() == 3);
  CHECK(f.out.evs[0].text ==
        "Exception in thread main\n\tat a.B.c(B.java:1)\n\tat a.B.d(B.java:2)");
  CHECK(f.out.evs[0].stream == "stderr");
  CHECK(f.out.evs[0].time == 1551441600 * kSec);
  CHECK(f.out.evs[1].text == "request ok");
  CHECK(f.out.evs[1].stream == "stdout");
  CHECK(f.out.evs[2].text == "next");
}

TEST_CASE("decode cri codec with multiline: held_from covers both stages") {
  auto cfg = codec("cri");
  cfg.multiline = true;
  cfg.start_pattern = "^[^\\s]";
  cfg.condition_pattern = "^\\s";
  cfg.mode = "continue_through";
  Feeder f(cfg, "decode_cri5");
  uint64_t a = f.line("2016-10-06T00:17:10Z stdout F Traceback:");
  CHECK(f.dec->held_from() == a);
  f.line("2016-10-06T00:17:11Z stdout P   File ");
  f.line("2016-10-06T00:17:12Z stdout F x.py");
  CHECK(f.dec->held_from() == a);
  f.line("2016-10-06T00:17:13Z stdout F end");
  CHECK(f.out.evs.size() == 1);
  CHECK(f.out.evs[0].text == "Traceback:\n  File x.py");
  f.force();
  CHECK(f.out.evs.size() == 2);
}

TEST_CASE("decode config: codec, timestamp and multiline keys") {
  FileDecodeConfig d = parse("");
  CHECK(d.codec == "lines");
  CHECK_FALSE(d.timestamp_field);
  CHECK_FALSE(d.multiline);
  CHECK(d.max_line_bytes == 1u << 20);

  FileDecodeConfig j = parse(
      "    codec: json\n    timestamp: {field: meta.ts, format: \"%Y-%m-%d %H:%M:%S\"}\n"
      "    multiline:\n      start_pattern: '^\\{'\n      condition_pattern: '^\\}'\n"
      "      mode: halt_with\n      timeout: 250ms\n      max_lines: 10\n      max_bytes: 4KiB\n",
      4096);
  CHECK(j.codec == "json");
  CHECK(j.timestamp_field == "meta.ts");
  CHECK(j.timestamp_format == "%Y-%m-%d %H:%M:%S");
  CHECK(j.multiline);
  CHECK(j.start_pattern == "^\\{");
  CHECK(j.condition_pattern == "^\\}");
  CHECK(j.mode == "halt_with");
  CHECK(j.multiline_timeout == std::chrono::milliseconds(250));
  CHECK(j.multiline_max_lines == 10);
  CHECK(j.multiline_max_bytes == 4096);
  CHECK(j.max_line_bytes == 4096);

  FileDecodeConfig t = parse("    codec: json\n    timestamp: {field: ts}\n");
  CHECK(t.timestamp_format == "rfc3339");
  CHECK(parse("    codec: cri\n").codec == "cri");
  CHECK(parse("    codec: docker\n").codec == "docker");
}

TEST_CASE("decode config: rejects bad codec, timestamp and multiline settings") {
  CHECK_THROWS_AS(parse("    codec: xml\n"), ConfigError);
  CHECK_THROWS_WITH_AS(parse("    timestamp: {field: ts}\n"), doctest::Contains("codec: json"),
                       ConfigError);
  CHECK_THROWS_AS(parse("    codec: json\n    timestamp: {format: rfc3339}\n"), ConfigError);
  CHECK_THROWS_AS(parse("    codec: json\n    timestamp: {field: ts, format: nope}\n"),
                  ConfigError);
  CHECK_THROWS_AS(parse("    codec: json\n    timestamp: {field: ts, format: '%Y %Q'}\n"),
                  ConfigError);
  CHECK_THROWS_AS(parse("    codec: json\n    timestamp: {field: ts, zone: UTC}\n"), ConfigError);
  CHECK_THROWS_AS(parse("    codec: json\n    timestamp: {field: 'a..b'}\n"), ConfigError);
  const std::string ok = "      start_pattern: a\n      condition_pattern: b\n";
  CHECK_NOTHROW(parse("    multiline:\n" + ok + "      mode: continue_past\n"));
  CHECK_THROWS_AS(parse("    multiline:\n" + ok), ConfigError);  // mode is required
  CHECK_THROWS_AS(parse("    multiline:\n" + ok + "      mode: sometimes\n"), ConfigError);
  CHECK_THROWS_AS(parse("    multiline:\n      condition_pattern: b\n      mode: halt_with\n"),
                  ConfigError);
  CHECK_THROWS_WITH_AS(
      parse("    multiline:\n      start_pattern: '('\n      condition_pattern: b\n"
            "      mode: halt_with\n"),
      doctest::Contains("start_pattern"), ConfigError);
  CHECK_THROWS_AS(parse("    multiline:\n" + ok + "      mode: halt_with\n      max_lines: 0\n"),
                  ConfigError);
  CHECK_THROWS_AS(parse("    multiline:\n" + ok + "      mode: halt_with\n      timeout: 0s\n"),
                  ConfigError);
  CHECK_THROWS_WITH_AS(
      parse("    multiline:\n" + ok + "      mode: halt_with\n      timeout_ms: 5\n"),
      doctest::Contains("timeout_ms"), ConfigError);
}

TEST_CASE("decode json codec: fractional epoch numbers keep their digits") {
  auto cfg = codec("json");
  cfg.timestamp_field = "ts";
  cfg.timestamp_format = "epoch_s";
  Feeder f(cfg, "decode_json4");
  f.line(R"({"ts":1700000000.123456})");
  f.line(R"({"ts":1.7e9})");
  f.line(R"({"ts":-1.5})");
  f.line(R"({"ts":1e300})");
  REQUIRE(f.out.evs.size() == 4);
  CHECK(f.out.evs[0].time == 1700000000 * kSec + 123'456'000);
  CHECK(f.out.evs[1].time == 1700000000 * kSec);
  CHECK(f.out.evs[2].time == -1'500'000'000);
  CHECK(f.out.evs[3].time == kRead);
  CHECK(f.errors("timestamp_unparseable") == 1);
}

TEST_CASE("decode: random and mutated input never breaks a decoder") {
  uint64_t seed = 0x9e3779b97f4a7c15ull;
  auto rnd = [&] {
    seed ^= seed << 13;
    seed ^= seed >> 7;
    seed ^= seed << 17;
    return seed;
  };
  const std::vector<std::string> samples = {
      "2016-10-06T00:17:09.669794202Z stdout P part ",
      "2016-10-06T00:17:09Z stderr F done",
      R"({"log":"partial","stream":"stdout","time":"2019-03-01T12:00:00Z"})",
      R"({"log":"full\n","stream":"stderr","time":"2019-03-01T12:00:00Z"})",
      R"({"ts":"2024-01-02 03:04:05","a":{"b":[1,2,{"c":null}]}})",
      "Exception in thread main",
      "    at a.b.C(C.java:1)",
      "plain \\"};
  for (const char* c : {"lines", "json", "cri", "docker"}) {
    for (bool multiline : {false, true}) {
      auto cfg = codec(c);
      cfg.max_line_bytes = 64;
      if (cfg.codec == "json") {
        cfg.timestamp_field = "a.b";
        cfg.timestamp_format = "%Y-%m-%d %H:%M:%S%.f%z";
      }
      if (multiline) {
        cfg.multiline = true;
        cfg.start_pattern = "^[^\\s]";
        cfg.condition_pattern = "^\\s|\\\\$";
        cfg.mode = (rnd() & 1) ? "continue_past" : "halt_with";
        cfg.multiline_max_lines = 4;
        cfg.multiline_max_bytes = 100;
      }
      Feeder f(cfg, "decode_random");
      for (int i = 0; i < 3000; ++i) {
        std::string l = samples[rnd() % samples.size()];
        int mutations = static_cast<int>(rnd() % 4);
        for (int m = 0; m < mutations && !l.empty(); ++m) {
          size_t pos = rnd() % l.size();
          switch (rnd() % 3) {
            case 0:
              l[pos] = static_cast<char>(rnd());
              break;
            case 1:
              l.erase(pos, 1 + rnd() % 8);
              break;
            default:
              l.insert(pos, std::string(1 + rnd() % 90, static_cast<char>('a' + rnd() % 3)));
          }
        }
        if (l.size() > 64) {
          f.long_line(l, 64);
        } else {
          f.line(l);
        }
        if (rnd() % 50 == 0) f.dec->flush(std::chrono::steady_clock::now(), rnd() % 2, f.out);
        if (auto h = f.dec->held_from()) CHECK(*h <= f.offset);
      }
      f.force();
      CHECK_FALSE(f.dec->held_from());
      for (auto& e : f.out.evs) CHECK(e.text.size() <= 100);
    }
  }
}
