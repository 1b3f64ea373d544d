// Verifies the file source's timestamp formats (CONFIG.md "Source file", `timestamp.format`).
#include <doctest/doctest.h>

#include "plugins/sources/file/decode_timestamp.h"

using namespace logship::decode;

namespace {

constexpr int64_t kSec = 1'000'000'000;

int64_t rfc(std::string_view s) {
  int64_t ns = -42;
  REQUIRE_MESSAGE(parse_rfc3339(s, ns), s);
  return ns;
}

bool rfc_fails(std::string_view s) {
  int64_t ns = 0;
  return !parse_rfc3339(s, ns);
}

int64_t strf(std::string_view s, std::string_view fmt, int64_t now = 0) {
  int64_t ns = -42;
  REQUIRE_MESSAGE(parse_strftime(s, fmt, now, ns), s, " / ", fmt);
  return ns;
}

bool strf_fails(std::string_view s, std::string_view fmt) {
  int64_t ns = 0;
  return !parse_strftime(s, fmt, 0, ns);
}

}  // namespace

TEST_CASE("decode timestamp: rfc3339 with zones, separators and fractions") {
  CHECK(rfc("2024-01-02T03:04:05Z") == 1704164645 * kSec);
  CHECK(rfc("2024-01-02t03:04:05z") == 1704164645 * kSec);
  CHECK(rfc("2024-01-02 03:04:05Z") == 1704164645 * kSec);
  CHECK(rfc("2024-01-02T03:04:05") == 1704164645 * kSec);  // zone-less = UTC
  CHECK(rfc("2024-01-02T05:04:05+02:00") == 1704164645 * kSec);
  CHECK(rfc("2024-01-01T22:34:05-04:30") == 1704164645 * kSec);
  CHECK(rfc("2024-01-02T05:04:05+0200") == 1704164645 * kSec);
  CHECK(rfc("2024-01-02T03:04:05.5Z") == 1704164645 * kSec + 500'000'000);
  CHECK(rfc("2024-01-02T03:04:05.123456789Z") == 1704164645 * kSec + 123'456'789);
  CHECK(rfc("2024-01-02T03:04:05.1234567891234Z") == 1704164645 * kSec + 123'456'789);
  CHECK(rfc("2024-01-02T05:04:05.000001+02:00") == 1704164645 * kSec + 1000);
  CHECK(rfc("2024-02-29T23:59:59Z") == 1709251199 * kSec);
  CHECK(rfc("1969-12-31T23:59:59Z") == -kSec);
  CHECK(rfc("2016-10-06T00:17:09.669794202Z") == 1475713029 * kSec + 669'794'202);
}

TEST_CASE("decode timestamp: rfc3339 rejects malformed input") {
  CHECK(rfc_fails(""));
  CHECK(rfc_fails("garbage"));
  CHECK(rfc_fails("2024-13-01T00:00:00Z"));
  CHECK(rfc_fails("2023-02-29T00:00:00Z"));
  CHECK(rfc_fails("2024-01-02T24:00:00Z"));
  CHECK(rfc_fails("2024-01-02T03:04:05+2"));
  CHECK(rfc_fails("2024-01-02T03:04:05.Z"));
  CHECK(rfc_fails("2024-01-02T03:04:05Zjunk"));
  CHECK(rfc_fails("2024-01-02X03:04:05Z"));
  CHECK(rfc_fails("2024-1-02T03:04:05Z"));
  CHECK(rfc_fails("9999-12-31T23:59:59Z"));  // beyond int64 nanoseconds
}

TEST_CASE("decode timestamp: epoch_s, epoch_ms and epoch_ns") {
  TimestampFormat s("epoch_s"), ms("epoch_ms"), ns("epoch_ns");
  int64_t v = 0;
  CHECK(s.parse_number("1700000000", v));
  CHECK(v == 1700000000 * kSec);
  CHECK(s.parse_number("1700000000.25", v));
  CHECK(v == 1700000000 * kSec + 250'000'000);
  CHECK(s.parse_string(" 1700000000.000000001 ", 0, v));  // numeric strings too
  CHECK(v == 1700000000 * kSec + 1);
  CHECK(s.parse_number("-1.5", v));
  CHECK(v == -1'500'000'000);
  CHECK(ms.parse_number("1700000000123", v));
  CHECK(v == 1700000000123 * 1'000'000);
  CHECK(ms.parse_string("1700000000123.5", 0, v));
  CHECK(v == 1700000000123 * 1'000'000 + 500'000);
  CHECK(ns.parse_number("1700000000123456789", v));
  CHECK(v == 1700000000123456789);
  CHECK_FALSE(ns.parse_number("1700000000123456789.5", v));  // no fraction of a nanosecond
  CHECK_FALSE(s.parse_number("99999999999999999999", v));    // overflow
  CHECK_FALSE(s.parse_number("10000000000", v));             // past 2262
  CHECK_FALSE(s.parse_number("1e9", v));
  CHECK_FALSE(s.parse_string("", 0, v));
  CHECK_FALSE(s.parse_string("12ab", 0, v));
  CHECK_FALSE(s.parse_string(".5", 0, v));
  TimestampFormat r("rfc3339");
  CHECK_FALSE(r.parse_number("1700000000", v));  // numbers only for epoch formats
}

TEST_CASE("decode timestamp: strftime formats") {
  CHECK(strf("2024-01-02 03:04:05", "%Y-%m-%d %H:%M:%S") == 1704164645 * kSec);
  CHECK(strf("2024-01-02T03:04:05.25", "%Y-%m-%dT%H:%M:%S.%f") == 1704164645 * kSec + 250'000'000);
  CHECK(strf("2024-01-02 05:04:05 +0200", "%F %T %z") == 1704164645 * kSec);
  CHECK(strf("2024-01-02 05:04:05+02:00", "%F %T%z") == 1704164645 * kSec);
  CHECK(strf("2024-01-02 03:04:05Z", "%F %T%z") == 1704164645 * kSec);
  CHECK(strf("2024-01-02 03:04:05 UTC", "%F %T %Z") == 1704164645 * kSec);
  // Apache common log.
  CHECK(strf("10/Oct/2000:13:55:36 -0700", "%d/%b/%Y:%H:%M:%S %z") == 971211336 * kSec);
  CHECK(strf("10/october/2000:13:55:36 -0700", "%d/%B/%Y:%H:%M:%S %z") == 971211336 * kSec);
  // %.f: the fraction is optional.
  CHECK(strf("2024-01-02T03:04:05", "%Y-%m-%dT%H:%M:%S%.f") == 1704164645 * kSec);
  CHECK(strf("2024-01-02T03:04:05.001", "%Y-%m-%dT%H:%M:%S%.f") == 1704164645 * kSec + 1'000'000);
  CHECK(strf("Tue, 02 Jan 2024 03:04:05 GMT", "%a, %d %b %Y %H:%M:%S %Z") == 1704164645 * kSec);
  CHECK(strf("01/02/24 03:04 AM", "%D %I:%M %p") == (1704164645 - 5) * kSec);
  CHECK(strf("01/02/24 03:04 pm", "%D %I:%M %p") == (1704164645 - 5 + 12 * 3600) * kSec);
  CHECK(strf("1704164645", "%s") == 1704164645 * kSec);
  CHECK(strf("2024 002 03:04:05", "%Y %j %T") == 1704164645 * kSec);
  CHECK(strf("  2024-01-02   03:04:05  ", " %Y-%m-%d %H:%M:%S") == 1704164645 * kSec);
  CHECK(strf_fails("2024-01-02 03:04", "%Y-%m-%d %H:%M:%S"));
  CHECK(strf_fails("2024-01-02 03:04:05 extra", "%Y-%m-%d %H:%M:%S"));
  CHECK(strf_fails("2024-02-30 03:04:05", "%Y-%m-%d %H:%M:%S"));
  CHECK(strf_fails("10/Foo/2000", "%d/%b/%Y"));
  CHECK(strf_fails("2024-01-02 03:04:05 CEST", "%F %T %Z"));
}

TEST_CASE("decode timestamp: strftime without a year uses the reading year") {
  int64_t now = 1704164645 * kSec;  // 2024-01-02T03:04:05Z
  CHECK(strf("Jan  2 03:04:05", "%b %e %H:%M:%S", now) == 1704164645 * kSec);
  // Dec 31 read on Jan 2: last year's.
  CHECK(strf("Dec 31 23:00:00", "%b %d %H:%M:%S", now) == 1704063600 * kSec);
}

TEST_CASE("decode timestamp: format validation") {
  CHECK(TimestampFormat::validate("rfc3339").empty());
  CHECK(TimestampFormat::validate("epoch_s").empty());
  CHECK(TimestampFormat::validate("epoch_ms").empty());
  CHECK(TimestampFormat::validate("epoch_ns").empty());
  CHECK(TimestampFormat::validate("%Y-%m-%dT%H:%M:%S%.3f%z").empty());
  CHECK(TimestampFormat::validate("%d/%b/%Y:%H:%M:%S %z").empty());
  CHECK_FALSE(TimestampFormat::validate("rfc3339nano").empty());
  CHECK_FALSE(TimestampFormat::validate("%Y-%Q").empty());
  CHECK_FALSE(TimestampFormat::validate("%Y-%").empty());
  CHECK_FALSE(TimestampFormat::validate("%.Y").empty());
  CHECK(TimestampFormat("epoch_ms").kind() == TimestampFormat::Kind::kEpochMs);
  CHECK(TimestampFormat("%s").kind() == TimestampFormat::Kind::kStrftime);
}
