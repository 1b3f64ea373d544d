#pragma once
// Logging: spdlog, text or JSON lines. Secrets are never passed to these functions.
#include <chrono>
#include <string>
#include <string_view>

#include <spdlog/spdlog.h>

namespace logship {

/// Configures the default logger. format: "text" | "json"; level: trace..error.
void init_logging(std::string_view level, std::string_view format);

/// Rate limiter for degraded modes: returns true when a line for `key` may be logged now
/// (first time, then at most once per `interval`); `suppressed` receives how many calls were
/// swallowed since the last line. Thread-safe.
bool log_allowed(std::string_view key, std::chrono::seconds interval, uint64_t* suppressed);

}  // namespace logship
