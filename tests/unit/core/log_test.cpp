// Rate-limited logging: once per interval per key, in a table that does not grow without limit.
#include <doctest/doctest.h>

#include <string>

#include "agent/core/log.h"

using namespace logship;

TEST_CASE("log_allowed: once per interval per key, bounded table") {
  using std::chrono::hours;
  CHECK(log_allowed("unit/log/a", hours(1), nullptr));
  CHECK_FALSE(log_allowed("unit/log/a", hours(1), nullptr));
  CHECK(log_allowed("unit/log/b", hours(1), nullptr));
  uint64_t suppressed = 0;
  CHECK_FALSE(log_allowed("unit/log/a", hours(1), &suppressed));
  // 100,000 distinct keys (one per failing object, say): the table starts over instead of
  // growing, so key a is logged again rather than remembered forever.
  for (int i = 0; i < 100000; ++i) log_allowed("unit/log/many/" + std::to_string(i), hours(1), nullptr);
  CHECK(log_allowed("unit/log/a", hours(1), nullptr));
}
