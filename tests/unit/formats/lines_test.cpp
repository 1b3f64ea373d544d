#include <doctest/doctest.h>

#include "formats_test_util.h"

using namespace logship::formats;
using namespace logship::formats::test;

namespace {

std::string error_of(const FormatOptions& o, std::string_view in, size_t step = SIZE_MAX) {
  try {
    parse(o, in, step);
  } catch (const FormatError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("ndjson: one validated JSON value per line, text as is") {
  std::string f =
      "{\"a\":1}\n\n  {\"b\": [1, 2]}  \r\n[1,2]\n\"str\"\n{\"time\":1700000000}\n{\"x\":\"y\"}";
  for (size_t step : {SIZE_MAX, size_t{1}, size_t{0}}) {
    RecordParser* p = nullptr;
    auto recs = parse(opts_for(Format::kNdjson), f, step, &p);
    REQUIRE(recs.size() == 6);
    CHECK(recs[0].text == "{\"a\":1}");
    CHECK(recs[0].json_value);
    CHECK(recs[1].text == "  {\"b\": [1, 2]}  ");
    CHECK(recs[2].text == "[1,2]");
    CHECK_FALSE(recs[2].json_value);  // only objects are embedded as JSON
    CHECK_FALSE(recs[3].json_value);
    CHECK(recs[4].time_set);
    CHECK(recs[5].text == "{\"x\":\"y\"}");
    CHECK(p->untimed_records() == 5);
  }
}

TEST_CASE("ndjson: time from a top-level time or timestamp field") {
  auto t = [](std::string_view line) {
    auto recs = parse(opts_for(Format::kNdjson), line);
    REQUIRE(recs.size() == 1);
    return recs[0].time_set ? recs[0].time_ns : -1;
  };
  CHECK(t(R"({"time":1700000000})") == 1700000000LL * 1'000'000'000);
  CHECK(t(R"({"time":1700000000.25})") == 1700000000LL * 1'000'000'000 + 250'000'000);
  CHECK(t(R"({"timestamp":"2024-01-02T03:04:05.5Z"})") ==
        1704164645LL * 1'000'000'000 + 500'000'000);
  CHECK(t(R"({"msg":"x","timestamp":1})") == 1'000'000'000);
  CHECK(t(R"({"time":"yesterday"})") == -1);
  CHECK(t(R"({"time":true})") == -1);
  CHECK(t(R"({"nested":{"time":1}})") == -1);
  CHECK(t(R"({"time":1e300})") == -1);
}

TEST_CASE("ndjson: an invalid line is a FormatError with its line number") {
  std::string e = error_of(opts_for(Format::kNdjson), "{\"a\":1}\n{\"a\":}\n", 0);
  CHECK(e.find("ndjson: line 2 (byte offset 8): invalid JSON") != std::string::npos);
  CHECK(error_of(opts_for(Format::kNdjson), "{\"a\":1} {\"b\":2}\n").find("line 1") !=
        std::string::npos);
  CHECK(error_of(opts_for(Format::kNdjson), "{\"a\":\"\xff\"}\n").find("invalid JSON") !=
        std::string::npos);
}

TEST_CASE("ndjson and lines enforce max_record_bytes") {
  for (Format f : {Format::kNdjson, Format::kLines}) {
    FormatOptions o = opts_for(f);
    o.max_record_bytes = 16;
    CHECK(parse(o, "{\"a\":\"123456\"}\n").size() == 1);
    std::string big = "{\"a\":\"" + std::string(40, 'x') + "\"}";
    for (size_t step : {SIZE_MAX, size_t{1}, size_t{5}}) {
      std::string e = error_of(o, "{}\n" + big + "\n{}\n", step);
      CHECK(e.find("line 2") != std::string::npos);
      CHECK(e.find("exceeds max_record_bytes (16)") != std::string::npos);
    }
    CHECK(error_of(o, big, 3).find("exceeds max_record_bytes") != std::string::npos);
  }
}

TEST_CASE("lines: one record per line, no validation, no time, blank lines skipped") {
  std::string f = "first\r\n\nsecond {not json\n\n third";
  for (size_t step : {SIZE_MAX, size_t{1}, size_t{0}}) {
    auto recs = parse(opts_for(Format::kLines), f, step);
    REQUIRE(recs.size() == 3);
    CHECK(recs[0].text == "first");
    CHECK(recs[1].text == "second {not json");
    CHECK(recs[2].text == " third");
    for (auto& r : recs) {
      CHECK_FALSE(r.json_value);
      CHECK_FALSE(r.time_set);
    }
  }
  CHECK(parse(opts_for(Format::kLines), "").empty());
  CHECK(parse_format("vpcflow") == Format::kVpcFlow);
  CHECK_FALSE(parse_format("parquet"));
  CHECK(format_name(Format::kCloudTrail) == "cloudtrail");
}

TEST_CASE("decompressor output feeds a parser end to end") {
  std::string body;
  for (int i = 0; i < 20000; ++i)
    body += "{\"i\":" + std::to_string(i) + ",\"time\":" + std::to_string(1700000000 + i) + "}\n";
  std::string gz = gzip(body.substr(0, body.size() / 2)) + gzip(body.substr(body.size() / 2));
  Decompressor d(Compression::kAuto);
  auto p = make_parser(opts_for(Format::kNdjson));
  uint64_t n = 0;
  int64_t last = 0;
  auto emit = [&](const Record& r) {
    ++n;
    last = r.time_ns;
  };
  auto sink = [&](std::string_view s) { p->feed(s, emit); };
  for (auto piece : pieces(gz, 10000)) d.feed(piece, sink);
  d.finish(sink);
  p->finish(emit);
  CHECK(n == 20000);
  CHECK(last == (1700000000LL + 19999) * 1'000'000'000);
  CHECK(p->bytes_in() == body.size());
}
