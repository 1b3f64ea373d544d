// Verifies the HEC body parser of the splunk_hec source (no sockets).
#include <doctest/doctest.h>
#include <zlib.h>

#include <string>

#include "plugins/sources/splunk_hec/parser.h"

using namespace logship;
using namespace logship::hec_receiver;

namespace {

constexpr int64_t kNow = 1'700'000'000'000'000'000;

HecDefaults defaults() {
  return HecDefaults{"10.0.0.1", "", "", ""};
}

HecParseResult parse(std::string body, EventBatch& b) {
  return parse_event_body(body, defaults(), kNow, b);
}

std::string gzip(std::string_view in) {
  z_stream zs{};
  REQUIRE(deflateInit2(&zs, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) == Z_OK);
  std::string out(deflateBound(&zs, in.size()) + 64, '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  zs.avail_in = static_cast<uInt>(in.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  REQUIRE(deflate(&zs, Z_FINISH) == Z_STREAM_END);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

}  // namespace

TEST_CASE("concatenated envelopes separated by whitespace become one event each") {
  EventBatch b;
  auto r =
      parse("{\"event\":\"a\"}\n  {\"event\":\"b\"}\r\n\t{\"event\":\"c\"}{\"event\":\"d\"}\n", b);
  CHECK(r.code == HecCode::kSuccess);
  CHECK(r.events == 4);
  REQUIRE(b.size() == 4);
  CHECK(b.text(b.events()[0]) == "a");
  CHECK(b.text(b.events()[3]) == "d");
}

TEST_CASE("a string event is stored unescaped, with the receive time and the client host") {
  EventBatch b;
  auto r = parse(R"({"event":"line \"quoted\"\n\u00e9 {not json}"})", b);
  REQUIRE(r.code == HecCode::kSuccess);
  const Event& e = b.events()[0];
  CHECK(b.text(e) == "line \"quoted\"\n\xc3\xa9 {not json}");
  CHECK((e.flags & Event::kJsonValue) == 0);
  CHECK(e.time_ns == kNow);
  CHECK(b.meta(e.host) == "10.0.0.1");
  CHECK(e.fields_length == 0);
}

TEST_CASE("an object or number event is kept as raw JSON and flagged kJsonValue") {
  EventBatch b;
  auto r = parse(R"({"event": {"a": [1, "}"], "b": {"c": null}}} {"event":42.50})", b);
  REQUIRE(r.code == HecCode::kSuccess);
  REQUIRE(b.size() == 2);
  CHECK(b.text(b.events()[0]) == R"({"a": [1, "}"], "b": {"c": null}})");
  CHECK((b.events()[0].flags & Event::kJsonValue) != 0);
  CHECK(b.text(b.events()[1]) == "42.50");
  CHECK((b.events()[1].flags & Event::kJsonValue) != 0);
}

TEST_CASE("metadata keys are interned and override the defaults") {
  EventBatch b;
  auto r = parse(R"({"event":"x","host":"h1","source":"s","sourcetype":"st","index":"main"})"
                 R"({"event":"y","host":"h1"})",
                 b);
  REQUIRE(r.code == HecCode::kSuccess);
  const Event& e0 = b.events()[0];
  const Event& e1 = b.events()[1];
  CHECK(b.meta(e0.host) == "h1");
  CHECK(b.meta(e0.source) == "s");
  CHECK(b.meta(e0.sourcetype) == "st");
  CHECK(b.meta(e0.index) == "main");
  CHECK(e1.host == e0.host);
  CHECK(e1.source == 0);
}

TEST_CASE("time is parsed from numbers and numeric strings with the fraction kept exactly") {
  EventBatch b;
  auto r = parse(R"({"event":"a","time":1433188255.500}{"event":"b","time":"1433188255.123456789"})"
                 R"({"event":"c","time":1433188255}{"event":"d","time":1.5e9})",
                 b);
  REQUIRE(r.code == HecCode::kSuccess);
  CHECK(b.events()[0].time_ns == 1433188255500000000);
  CHECK(b.events()[1].time_ns == 1433188255123456789);
  CHECK(b.events()[2].time_ns == 1433188255000000000);
  CHECK(b.events()[3].time_ns == 1500000000000000000);
}

TEST_CASE("parse_hec_time rejects malformed and negative times") {
  CHECK(parse_hec_time("abc") == std::nullopt);
  CHECK(parse_hec_time("-1") == std::nullopt);
  CHECK(parse_hec_time("") == std::nullopt);
  CHECK(parse_hec_time("1.2.3") == std::nullopt);
  CHECK(parse_hec_time("99999999999999") == std::nullopt);
  CHECK(parse_hec_time(".5") == 500000000);
  EventBatch b;
  auto r = parse(R"({"event":"a"}{"event":"b","time":"soon"})", b);
  CHECK(r.code == HecCode::kInvalidDataFormat);
  CHECK(r.invalid_event_number == 1);
}

TEST_CASE("a missing event key is code 12 at its index") {
  EventBatch b;
  auto r = parse(R"({"event":"ok"}{"host":"h"})", b);
  CHECK(r.code == HecCode::kEventFieldRequired);
  CHECK(r.invalid_event_number == 1);
  CHECK(r.events == 1);
  CHECK(b.size() == 1);
}

TEST_CASE("a blank event is code 13") {
  EventBatch b;
  auto r = parse(R"({"event":""})", b);
  CHECK(r.code == HecCode::kEventFieldBlank);
  CHECK(r.invalid_event_number == 0);
  CHECK(b.empty());
}

TEST_CASE("invalid JSON at index 2 keeps the first two events and reports code 6 at 2") {
  EventBatch b;
  auto r = parse(R"({"event":"a"} {"event":"b"} {"event":"c",} {"event":"d"})", b);
  CHECK(r.code == HecCode::kInvalidDataFormat);
  CHECK(r.invalid_event_number == 2);
  CHECK(r.events == 2);
  REQUIRE(b.size() == 2);
  CHECK(b.text(b.events()[1]) == "b");
  CHECK(hec_reply_json(r.code, r.invalid_event_number) ==
        R"({"text":"Invalid data format","code":6,"invalid-event-number":2})");
}

TEST_CASE("bodies that are not concatenated objects are code 6") {
  for (std::string body : {R"([{"event":"a"}])", R"({"event":"a"} x)", R"({"event":"a")",
                           R"({"event":"a\"})", "\"event\"", R"({"event":"a"},{"event":"b"})"}) {
    EventBatch b;
    auto r = parse(body, b);
    CHECK_MESSAGE(r.code == HecCode::kInvalidDataFormat, body);
  }
  EventBatch b;
  auto r = parse("{\"event\":\"\xff\"}", b);  // invalid UTF-8
  CHECK(r.code == HecCode::kInvalidDataFormat);
}

TEST_CASE("flat fields are stored; nested fields are code 15") {
  EventBatch b;
  auto r = parse(R"({"event":"a","fields":{"k":"v","m":["x","y"]}})", b);
  REQUIRE(r.code == HecCode::kSuccess);
  CHECK(b.fields(b.events()[0]) == R"({"k":"v","m":["x","y"]})");

  for (std::string body :
       {R"({"event":"a","fields":{"k":{"n":"v"}}})",
        R"({"event":"a","fields":{"k":["x",{"n":1}]}})", R"({"event":"a","fields":"k=v"})"}) {
    EventBatch b2;
    auto r2 = parse(body, b2);
    CHECK_MESSAGE(r2.code == HecCode::kIndexedFields, body);
    CHECK(r2.invalid_event_number == 0);
  }
}

TEST_CASE("an empty or blank body is code 5 without invalid-event-number") {
  for (std::string body : {"", " \r\n\t"}) {
    EventBatch b;
    auto r = parse(body, b);
    CHECK(r.code == HecCode::kNoData);
    CHECK(r.invalid_event_number == -1);
  }
  CHECK(hec_reply_json(HecCode::kNoData) == R"({"text":"No data","code":5})");
}

TEST_CASE("the body is left unchanged by the padding") {
  std::string body = R"({"event":"a"})";
  EventBatch b;
  parse_event_body(body, defaults(), kNow, b);
  CHECK(body == R"({"event":"a"})");
}

TEST_CASE("raw bodies split on LF with CR stripped and empty lines skipped") {
  EventBatch b;
  HecDefaults d{"h", "src", "st", "idx"};
  auto r = parse_raw_body("one\r\ntwo\n\n\r\nthree", d, kNow, b);
  CHECK(r.code == HecCode::kSuccess);
  REQUIRE(b.size() == 3);
  CHECK(b.text(b.events()[0]) == "one");
  CHECK(b.text(b.events()[1]) == "two");
  CHECK(b.text(b.events()[2]) == "three");
  CHECK(b.meta(b.events()[2].sourcetype) == "st");
  CHECK(b.meta(b.events()[0].index) == "idx");
  CHECK(b.events()[0].time_ns == kNow);

  EventBatch e;
  CHECK(parse_raw_body("\r\n\n", d, kNow, e).code == HecCode::kNoData);
}

TEST_CASE("gzip bodies inflate, several members included") {
  std::string text = R"({"event":"a"})";
  std::string out;
  CHECK(gunzip(gzip(text), 1024, out) == InflateStatus::kOk);
  CHECK(out == text);
  CHECK(gunzip(gzip("ab") + gzip("cd"), 1024, out) == InflateStatus::kOk);
  CHECK(out == "abcd");
}

TEST_CASE("gzip inflation stops at the size cap (gzip bomb)") {
  std::string big(10 << 20, 'A');  // 10 MiB of one letter: a ~10 KiB gzip body
  std::string z = gzip(big);
  CHECK(z.size() < 64 * 1024);
  std::string out;
  CHECK(gunzip(z, 1 << 20, out) == InflateStatus::kTooLarge);
  CHECK(out.capacity() <= (1 << 20) + 64);
  CHECK(gunzip(z, big.size(), out) == InflateStatus::kOk);
  CHECK(out.size() == big.size());
  CHECK(gunzip(z, big.size() - 1, out) == InflateStatus::kTooLarge);
}

TEST_CASE("corrupt or truncated gzip is reported") {
  std::string z = gzip("hello world hello world");
  std::string out;
  CHECK(gunzip(z.substr(0, z.size() - 5), 1024, out) == InflateStatus::kCorrupt);
  CHECK(gunzip("not gzip at all", 1024, out) == InflateStatus::kCorrupt);
  CHECK(gunzip(z + "junk", 1024, out) == InflateStatus::kCorrupt);
}

TEST_CASE("GUID channels are recognised") {
  CHECK(is_guid("FE0ECFAD-13D5-401B-847D-77833BD77131"));
  CHECK(is_guid("fe0ecfad-13d5-401b-847d-77833bd77131"));
  CHECK_FALSE(is_guid("FE0ECFAD13D5401B847D77833BD77131"));
  CHECK_FALSE(is_guid("not-a-guid"));
  CHECK_FALSE(is_guid("GE0ECFAD-13D5-401B-847D-77833BD77131"));
}

TEST_CASE("ack queries parse; malformed ones are refused") {
  std::vector<uint64_t> ids;
  std::string ok = R"({"acks":[0,1,7]})";
  REQUIRE(parse_ack_query(ok, ids));
  CHECK(ids == std::vector<uint64_t>{0, 1, 7});
  for (std::string bad : {"", "[]", R"({"acks":1})", R"({"acks":[-1]})", R"({"acks":["a"]})"}) {
    CHECK_FALSE_MESSAGE(parse_ack_query(bad, ids), bad);
  }
  CHECK(hec_ack_reply_json({{0, true}, {1, false}}) == R"({"acks":{"0":true,"1":false}})");
}

TEST_CASE("replies carry ackId on success") {
  CHECK(hec_reply_json(HecCode::kSuccess, -1, 3) == R"({"text":"Success","code":0,"ackId":3})");
  CHECK(hec_reply_json(HecCode::kHealthy) == R"({"text":"HEC is healthy","code":17})");
  CHECK(hec_http_status(HecCode::kInvalidToken) == 403);
  CHECK(hec_http_status(HecCode::kTokenRequired) == 401);
  CHECK(hec_http_status(HecCode::kShuttingDown) == 503);
}

TEST_CASE("query parameters are percent-decoded") {
  CHECK(query_param("a=1&host=my%20host&sourcetype=x+y", "host") == "my host");
  CHECK(query_param("a=1&host=my%20host&sourcetype=x+y", "sourcetype") == "x y");
  CHECK(query_param("token", "token") == "");
  CHECK(query_param("a=1", "b") == std::nullopt);
  CHECK(query_param("", "b") == std::nullopt);
}
