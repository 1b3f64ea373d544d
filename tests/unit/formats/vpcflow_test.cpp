#include <doctest/doctest.h>

#include "formats_test_util.h"

using namespace logship::formats;
using namespace logship::formats::test;

namespace {

const std::string kV2Header =
    "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start "
    "end action log-status";
const std::string kRow1 =
    "2 123456789010 eni-1235b8ca123456789 172.31.16.139 172.31.16.21 20641 22 6 20 4249 "
    "1418530010 1418530070 ACCEPT OK";
const std::string kNoData =
    "2 123456789010 eni-1235b8ca123456789 - - - - - - - 1431280876 1431280934 - NODATA";
const std::string kSkipData =
    "2 123456789010 eni-11111111111111111 - - - - - - - 1431280876 1431280934 - SKIPDATA";

FormatOptions vpc(bool json = false) {
  FormatOptions o = opts_for(Format::kVpcFlow);
  o.vpc_emit_json = json;
  return o;
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

TEST_CASE("vpcflow: default v2 rows are emitted raw, the header never") {
  std::string f = kV2Header + "\n" + kRow1 + "\n" + kNoData + "\n" + kSkipData + "\n";
  for (size_t step : {SIZE_MAX, size_t{1}, size_t{0}}) {
    RecordParser* p = nullptr;
    auto recs = parse(vpc(), f, step, &p);
    REQUIRE(recs.size() == 3);
    CHECK(recs[0].text == kRow1);
    CHECK_FALSE(recs[0].json_value);
    CHECK(recs[0].time_set);
    CHECK(recs[0].time_ns == 1418530010LL * 1'000'000'000);
    CHECK(recs[1].text == kNoData);
    CHECK(p->nodata_rows() == 1);
    CHECK(p->skipdata_rows() == 1);
    CHECK(p->records() == 3);
  }
}

TEST_CASE("vpcflow: CRLF line ends, blank lines and a last line without newline") {
  std::string f = kV2Header + "\r\n" + kRow1 + "\r\n\r\n" + kRow1;
  auto recs = parse(vpc(), f, 0);
  REQUIRE(recs.size() == 2);
  CHECK(recs[0].text == kRow1);
  CHECK(recs[1].text == kRow1);
}

TEST_CASE("vpcflow: json mode types values by field and maps - to null") {
  std::string f = kV2Header + "\n" + kRow1 + "\n" + kNoData + "\n";
  auto recs = parse(vpc(true), f);
  REQUIRE(recs.size() == 2);
  CHECK(recs[0].json_value);
  CHECK(recs[0].text ==
        R"({"version":2,"account-id":"123456789010","interface-id":"eni-1235b8ca123456789",)"
        R"("srcaddr":"172.31.16.139","dstaddr":"172.31.16.21","srcport":20641,"dstport":22,)"
        R"("protocol":6,"packets":20,"bytes":4249,"start":1418530010,"end":1418530070,)"
        R"("action":"ACCEPT","log-status":"OK"})");
  CHECK(recs[1].text ==
        R"({"version":2,"account-id":"123456789010","interface-id":"eni-1235b8ca123456789",)"
        R"("srcaddr":null,"dstaddr":null,"srcport":null,"dstport":null,"protocol":null,)"
        R"("packets":null,"bytes":null,"start":1431280876,"end":1431280934,"action":null,)"
        R"("log-status":"NODATA"})");
}

TEST_CASE("vpcflow: a custom v5 format is read through its header") {
  std::string h =
      "version vpc-id subnet-id instance-id interface-id account-id type srcaddr dstaddr srcport "
      "dstport pkt-srcaddr pkt-dstaddr protocol bytes packets start end action tcp-flags "
      "log-status region az-id pkt-src-aws-service pkt-dst-aws-service flow-direction "
      "traffic-path ecs-cluster-name future-field";
  std::string row =
      "5 vpc-0a1b subnet-0c2d i-0e3f eni-0a1b 123456789012 IPv4 10.0.1.5 52.94.1.1 49152 443 "
      "10.0.1.5 52.94.1.1 6 5000 10 1700000000 1700000060 ACCEPT 19 OK us-east-1 use1-az1 - "
      "S3 egress 8 my-cluster x\"y";
  std::string rowdash =
      "5 vpc-0a1b subnet-0c2d - eni-0a1b 123456789012 IPv4 10.0.1.5 52.94.1.1 49152 443 "
      "10.0.1.5 52.94.1.1 6 5000 10 - 1700000060 ACCEPT 007 OK us-east-1 use1-az1 - "
      "S3 egress - - z";
  RecordParser* p = nullptr;
  auto recs = parse(vpc(true), h + "\n" + row + "\n" + rowdash + "\n", 0, &p);
  REQUIRE(recs.size() == 2);
  CHECK(recs[0].time_ns == 1700000000LL * 1'000'000'000);
  const std::string& j = recs[0].text;
  CHECK(j.starts_with(R"({"version":5,"vpc-id":"vpc-0a1b",)"));
  CHECK(j.find(R"("tcp-flags":19,"log-status":"OK","region":"us-east-1")") != std::string::npos);
  CHECK(j.find(R"("pkt-src-aws-service":null,"pkt-dst-aws-service":"S3")") != std::string::npos);
  CHECK(j.find(R"("traffic-path":8,"ecs-cluster-name":"my-cluster","future-field":"x\"y"})") !=
        std::string::npos);
  CHECK_FALSE(recs[1].time_set);                                       // start is "-"
  CHECK(recs[1].text.find(R"("tcp-flags":7,)") != std::string::npos);  // no leading zeros
  CHECK(recs[1].text.find(R"("traffic-path":null)") != std::string::npos);
  CHECK(p->untimed_records() == 1);
  // The same rows raw.
  auto raw = parse(vpc(false), h + "\n" + row + "\n");
  REQUIRE(raw.size() == 1);
  CHECK(raw[0].text == row);
}

TEST_CASE("vpcflow: a file without a header is an error") {
  CHECK(error_of(vpc(), kRow1 + "\n" + kRow1 + "\n")
            .find("vpcflow: line 1 (byte offset 0): no header line") != std::string::npos);
  CHECK(error_of(vpc(), "hello world\n").find("no header line") != std::string::npos);
  CHECK(error_of(vpc(), "version Account-Id\n").find("invalid header") != std::string::npos);
  CHECK(error_of(vpc(), "").find("no header line") != std::string::npos);
  CHECK(error_of(vpc(), "\n\n").find("no header line") != std::string::npos);
  // A header alone is a valid (empty) file.
  CHECK(parse(vpc(), kV2Header + "\n").empty());
}

TEST_CASE("vpcflow: a row with the wrong number of fields is an error naming the line") {
  std::string f = kV2Header + "\n" + kRow1 + "\n" + kRow1 + " extra\n";
  std::string e = error_of(vpc(), f, 0);
  CHECK(e.find("vpcflow: line 3") != std::string::npos);
  CHECK(e.find("row has 15 fields, the header has 14") != std::string::npos);
  CHECK(error_of(vpc(), kV2Header + "\n2 123\n").find("line 2") != std::string::npos);
}

TEST_CASE("vpcflow: lines over max_record_bytes are errors") {
  FormatOptions o = vpc();
  o.max_record_bytes = 200;
  CHECK(parse(o, kV2Header + "\n" + kRow1 + "\n").size() == 1);
  std::string f = kV2Header + "\n" + kRow1 + "\n" + std::string(300, 'x') + "\n";
  for (size_t step : {SIZE_MAX, size_t{1}, size_t{0}})
    CHECK(error_of(o, f, step).find("exceeds max_record_bytes (200)") != std::string::npos);
}
