#include "plugins/sinks/splunk_hec/encoder.h"

#include <doctest/doctest.h>
#include <simdjson.h>

#include <random>
#include <string>

using namespace logship;

namespace {

HecSinkConfig event_config() {
  HecSinkConfig c;
  c.endpoints = {"http://127.0.0.1:1"};
  return c;
}

std::string escaped(std::string_view in, size_t* replaced = nullptr) {
  std::string out;
  size_t r = json_escape_append(out, in);
  if (replaced) *replaced = r;
  return out;
}

/// Parses concatenated JSON objects with simdjson; returns how many, or -1 on a parse error.
int count_documents(const std::string& body) {
  simdjson::dom::parser parser;
  simdjson::dom::document_stream stream;
  if (parser.parse_many(body.data(), body.size(), 1 << 20).get(stream)) return -1;
  int n = 0;
  for (auto doc : stream) {
    if (doc.error()) return -1;
    ++n;
  }
  return n;
}

}  // namespace

TEST_CASE("HEC encoder writes the exact envelope of a small batch") {
  // Verifies time with three decimals, omitted empty metadata, kJsonValue and fields.
  EventBatch b;
  Event& e1 = b.add("hello", 1433188255500000000LL);
  e1.host = b.intern("h1");
  e1.sourcetype = b.intern("st");
  Event& e2 = b.add(R"({"a":1})", 0);
  e2.flags = Event::kJsonValue;
  b.set_fields(b.events()[1], R"({"f":"v"})");
  Event& e3 = b.add("x\"y", 1000);  // 1 µs: rounds toward zero to 0.000
  e3.index = b.intern("main");
  e3.source = b.intern("/var/log/a.log");

  HecEncoder enc(event_config());
  std::string out;
  for (auto& e : b.events()) CHECK(enc.encode(out, b, e) == 0);
  CHECK(out == R"({"time":1433188255.500,"host":"h1","sourcetype":"st","event":"hello"})"
               R"({"event":{"a":1},"fields":{"f":"v"}})"
               R"({"time":0.000,"source":"/var/log/a.log","index":"main","event":"x\"y"})");
  CHECK(count_documents(out) == 3);
}

TEST_CASE("HEC time has exactly three decimals, truncated toward zero") {
  // Verifies the `<sec>.<ms>` rendering across edge values.
  auto t = [](int64_t ns) {
    std::string s;
    append_hec_time(s, ns);
    return s;
  };
  CHECK(t(0) == "0.000");
  CHECK(t(1) == "0.000");
  CHECK(t(999999999) == "0.999");
  CHECK(t(1000000000) == "1.000");
  CHECK(t(1433188255005000000LL) == "1433188255.005");
  CHECK(t(1433188255050999999LL) == "1433188255.050");
  CHECK(t(-1500000000LL) == "-1.500");
  CHECK(t(INT64_MAX) == "9223372036.854");
  CHECK(t(INT64_MIN) == "-9223372036.854");
  // The last rendering is reused for the same millisecond, and only for it.
  CHECK(t(1433188255005000000LL) == "1433188255.005");
  CHECK(t(1433188255005999999LL) == "1433188255.005");
  CHECK(t(1433188255006000000LL) == "1433188255.006");
  CHECK(t(-1500000000LL) == "-1.500");
  CHECK(t(1433188255005000001LL) == "1433188255.005");
}

TEST_CASE("HEC encoder omits time for events without a positive timestamp") {
  // Verifies Splunk falls back to the receive time instead of getting a negative epoch.
  EventBatch b;
  b.add("a", -5);
  HecEncoder enc(event_config());
  std::string out;
  enc.encode(out, b, b.events()[0]);
  CHECK(out == R"({"event":"a"})");
}

TEST_CASE("JSON escaper escapes quotes, backslashes and every control character") {
  // Verifies short escapes and \u00XX for the other C0 controls; DEL passes through.
  CHECK(escaped("a\"b\\c") == "a\\\"b\\\\c");
  CHECK(escaped("\n\r\t\b\f") == "\\n\\r\\t\\b\\f");
  std::string all;
  for (int c = 0; c < 0x20; ++c) all.push_back(static_cast<char>(c));
  std::string want;
  for (int c = 0; c < 0x20; ++c) {
    switch (c) {
      case '\n':
        want += "\\n";
        break;
      case '\r':
        want += "\\r";
        break;
      case '\t':
        want += "\\t";
        break;
      case '\b':
        want += "\\b";
        break;
      case '\f':
        want += "\\f";
        break;
      default: {
        char buf[8];
        std::snprintf(buf, sizeof buf, "\\u%04x", c);
        want += buf;
      }
    }
  }
  CHECK(escaped(all) == want);
  CHECK(escaped("\x7f") == "\x7f");
  CHECK(escaped("plain ascii 123 {}[]/") == "plain ascii 123 {}[]/");
  CHECK(count_documents("{\"e\":\"" + escaped(all + "\"\\") + "\"}") == 1);
}

TEST_CASE("JSON escaper passes valid multi-byte UTF-8 through unchanged") {
  // Verifies 2-, 3- and 4-byte sequences including the range edges.
  size_t r = 99;
  std::string s =
      "\xC2\x80 é \xDF\xBF \xE0\xA0\x80 € \xED\x9F\xBF \xEE\x80\x80 \xEF\xBF\xBF "
      "\xF0\x90\x80\x80 😀 \xF4\x8F\xBF\xBF";
  CHECK(escaped(s, &r) == s);
  CHECK(r == 0);
}

TEST_CASE("JSON escaper replaces each invalid UTF-8 sequence by U+FFFD and counts it") {
  // Verifies overlongs, surrogates, > U+10FFFF, stray continuations, bad leads, truncation.
  const std::string R = "\xEF\xBF\xBD";
  struct Case {
    std::string in, out;
    size_t count;
  };
  const Case cases[] = {
      {"a\x80"
       "b",
       "a" + R + "b", 1},                       // stray continuation
      {"\xC0\xAF", R + R, 2},                   // overlong 2-byte lead C0
      {"\xC1\xBF", R + R, 2},                   // overlong 2-byte lead C1
      {"\xE0\x80\xAF", R + R + R, 3},           // overlong 3-byte
      {"\xF0\x80\x80\xAF", R + R + R + R, 4},   // overlong 4-byte
      {"\xED\xA0\x80", R + R + R, 3},           // surrogate U+D800
      {"\xED\xBF\xBF", R + R + R, 3},           // surrogate U+DFFF
      {"\xF4\x90\x80\x80", R + R + R + R, 4},   // U+110000
      {"\xF5\x80\x80\x80", R + R + R + R, 4},   // lead F5
      {"\xFF", R, 1},                           // lead FF
      {"x\xE2\x82", "x" + R, 1},                // truncated at the end
      {"\xE2\x82x", R + "x", 1},                // truncated before ASCII
      {"\xF0\x9F\x98", R, 1},                   // truncated 4-byte
      {"\xC3", R, 1},                           // lone lead at the end
      {"ok\xC3\xA9\xC3", "ok\xC3\xA9" + R, 1},  // valid then truncated
  };
  for (const auto& c : cases) {
    size_t r = 0;
    CHECK(escaped(c.in, &r) == c.out);
    CHECK(r == c.count);
  }
  EventBatch b;
  b.add("bad \xC0 byte \xED\xA0\x80", 1000000000);
  b.events()[0].host = b.intern("h\xFF");
  HecEncoder enc(event_config());
  std::string out;
  CHECK(enc.encode(out, b, b.events()[0]) == 5);
  CHECK(count_documents(out) == 1);
}

TEST_CASE("HEC encoder resolves metadata templates") {
  // Verifies literals, `{{ host }}` style metadata and `{{ field }}` indexed fields.
  HecSinkConfig c = event_config();
  std::string err;
  REQUIRE(HecTemplate::parse("fixed-host", c.host, err));
  REQUIRE(HecTemplate::parse("{{ source }}", c.sourcetype, err));
  REQUIRE(HecTemplate::parse("{{env}}", c.index, err));
  EventBatch b;
  Event& e = b.add("m", 2000000000);
  e.host = b.intern("orig");
  e.source = b.intern("/s");
  b.set_fields(b.events()[0], R"({"team":"a","env":"prod"})");
  HecEncoder enc(c);
  std::string out;
  enc.encode(out, b, b.events()[0]);
  CHECK(
      out ==
      R"({"time":2.000,"host":"fixed-host","source":"/s","sourcetype":"/s","index":"prod","event":"m","fields":{"team":"a","env":"prod"}})");
  HecTemplate bad;
  CHECK_FALSE(HecTemplate::parse("{{ host", bad, err));
  CHECK_FALSE(HecTemplate::parse("pre-{{ host }}", bad, err));
}

TEST_CASE("HEC raw encoder writes the text and a newline per event") {
  // Verifies the /raw body format.
  HecSinkConfig c = event_config();
  c.target = HecSinkConfig::Target::kRaw;
  EventBatch b;
  b.add("line one", 1);
  b.add("line \"two\"", 2);
  HecEncoder enc(c);
  std::string out;
  for (auto& e : b.events()) enc.encode(out, b, e);
  CHECK(out == "line one\nline \"two\"\n");
}

TEST_CASE("escaping round-trips random valid UTF-8 of every length through a JSON parser") {
  // Verifies the 16-byte SIMD scan and its scalar tail agree at every alignment and length.
  std::mt19937 rng(1234);
  const char32_t pool[] = {U'a', U'Z', U'0', U' ', U'"', U'\\', U'\n', U'\t', U'\x01', U'\x1f',
                           U'/', U'é', U'日', U'🙂', U'\x7f', U'{', U'}'};
  simdjson::dom::parser parser;
  for (int round = 0; round < 3000; ++round) {
    size_t len = rng() % 80 + (round % 10 == 0 ? 200 : 0);
    std::string in;
    for (size_t i = 0; i < len; ++i) {
      char32_t c = pool[rng() % (sizeof pool / sizeof pool[0])];
      if (c < 0x80) {
        in += static_cast<char>(c);
      } else if (c < 0x800) {
        in += static_cast<char>(0xC0 | (c >> 6));
        in += static_cast<char>(0x80 | (c & 0x3F));
      } else if (c < 0x10000) {
        in += static_cast<char>(0xE0 | (c >> 12));
        in += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
        in += static_cast<char>(0x80 | (c & 0x3F));
      } else {
        in += static_cast<char>(0xF0 | (c >> 18));
        in += static_cast<char>(0x80 | ((c >> 12) & 0x3F));
        in += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
        in += static_cast<char>(0x80 | (c & 0x3F));
      }
    }
    std::string out = "\"";
    CHECK(json_escape_append(out, in) == 0);
    out += '"';
    std::string_view back;
    REQUIRE(parser.parse(out).get_string().get(back) == simdjson::SUCCESS);
    REQUIRE(back == in);
  }
}

TEST_CASE("escaping random bytes always yields valid JSON and counts each replacement") {
  std::mt19937 rng(99);
  simdjson::dom::parser parser;
  for (int round = 0; round < 2000; ++round) {
    std::string in(rng() % 100, '\0');
    for (auto& c : in) c = static_cast<char>(rng() % 4 == 0 ? rng() % 256 : 'a' + rng() % 26);
    std::string out = "\"";
    size_t replaced = json_escape_append(out, in);
    out += '"';
    std::string_view back;
    REQUIRE(parser.parse(out).get_string().get(back) == simdjson::SUCCESS);
    size_t fffd_out = 0;
    for (size_t pos = back.find("\xEF\xBF\xBD"); pos != std::string_view::npos;
         pos = back.find("\xEF\xBF\xBD", pos + 3))
      ++fffd_out;
    size_t fffd_in = 0;
    for (size_t pos = in.find("\xEF\xBF\xBD"); pos != std::string::npos; pos = in.find("\xEF\xBF\xBD", pos + 3))
      ++fffd_in;
    CHECK(fffd_out == fffd_in + replaced);
  }
}

TEST_CASE("a truncated part carries the logship_truncated indexed field, merged with its fields") {
  HecEncoder enc(event_config());
  EventBatch b;
  Event& a = b.add("part one", 1000000000);
  a.flags |= Event::kTruncated;
  Event& c = b.add("part two", 1000000000);
  c.flags |= Event::kTruncated;
  b.set_fields(b.events()[1], R"({"stream":"stdout"})");
  std::string out;
  enc.encode(out, b, b.events()[0]);
  CHECK(out.find(R"("fields":{"logship_truncated":"true"}})") != std::string::npos);
  out.clear();
  enc.encode(out, b, b.events()[1]);
  CHECK(out.find(R"("fields":{"logship_truncated":"true","stream":"stdout"}})") != std::string::npos);
}
