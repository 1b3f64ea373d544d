#include <doctest/doctest.h>

#include "agent/core/units.h"
#include "agent/observe/metrics.h"

using namespace logship;

TEST_CASE("sizes follow the CONFIG.md grammar") {
  CHECK(parse_size("512") == 512u);
  CHECK(parse_size("64KiB") == 65536u);
  CHECK(parse_size("10MiB") == 10u * 1024 * 1024);
  CHECK(parse_size("1GiB") == 1ull << 30);
  CHECK(parse_size("1KB") == 1000u);
  CHECK(parse_size("2MB") == 2000000u);
  CHECK(parse_size("1.5KiB") == 1536u);
  CHECK_FALSE(parse_size("12 parsecs"));
  CHECK_FALSE(parse_size(""));
  CHECK_FALSE(parse_size("-1"));
  CHECK_FALSE(parse_size("1.5"));
  CHECK_FALSE(parse_size("KiB"));
}

TEST_CASE("durations follow the CONFIG.md grammar") {
  using namespace std::chrono;
  CHECK(parse_duration("250ms") == milliseconds(250));
  CHECK(parse_duration("5s") == seconds(5));
  CHECK(parse_duration("10m") == minutes(10));
  CHECK(parse_duration("2h") == hours(2));
  CHECK(parse_duration("7d") == hours(168));
  CHECK(parse_duration("0") == nanoseconds(0));
  CHECK_FALSE(parse_duration("5"));
  CHECK_FALSE(parse_duration("5 minutes"));
  CHECK_FALSE(parse_duration(""));
}

TEST_CASE("metrics render in Prometheus text format with labels") {
  MetricsRegistry r;
  r.counter("x_total", "help x", {{"component_id", "a\"b"}}).inc(3);
  r.gauge("y", "help y").set(-2);
  r.histogram("z_seconds", "help z", {}, {0.1, 1}).observe(0.5);
  std::string out = r.render_prometheus();
  CHECK(out.find("# TYPE x_total counter") != std::string::npos);
  CHECK(out.find("x_total{component_id=\"a\\\"b\"} 3") != std::string::npos);
  CHECK(out.find("y -2") != std::string::npos);
  CHECK(out.find("z_seconds_bucket{le=\"0.1\"} 0") != std::string::npos);
  CHECK(out.find("z_seconds_bucket{le=\"1\"} 1") != std::string::npos);
  CHECK(out.find("z_seconds_count 1") != std::string::npos);
  CHECK(r.value("x_total", {{"component_id", "a\"b"}}) == 3);
}

TEST_CASE("parse_duration_arg: a bare number on the command line is seconds") {
  using namespace std::chrono;
  CHECK(parse_duration_arg("5") == seconds(5));
  CHECK(parse_duration_arg("0") == seconds(0));
  CHECK(parse_duration_arg("250ms") == milliseconds(250));
  CHECK(parse_duration_arg("2m") == minutes(2));
  CHECK_FALSE(parse_duration_arg(""));
  CHECK_FALSE(parse_duration_arg("5x"));
  CHECK_FALSE(parse_duration_arg("-5"));
  CHECK_FALSE(parse_duration_arg("99999999999999999999"));
}
