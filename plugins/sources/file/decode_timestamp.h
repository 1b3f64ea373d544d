#pragma once
// Timestamp parsing for the `file` source's `timestamp: {field, format}` (CONFIG.md "Source
// file"): rfc3339, epoch_s / epoch_ms / epoch_ns and strftime-like formats. Zone-less times are
// UTC. Nothing here throws or allocates on data.
#include <cstdint>
#include <string>
#include <string_view>

namespace logship::decode {

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
int64_t days_from_civil(int64_t y, unsigned m, unsigned d);
/// Days in month `m` (1-12) of year `y` (proleptic Gregorian).
int days_in_month(int64_t y, int m);

/// `YYYY-MM-DD(T|t| )hh:mm:ss[.frac][Z|z|±hh:mm|±hhmm]`; no zone = UTC. Whole input.
bool parse_rfc3339(std::string_view s, int64_t& ns);

/// A decimal number (optional `-`, digits, optional `.digits` when `allow_fraction`) of
/// `unit_ns` nanoseconds; fraction digits finer than 1ns are ignored. Also accepted as the text
/// of a JSON number token. Overflow of int64 nanoseconds fails.
bool parse_epoch(std::string_view s, int64_t unit_ns, bool allow_fraction, int64_t& ns);

/// strptime-like parsing of the whole input (trailing whitespace allowed). Directives: %Y %y %m
/// %d %e %H %I %M %S %p %f (fraction digits) %.f (optional `.` + digits) %z (Z, ±hh, ±hhmm,
/// ±hh:mm) %Z (UTC/GMT/Z only) %b %h %B (month names) %a %A (weekday names, ignored) %j (day
/// of year) %s (epoch seconds) %T %F %D %R %n %t %%. Whitespace in the format matches any
/// amount of whitespace. No %z = UTC; no year = the year of `now_ns` (the previous one when
/// that would put the time more than a day ahead of `now_ns`).
bool parse_strftime(std::string_view s, std::string_view fmt, int64_t now_ns, int64_t& ns);

/// Empty when `fmt` is a strftime format parse_strftime understands; else what is wrong.
std::string validate_strftime(std::string_view fmt);

/// A configured `timestamp.format`.
class TimestampFormat {
 public:
  enum class Kind : uint8_t { kRfc3339, kEpochS, kEpochMs, kEpochNs, kStrftime };

  /// Empty when `format` is valid (a known name or a strftime format); else what is wrong.
  static std::string validate(std::string_view format);

  explicit TimestampFormat(std::string format);
  Kind kind() const { return kind_; }
  /// Parses a string value (epoch formats accept numeric strings).
  bool parse_string(std::string_view s, int64_t now_ns, int64_t& ns) const;
  /// Parses the text of a JSON number; only epoch formats accept numbers.
  bool parse_number(std::string_view token, int64_t& ns) const;

 private:
  Kind kind_ = Kind::kRfc3339;
  std::string fmt_;
};

}  // namespace logship::decode
