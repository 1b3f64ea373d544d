#pragma once
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace logship {

/// Parses a size: `512`, `512B`, `64KiB`, `10MiB`, `1GiB`, `1TiB` (powers of 1024) and `KB`, `MB`,
/// `GB`, `TB` (powers of 1000). Returns nullopt when malformed or overflowing.
std::optional<uint64_t> parse_size(std::string_view s);

/// Parses a duration: `250ms`, `5s`, `10m`, `2h`, `7d`, also `us`/`ns`; `0` alone is zero.
/// Returns nullopt when malformed (a bare number other than 0 is malformed).
std::optional<std::chrono::nanoseconds> parse_duration(std::string_view s);
/// A duration given on the command line: as parse_duration(), and a bare number is seconds
/// (`--drain-timeout 5`).
std::optional<std::chrono::nanoseconds> parse_duration_arg(std::string_view s);

/// `1.5MiB`-style rendering for messages.
std::string format_size(uint64_t bytes);
std::string format_duration(std::chrono::nanoseconds d);

}  // namespace logship
