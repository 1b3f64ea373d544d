// logship replay's pure pieces: the time window and how it prunes date-partitioned S3 layouts,
// the delivery time in AWS log file names, the token bucket, the progress line and the summary.
#include <doctest/doctest.h>
#include <simdjson.h>

#include <string>

#include "agent/replay/replay.h"

using namespace logship;
using namespace logship::replay;

namespace {
int64_t t(const char* s) {
  auto v = parse_time_arg(s);
  REQUIRE(v.has_value());
  return *v;
}
TimeWindow window(const char* since, const char* until) {
  TimeWindow w;
  if (since) w.since_ns = t(since);
  if (until) w.until_ns = t(until);
  return w;
}
}  // namespace

TEST_CASE("parse_time_arg: dates, RFC 3339 with offsets, and what is refused") {
  CHECK(t("1970-01-01") == 0);
  CHECK(t("2026-11-01") == int64_t(1793491200) * kNsPerSec);
  CHECK(t("2026-11-01T00:00:00Z") == t("2026-11-01"));
  CHECK(t("2026-11-01T02:00:00+02:00") == t("2026-11-01"));
  CHECK(t("2026-11-01T00:00:00.5Z") == t("2026-11-01") + kNsPerSec / 2);
  CHECK(t("2024-02-29") > t("2024-02-28"));
  for (const char* bad : {"", "2026-13-01", "2023-02-29", "2026-11-31", "2026-1-01", "yesterday",
                          "2026-11-01T25:00:00Z", "2026-11-01 00:00:00", "1793491200"})
    CHECK_MESSAGE(!parse_time_arg(bad), bad);
  CHECK(format_time(t("2026-11-01T12:34:56Z")) == "2026-11-01T12:34:56Z");
  CHECK(format_time(-kNsPerSec / 2) == "1969-12-31T23:59:59Z");
}

TEST_CASE("TimeWindow: [since, until), open bounds, the delivery lag") {
  TimeWindow w = window("2026-11-01", "2026-11-03");
  CHECK(w.bounded());
  CHECK(w.contains(t("2026-11-01")));
  CHECK(w.contains(t("2026-11-02T23:59:59Z")));
  CHECK_FALSE(w.contains(t("2026-11-03")));
  CHECK_FALSE(w.contains(t("2026-10-31T23:59:59Z")));
  // A file delivered up to an hour after `until` may still hold the window's last events.
  CHECK(w.may_hold(t("2026-11-03T00:30:00Z")));
  CHECK_FALSE(w.may_hold(t("2026-11-03T01:00:00Z")));
  // Delivered before `since`: it holds only older events.
  CHECK_FALSE(w.may_hold(t("2026-10-31T23:59:00Z")));
  CHECK(w.may_hold_range(t("2026-10-31"), t("2026-11-01T00:00:01Z")));
  CHECK_FALSE(w.may_hold_range(t("2026-10-31"), t("2026-11-01")));
  TimeWindow open;
  CHECK_FALSE(open.bounded());
  CHECK(open.contains(0));
  CHECK(open.may_hold(INT64_MAX / 2));
  TimeWindow since_only = window("2026-11-01", nullptr);
  CHECK(since_only.contains(t("2030-01-01")));
  CHECK_FALSE(since_only.contains(t("2026-10-01")));
}

TEST_CASE("key_delivery_time: CloudTrail and VPC flow log names") {
  CHECK(key_delivery_time("AWSLogs/123456789012/CloudTrail/us-east-1/2026/11/01/"
                          "123456789012_CloudTrail_us-east-1_20261101T0005Z_AbCd.json.gz") ==
        t("2026-11-01T00:05:00Z"));
  CHECK(
      key_delivery_time("AWSLogs/123456789012/vpcflowlogs/eu-west-1/2026/02/28/"
                        "123456789012_vpcflowlogs_eu-west-1_fl-0abc_20260228T2355Z_9f8e.log.gz") ==
      t("2026-02-28T23:55:00Z"));
  CHECK(key_delivery_time("x_20261101T0005Z") == t("2026-11-01T00:05:00Z"));
  // Not a delivery time: no stamp, a malformed one, or an impossible date.
  for (const char* k : {"app/2026/11/01/app.log.gz", "a_20261101T0005_b.gz",
                        "a_20261301T0005Z_b.gz", "a_20260230T0005Z_b.gz", "a_20261101T2405Z_b.gz",
                        "a_20261101T0005Zx.gz", "2026/11/01_20261101T0005Z/file"})
    CHECK_MESSAGE(!key_delivery_time(k), k);
}

TEST_CASE("classify_prefix: date levels pruned by the window, AWS levels descended") {
  const TimeWindow w = window("2026-11-01", "2026-11-03");
  const std::string base = "AWSLogs/123456789012/CloudTrail/us-east-1/";
  CHECK(classify_prefix("AWSLogs/", w, 1) == WalkStep::kDescend);
  CHECK(classify_prefix("AWSLogs/123456789012/", w, 2) == WalkStep::kDescend);
  CHECK(classify_prefix(base, w, 4) == WalkStep::kDescend);
  CHECK(classify_prefix(base + "2026/", w, 5) == WalkStep::kDescend);
  CHECK(classify_prefix(base + "2025/", w, 5) == WalkStep::kSkip);
  CHECK(classify_prefix(base + "2027/", w, 5) == WalkStep::kSkip);
  CHECK(classify_prefix(base + "2026/10/", w, 6) == WalkStep::kSkip);
  CHECK(classify_prefix(base + "2026/11/", w, 6) == WalkStep::kDescend);
  CHECK(classify_prefix(base + "2026/12/", w, 6) == WalkStep::kSkip);
  CHECK(classify_prefix(base + "2026/10/31/", w, 7) == WalkStep::kSkip);
  CHECK(classify_prefix(base + "2026/11/01/", w, 7) == WalkStep::kDescend);
  CHECK(classify_prefix(base + "2026/11/02/", w, 7) == WalkStep::kDescend);
  // The day after `until` may hold files delivered within the lag of its last events.
  CHECK(classify_prefix(base + "2026/11/03/", w, 7) == WalkStep::kDescend);
  CHECK(classify_prefix(base + "2026/11/04/", w, 7) == WalkStep::kSkip);
  CHECK(classify_prefix(base + "2026/11/02/05/", w, 8) == WalkStep::kDescend);
  // Hive-style partitions.
  const std::string hive = "AWSLogs/aws-account-id=1/aws-service=vpcflowlogs/aws-region=us-east-1/";
  CHECK(classify_prefix(hive, w, 4) == WalkStep::kDescend);
  CHECK(classify_prefix(hive + "year=2026/month=11/day=01/", w, 7) == WalkStep::kDescend);
  CHECK(classify_prefix(hive + "year=2026/month=10/", w, 6) == WalkStep::kSkip);
  // Anything else is listed in full, and so is everything below the deepest level walked.
  CHECK(classify_prefix("app-logs/", w, 1) == WalkStep::kListAll);
  CHECK(classify_prefix("AWSLogs/x/", w, kMaxWalkDepth) == WalkStep::kListAll);
  // Not dates: month 13, day 32, year 0999.
  CHECK(classify_prefix(base + "2026/13/", w, 6) == WalkStep::kDescend);
  CHECK(classify_prefix("logs/2026/11/32/", w, 4) == WalkStep::kListAll);
  CHECK(classify_prefix("logs/0999/", w, 2) == WalkStep::kListAll);
  // An open window descends every date.
  CHECK(classify_prefix(base + "2019/", TimeWindow{}, 5) == WalkStep::kDescend);
}

TEST_CASE("RateLimiter: a burst, then the long-run rate whatever the batch size") {
  using Clock = RateLimiter::Clock;
  RateLimiter r(1000.0, 0, 0.5);
  CHECK(r.limited());
  Clock::time_point now{};
  now += std::chrono::hours(1);
  // Half a second of tokens up front.
  CHECK(r.reserve(500, 1, now) == Clock::duration::zero());
  // 1000 more bytes owe a second.
  auto w = r.reserve(1000, 1, now);
  CHECK(std::chrono::duration<double>(w).count() == doctest::Approx(1.0));
  // Sending 10 s worth in uneven batches, waiting as told: the total time is the rate's.
  RateLimiter r2(1000.0, 0, 0.5);
  Clock::time_point at = now;
  uint64_t sent = 0;
  for (int i = 0; sent < 10000; ++i) {
    uint64_t b = i % 3 == 0 ? 700 : 90;
    at += r2.reserve(b, 1, at);
    sent += b;
  }
  double secs = std::chrono::duration<double>(at - now).count();
  CHECK(secs == doctest::Approx(double(sent) / 1000.0 - 0.5).epsilon(0.1));
  // An idle spell does not bank more than the burst.
  RateLimiter r3(0, 100.0, 0.5);
  CHECK(r3.reserve(0, 50, now) == Clock::duration::zero());
  auto later = now + std::chrono::minutes(10);
  CHECK(r3.reserve(0, 50, later) == Clock::duration::zero());
  CHECK(std::chrono::duration<double>(r3.reserve(0, 100, later)).count() == doctest::Approx(1.0));
  // Batches sized to about a tenth of a second of the rate, within bounds.
  CHECK(RateLimiter(2 << 20, 0).batch_bytes(1 << 20) == size_t(2 << 20) / 10);
  CHECK(RateLimiter(1000, 0).batch_bytes(1 << 20) == 4096);
  CHECK(RateLimiter(0, 1000).batch_events(5000) == 100);
  CHECK(RateLimiter(0, 5).batch_events(5000) == 1);
  CHECK(RateLimiter(0, 0).batch_events(5000) == 5000);
  CHECK_FALSE(RateLimiter(0, 0).limited());
}

TEST_CASE("parse_rate and valid_run_id") {
  CHECK(parse_rate("2MiB/s") == doctest::Approx(2.0 * 1048576));
  CHECK(parse_rate("500KB/s").has_value());
  CHECK(parse_rate("1048576") == doctest::Approx(1048576.0));
  for (const char* bad : {"", "/s", "0", "0MiB/s", "fast", "-1MiB/s", "2MiB/h"})
    CHECK_MESSAGE(!parse_rate(bad), bad);
  CHECK(valid_run_id("ct-20261101T120000Z"));
  CHECK(valid_run_id("a.b_c-9"));
  CHECK(valid_run_id(std::string(64, 'x')));
  for (const char* bad : {"", ".hidden", "../etc", "a/b", "a b", "é"})
    CHECK_MESSAGE(!valid_run_id(bad), bad);
  CHECK_FALSE(valid_run_id(std::string(65, 'x')));
}

TEST_CASE("with_mark: merged into the event's fields") {
  CHECK(with_mark("", "r1") == R"({"logship_replay":"r1"})");
  CHECK(with_mark(R"({"a":1})", "r1") == R"({"a":1,"logship_replay":"r1"})");
  std::string quoted = with_mark(R"({"a":1})", "x\"y");
  simdjson::dom::parser p;
  simdjson::dom::element doc;
  REQUIRE_FALSE(p.parse(quoted).get(doc));
  std::string_view v;
  REQUIRE_FALSE(doc["logship_replay"].get_string().get(v));
  CHECK(v == "x\"y");
}

TEST_CASE("progress_line: bar, counts, rates, ETA, width") {
  Snapshot s{40, 10, 2, 0, 100 << 20, 50 << 20, 1'200'000, 40 << 20, true};
  std::string line = progress_line(s, "objects", 10.0 * 1048576, 41000, 120);
  CHECK(line.size() <= 120);
  CHECK(line.starts_with("["));
  CHECK(line.find(" 12/40 objects ") != std::string::npos);
  CHECK(line.find("50.0/100.0 MiB") != std::string::npos);
  CHECK(line.find("1200k events") != std::string::npos);
  CHECK(line.find("10.0 MiB/s") != std::string::npos);
  CHECK(line.find("41k ev/s") == std::string::npos);  // below 100k: plain
  CHECK(line.find("41000 ev/s") != std::string::npos);
  CHECK(line.find("ETA 0:05") != std::string::npos);
  auto bar = line.substr(1, line.find(']') - 1);
  CHECK(std::count(bar.begin(), bar.end(), '#') == std::count(bar.begin(), bar.end(), '.'));
  // Still listing: the total is a lower bound.
  s.listing_done = false;
  line = progress_line(s, "files", 0, 0, 200);
  CHECK(line.find("12/40+ files") != std::string::npos);
  CHECK(line.find("listing") != std::string::npos);
  // Narrow terminals are never overrun.
  CHECK(progress_line(s, "files", 0, 0, 30).size() == 30);
  Snapshot done{3, 3, 0, 0, 0, 0, 0, 0, true};
  line = progress_line(done, "files", 0, 0, 100);
  CHECK(line.find("ETA -") != std::string::npos);
  CHECK(line.find('.') > line.find(']'));  // empty input, listing done: a full bar
}

TEST_CASE("summary: text and JSON say the same") {
  Summary s;
  s.run_id = "ct-1";
  s.objects = 12;
  s.events = 4800;
  s.bytes = 123456;
  s.event_bytes = 2 << 20;
  s.seconds = 2.0;
  s.dead_lettered = 1;
  s.skipped_done = 3;
  s.outside_window = 5;
  s.list_requests = 7;
  s.first_time = t("2026-11-01T00:00:00Z");
  s.last_time = t("2026-11-02T23:00:00Z");
  s.failures.push_back({"s3://b/k\"1", "AccessDenied"});
  std::string text = summary_text(s);
  CHECK(text.find("replay ct-1: done in 2.0 s") != std::string::npos);
  CHECK(
      text.find("objects:        12 (+3 done by an earlier attempt) (5 more outside the window)") !=
      std::string::npos);
  CHECK(text.find("events:         4800 (2.0MiB of event text, 1.0 MiB/s, 2400 events/s)") !=
        std::string::npos);
  CHECK(text.find("bytes:          120.6KiB stored (123456 bytes)") != std::string::npos);
  CHECK(text.find("time range:     2026-11-01T00:00:00Z .. 2026-11-02T23:00:00Z") !=
        std::string::npos);
  CHECK(text.find("failed:         1\n    s3://b/k\"1: AccessDenied") != std::string::npos);
  simdjson::dom::parser p;
  simdjson::dom::element doc;
  std::string js = summary_json(s);
  REQUIRE_FALSE(p.parse(js).get(doc));
  CHECK(uint64_t(doc["objects"]) == 12);
  CHECK(uint64_t(doc["events"]) == 4800);
  CHECK(uint64_t(doc["failed"]) == 1);
  CHECK(uint64_t(doc["dead_lettered"]) == 1);
  CHECK(std::string_view(doc["first_time"]) == "2026-11-01T00:00:00Z");
  CHECK(std::string_view(doc["failures"].at(0)["uri"]) == "s3://b/k\"1");
  CHECK_FALSE(bool(doc["dry_run"]));
  s.dry_run = true;
  s.first_time.reset();
  text = summary_text(s);
  CHECK(text.find("dry run (nothing sent)") != std::string::npos);
  CHECK(text.find("events:") == std::string::npos);
  REQUIRE_FALSE(p.parse(summary_json(s)).get(doc));
  CHECK(doc["first_time"].is_null());
}
