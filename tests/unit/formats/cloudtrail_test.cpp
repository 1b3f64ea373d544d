#include <doctest/doctest.h>

#include "formats_test_util.h"

using namespace logship::formats;
using namespace logship::formats::test;

namespace {

const std::string kR1 =
    R"({"eventVersion":"1.08","eventTime":"2024-01-02T03:04:05Z","eventName":"GetObject",)"
    R"("awsRegion":"us-east-1","userIdentity":{"type":"IAMUser","arn":"arn:aws:iam::1:user/a"},)"
    R"("requestParameters":{"bucketName":"b","key":"a\"b\\c}{]["},"resources":[{"ARN":"x"},[1,2]],)"
    R"("readOnly":true,"n":12.5e3,"nil":null})";
const std::string kR2 =
    R"({"eventTime":"2024-01-02T03:04:05.123456789Z","eventName":"Put\"Object\\","awsRegion":7,)"
    R"("text":"\u00e9\\\"}","userIdentity":{"type":{"nested":"no"}}})";
const std::string kR3 = R"({"eventName":"NoTime","x":[{},{"y":[]}]})";

std::string file_of(const std::vector<std::string>& recs) {
  std::string s = R"({"Records":[)";
  for (size_t i = 0; i < recs.size(); ++i) s += (i ? "," : "") + recs[i];
  return s + "]}";
}

FormatOptions ct() {
  return opts_for(Format::kCloudTrail);
}

std::string error_of(const FormatOptions& o, std::string_view in, size_t step = SIZE_MAX) {
  try {
    parse(o, in, step);
  } catch (const FormatError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("cloudtrail: each Records element is one record, text byte for byte") {
  std::string f = file_of({kR1, kR2, kR3});
  RecordParser* p = nullptr;
  auto recs = parse(ct(), f, SIZE_MAX, &p);
  REQUIRE(recs.size() == 3);
  CHECK(recs[0].text == kR1);
  CHECK(recs[1].text == kR2);
  CHECK(recs[2].text == kR3);
  for (auto& r : recs) CHECK(r.json_value);
  CHECK(recs[0].time_set);
  CHECK(recs[0].time_ns == 1704164645LL * 1'000'000'000);
  CHECK(recs[1].time_ns == 1704164645LL * 1'000'000'000 + 123456789);
  CHECK_FALSE(recs[2].time_set);
  CHECK(p->records() == 3);
  CHECK(p->untimed_records() == 1);
  CHECK(recs[0].fields.empty());
}

TEST_CASE("cloudtrail: records split across chunk boundaries at every position") {
  // Verifies that the scanner state (strings, escapes, depth) survives any split.
  std::string f = file_of({kR1, kR2, kR3});
  auto want = parse(ct(), f, SIZE_MAX);
  for (size_t cut = 0; cut <= f.size(); ++cut) {
    auto p = make_parser(ct());
    std::vector<std::string> got;
    auto emit = [&](const Record& r) { got.emplace_back(r.text); };
    std::string a = f.substr(0, cut), b = f.substr(cut);
    p->feed(a, emit);
    p->feed(b, emit);
    p->finish(emit);
    REQUIRE(got.size() == 3);
    for (size_t i = 0; i < 3; ++i) CHECK(got[i] == want[i].text);
  }
  for (size_t step : {size_t{1}, size_t{2}, size_t{3}, size_t{0}}) {
    auto got = parse(ct(), f, step);
    REQUIRE(got.size() == 3);
    CHECK(got[1].text == kR2);
    CHECK(got[1].time_ns == want[1].time_ns);
  }
}

TEST_CASE("cloudtrail: pretty-printed input and other top-level keys") {
  std::string f =
      "\n{\n  \"before\": {\"Records\": [1, {\"a\": \"]}\"}]},\n  \"s\": \"x\\\"y\",\n"
      "  \"num\": -1.5e3, \"t\": true,\n  \"Records\" : [\n    {\n      \"eventName\": "
      "\"A\",\n      \"eventTime\": \"2024-05-06T07:08:09.5Z\"\n    } ,\n    {\"eventName\":"
      "\"B\"}\n  ],\n  \"after\": [\"x\", {\"y\": null}], \"z\": null\n}\n\n";
  for (size_t step : {SIZE_MAX, size_t{1}, size_t{0}}) {
    auto recs = parse(ct(), f, step);
    REQUIRE(recs.size() == 2);
    CHECK(recs[0].text ==
          "{\n      \"eventName\": \"A\",\n      \"eventTime\": \"2024-05-06T07:08:09.5Z\"\n    }");
    CHECK(recs[0].time_ns % 1'000'000'000 == 500'000'000);
    CHECK(recs[1].text == R"({"eventName":"B"})");
  }
}

TEST_CASE("cloudtrail: empty Records gives zero records; no Records is an error") {
  CHECK(parse(ct(), R"({"Records":[]})").empty());
  CHECK(parse(ct(), " { \"Records\" : [ ] } ").empty());
  CHECK(error_of(ct(), R"({"digestStartTime":"x","logFiles":[]})").find("no Records array") !=
        std::string::npos);
  CHECK(error_of(ct(), "{}").find("no Records array") != std::string::npos);
  CHECK(error_of(ct(), "").find("empty object") != std::string::npos);
  CHECK(error_of(ct(), R"({"Records":{}})").find("Records is not an array") != std::string::npos);
  CHECK(error_of(ct(), R"([{"Records":[]}])").find("expected {\"Records\"") != std::string::npos);
  CHECK(error_of(ct(), R"({"RecordsX":[]})").find("no Records array") != std::string::npos);
}

TEST_CASE("cloudtrail: malformed records and structure are FormatErrors naming the record") {
  std::string e = error_of(ct(), R"({"Records":[{"a":1},"str"]})");
  CHECK(e.find("Records[1]") != std::string::npos);
  CHECK(e.find("not a JSON object") != std::string::npos);
  e = error_of(ct(), R"({"Records":[{"a":1},{"a":tru}]})");
  CHECK(e.find("Records[1] (byte offset 20)") != std::string::npos);
  CHECK(e.find("invalid JSON") != std::string::npos);
  e = error_of(ct(), R"({"Records":[{"a":[1,2}]}]})");
  CHECK(e.find("invalid JSON") != std::string::npos);
  CHECK(error_of(ct(), R"({"Records":[{"a":1} {"b":2}]})").find("expected ',' or ']'") !=
        std::string::npos);
  CHECK(error_of(ct(), R"({"Records":[{"a":1}]} x)").find("after the top-level object") !=
        std::string::npos);
  // Truncated files.
  CHECK(error_of(ct(), R"({"Records":[{"a":1},{"b":"x)").find("truncated: Records[1]") !=
        std::string::npos);
  CHECK(error_of(ct(), R"({"Records":[{"a":1})", 1).find("truncated") != std::string::npos);
  CHECK(error_of(ct(), R"({"Records":[{"a":1}])").find("truncated") != std::string::npos);
  // Records emitted before the error stay emitted (the source fails the object).
  auto p = make_parser(ct());
  int n = 0;
  CHECK_THROWS_AS(p->feed(R"({"Records":[{"a":1},{"a":x}]})", [&](const Record&) { ++n; }),
                  FormatError);
  CHECK(n == 1);
}

TEST_CASE("cloudtrail: a record over max_record_bytes is an error, even split across chunks") {
  FormatOptions o = ct();
  o.max_record_bytes = 32;
  std::string small = R"({"a":"0123456789"})";
  std::string big = R"({"a":"0123456789012345678901234567890123456789"})";
  CHECK(parse(o, file_of({small, small})).size() == 2);
  for (size_t step : {SIZE_MAX, size_t{1}, size_t{5}}) {
    CAPTURE(step);
    CHECK(error_of(o, file_of({small, big}), step).find("exceeds max_record_bytes (32)") !=
          std::string::npos);
  }
}

TEST_CASE("cloudtrail: indexed fields are string values only, dotted paths, escaped") {
  FormatOptions o = ct();
  o.indexed_fields = {"eventName", "awsRegion", "userIdentity.type", "missing", "a.b.c"};
  auto recs = parse(o, file_of({kR1, kR2, kR3, R"({"a":{"b":{"c":"deep"}}})"}), 0);
  REQUIRE(recs.size() == 4);
  CHECK(recs[0].fields ==
        R"({"eventName":"GetObject","awsRegion":"us-east-1","userIdentity.type":"IAMUser"})");
  // awsRegion is a number and userIdentity.type an object: skipped. The name is re-escaped.
  CHECK(recs[1].fields == R"({"eventName":"Put\"Object\\"})");
  CHECK(recs[2].fields == R"({"eventName":"NoTime"})");
  CHECK(recs[3].fields == R"({"a.b.c":"deep"})");
  o.indexed_fields = {"nope"};
  CHECK(parse(o, file_of({kR1}))[0].fields.empty());
  o.indexed_fields = {"a..b"};
  CHECK_THROWS_AS(make_parser(o), std::invalid_argument);
}

TEST_CASE("cloudtrail: eventTime parsing") {
  auto t = [](std::string_view et) {
    auto recs = parse(ct(), file_of({std::string(R"({"eventTime":)") + std::string(et) + "}"}));
    REQUIRE(recs.size() == 1);
    return recs[0].time_set ? recs[0].time_ns : -1;
  };
  CHECK(t(R"("1970-01-01T00:00:00Z")") == 0);
  CHECK(t(R"("2014-03-06T21:22:54Z")") == 1394140974LL * 1'000'000'000);
  CHECK(t(R"("2014-03-06T21:22:54.1Z")") == 1394140974LL * 1'000'000'000 + 100'000'000);
  CHECK(t(R"("2014-03-06T21:22:54.123Z")") == 1394140974LL * 1'000'000'000 + 123'000'000);
  CHECK(t(R"("2014-03-06T22:22:54+01:00")") == 1394140974LL * 1'000'000'000);
  CHECK(t(R"("not a time")") == -1);
  CHECK(t(R"("2014-13-06T21:22:54Z")") == -1);
  CHECK(t("1394140974") == -1);  // numbers are not eventTime
  CHECK(t("null") == -1);
}

TEST_CASE("cloudtrail: many records through small random pieces") {
  std::vector<std::string> recs;
  for (int i = 0; i < 500; ++i)
    recs.push_back(R"({"eventTime":"2024-01-02T03:04:05Z","i":)" + std::to_string(i) + R"(,"s":")" +
                   std::string(static_cast<size_t>(i % 97), 'x') + R"(\\\"{["})");
  std::string f = file_of(recs);
  for (unsigned step : {0u, 1u, 13u, 4096u}) {
    auto got = parse(ct(), f, step);
    REQUIRE(got.size() == recs.size());
    for (size_t i = 0; i < recs.size(); ++i) CHECK(got[i].text == recs[i]);
  }
}
