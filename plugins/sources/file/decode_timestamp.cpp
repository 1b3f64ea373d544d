#include "plugins/sources/file/decode_timestamp.h"

#include <climits>
#include <cstring>

namespace logship::decode {

namespace {

constexpr int64_t kNsPerSec = 1'000'000'000;
constexpr int64_t kMaxSec = INT64_MAX / kNsPerSec - 1;

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}
bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}
char lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

/// Exactly `n` digits at s[i].
bool fixed_digits(std::string_view s, size_t& i, int n, int& out) {
  if (i + static_cast<size_t>(n) > s.size()) return false;
  int v = 0;
  for (int k = 0; k < n; ++k) {
    char c = s[i + static_cast<size_t>(k)];
    if (!is_digit(c)) return false;
    v = v * 10 + (c - '0');
  }
  i += static_cast<size_t>(n);
  out = v;
  return true;
}

/// 1..`max` digits at s[i].
bool var_digits(std::string_view s, size_t& i, int max, int& out) {
  int v = 0, n = 0;
  while (n < max && i < s.size() && is_digit(s[i])) {
    v = v * 10 + (s[i] - '0');
    ++i;
    ++n;
  }
  out = v;
  return n > 0;
}

/// One or more fraction digits at s[i] as nanoseconds (digits past the 9th are ignored).
bool fraction(std::string_view s, size_t& i, int64_t& nanos) {
  size_t start = i;
  int64_t scale = kNsPerSec / 10;
  nanos = 0;
  while (i < s.size() && is_digit(s[i])) {
    nanos += (s[i] - '0') * scale;
    scale /= 10;
    ++i;
  }
  return i > start;
}

/// `Z`/`z`, `±hh:mm`, `±hhmm`, and `±hh` when `allow_hours_only`.
bool zone_offset(std::string_view s, size_t& i, bool allow_hours_only, int64_t& offset_s) {
  if (i >= s.size()) return false;
  if (s[i] == 'Z' || s[i] == 'z') {
    ++i;
    offset_s = 0;
    return true;
  }
  if (s[i] != '+' && s[i] != '-') return false;
  bool neg = s[i] == '-';
  ++i;
  int hh = 0, mm = 0;
  if (!fixed_digits(s, i, 2, hh)) return false;
  if (i < s.size() && s[i] == ':') {
    ++i;
    if (!fixed_digits(s, i, 2, mm)) return false;
  } else if (i + 1 < s.size() && is_digit(s[i]) && is_digit(s[i + 1])) {
    fixed_digits(s, i, 2, mm);
  } else if (!allow_hours_only) {
    return false;
  }
  if (hh > 23 || mm > 59) return false;
  offset_s = (hh * 3600 + mm * 60) * (neg ? -1 : 1);
  return true;
}

bool leap(int64_t y) {
  return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

}  // namespace

int days_in_month(int64_t y, int m) {
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && leap(y) ? 29 : kDays[m - 1];
}

namespace {

int64_t year_of_days(int64_t days) {
  int64_t z = days + 719468;
  int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  int64_t doe = z - era * 146097;
  int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  int64_t mp = (5 * doy + 2) / 153;
  int64_t m = mp < 10 ? mp + 3 : mp - 9;
  return yoe + era * 400 + (m <= 2 ? 1 : 0);
}

bool combine(int64_t y, int m, int d, int hh, int mi, int ss, int64_t nanos, int64_t offset_s,
             int64_t& ns) {
  if (y < 0 || y > 9999 || m < 1 || m > 12 || d < 1 || d > days_in_month(y, m) || hh > 23 ||
      mi > 59 || ss > 60)
    return false;
  int64_t secs = days_from_civil(y, static_cast<unsigned>(m), static_cast<unsigned>(d)) * 86400 +
                 hh * 3600 + mi * 60 + ss - offset_s;
  if (secs > kMaxSec || secs < -kMaxSec) return false;
  ns = secs * kNsPerSec + nanos;
  return true;
}

constexpr const char* kMonths[] = {"january",   "february", "march",    "april",
                                   "may",       "june",     "july",     "august",
                                   "september", "october",  "november", "december"};
constexpr const char* kWeekdays[] = {"sunday",   "monday", "tuesday", "wednesday",
                                     "thursday", "friday", "saturday"};

/// Matches a full name or its 3-letter abbreviation (case-insensitive); returns its index.
int name_index(std::string_view s, size_t& i, const char* const* names, int count) {
  for (int k = 0; k < count; ++k) {
    std::string_view full(names[k]);
    for (size_t len : {full.size(), size_t{3}}) {
      if (i + len > s.size()) continue;
      bool eq = true;
      for (size_t j = 0; j < len && eq; ++j) eq = lower(s[i + j]) == full[j];
      if (eq) {
        i += len;
        return k;
      }
    }
  }
  return -1;
}

struct Fields {
  int64_t year = 1970;
  bool have_year = false;
  int month = 1, day = 1, hour = 0, minute = 0, second = 0, yday = -1;
  int64_t nanos = 0, offset_s = 0;
  bool hour12 = false, pm = false;
  bool have_epoch = false;
  int64_t epoch = 0;
};

/// Directive characters parse_strftime understands (after `%`, an optional `.` and a width).
constexpr std::string_view kDirectives = "YymdeHIMSpfzZbhBaAjsTFDRnt%";

bool parse_fmt(std::string_view s, size_t& i, std::string_view fmt, Fields& f) {
  for (size_t k = 0; k < fmt.size(); ++k) {
    char c = fmt[k];
    if (is_space(c)) {
      while (i < s.size() && is_space(s[i])) ++i;
      continue;
    }
    if (c != '%') {
      if (i >= s.size() || s[i] != c) return false;
      ++i;
      continue;
    }
    if (++k >= fmt.size()) return false;
    bool dot = false;
    if (fmt[k] == '.') {
      dot = true;
      if (++k >= fmt.size()) return false;
    }
    if (is_digit(fmt[k]) && ++k >= fmt.size()) return false;  // width, %3f
    int v = 0;
    switch (fmt[k]) {
      case 'Y': {
        bool neg = i < s.size() && s[i] == '-';
        if (neg) ++i;
        if (!var_digits(s, i, 4, v)) return false;
        f.year = neg ? -v : v;
        f.have_year = true;
        break;
      }
      case 'y':
        if (!var_digits(s, i, 2, v)) return false;
        f.year = v < 69 ? 2000 + v : 1900 + v;
        f.have_year = true;
        break;
      case 'm':
        if (!var_digits(s, i, 2, f.month)) return false;
        break;
      case 'e':
        while (i < s.size() && s[i] == ' ') ++i;
        [[fallthrough]];
      case 'd':
        if (!var_digits(s, i, 2, f.day)) return false;
        break;
      case 'H':
        if (!var_digits(s, i, 2, f.hour)) return false;
        break;
      case 'I':
        if (!var_digits(s, i, 2, f.hour) || f.hour < 1 || f.hour > 12) return false;
        f.hour12 = true;
        break;
      case 'M':
        if (!var_digits(s, i, 2, f.minute)) return false;
        break;
      case 'S':
        if (!var_digits(s, i, 2, f.second)) return false;
        break;
      case 'j':
        if (!var_digits(s, i, 3, f.yday) || f.yday < 1 || f.yday > 366) return false;
        break;
      case 'p':
        if (i + 2 > s.size()) return false;
        if (lower(s[i + 1]) != 'm') return false;
        if (lower(s[i]) == 'p') {
          f.pm = true;
        } else if (lower(s[i]) != 'a') {
          return false;
        }
        i += 2;
        break;
      case 'f':
        if (dot) {
          if (i < s.size() && s[i] == '.') {
            ++i;
            if (!fraction(s, i, f.nanos)) return false;
          }
        } else if (!fraction(s, i, f.nanos)) {
          return false;
        }
        break;
      case 'z':
        if (!zone_offset(s, i, true, f.offset_s)) return false;
        break;
      case 'Z':
        if (i < s.size() && (s[i] == 'Z' || s[i] == 'z')) {
          ++i;
        } else if (i + 3 <= s.size() &&
                   (lower(s[i]) == 'u' && lower(s[i + 1]) == 't' && lower(s[i + 2]) == 'c')) {
          i += 3;
        } else if (i + 3 <= s.size() &&
                   (lower(s[i]) == 'g' && lower(s[i + 1]) == 'm' && lower(s[i + 2]) == 't')) {
          i += 3;
        } else {
          return false;
        }
        f.offset_s = 0;
        break;
      case 'b':
      case 'h':
      case 'B': {
        int m = name_index(s, i, kMonths, 12);
        if (m < 0) return false;
        f.month = m + 1;
        break;
      }
      case 'a':
      case 'A':
        if (name_index(s, i, kWeekdays, 7) < 0) return false;
        break;
      case 's': {
        bool neg = i < s.size() && s[i] == '-';
        if (neg) ++i;
        size_t start = i;
        int64_t e = 0;
        while (i < s.size() && is_digit(s[i])) {
          if (e > kMaxSec / 10) return false;
          e = e * 10 + (s[i] - '0');
          ++i;
        }
        if (i == start || e > kMaxSec) return false;
        f.epoch = neg ? -e : e;
        f.have_epoch = true;
        break;
      }
      case 'T':
        if (!parse_fmt(s, i, "%H:%M:%S", f)) return false;
        break;
      case 'F':
        if (!parse_fmt(s, i, "%Y-%m-%d", f)) return false;
        break;
      case 'D':
        if (!parse_fmt(s, i, "%m/%d/%y", f)) return false;
        break;
      case 'R':
        if (!parse_fmt(s, i, "%H:%M", f)) return false;
        break;
      case 'n':
      case 't':
        while (i < s.size() && is_space(s[i])) ++i;
        break;
      case '%':
        if (i >= s.size() || s[i] != '%') return false;
        ++i;
        break;
      default:
        return false;
    }
  }
  return true;
}

}  // namespace

int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2 ? 1 : 0;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

bool parse_rfc3339(std::string_view s, int64_t& ns) {
  size_t i = 0;
  int y = 0, mo = 0, d = 0, hh = 0, mi = 0, ss = 0;
  if (!fixed_digits(s, i, 4, y) || i >= s.size() || s[i++] != '-') return false;
  if (!fixed_digits(s, i, 2, mo) || i >= s.size() || s[i++] != '-') return false;
  if (!fixed_digits(s, i, 2, d) || i >= s.size()) return false;
  char sep = s[i++];
  if (sep != 'T' && sep != 't' && sep != ' ') return false;
  if (!fixed_digits(s, i, 2, hh) || i >= s.size() || s[i++] != ':') return false;
  if (!fixed_digits(s, i, 2, mi) || i >= s.size() || s[i++] != ':') return false;
  if (!fixed_digits(s, i, 2, ss)) return false;
  int64_t nanos = 0, offset = 0;
  if (i < s.size() && s[i] == '.') {
    ++i;
    if (!fraction(s, i, nanos)) return false;
  }
  if (i < s.size() && !zone_offset(s, i, false, offset)) return false;
  if (i != s.size()) return false;
  return combine(y, mo, d, hh, mi, ss, nanos, offset, ns);
}

bool parse_epoch(std::string_view s, int64_t unit_ns, bool allow_fraction, int64_t& ns) {
  s = trim(s);
  size_t i = 0;
  bool neg = false;
  if (i < s.size() && (s[i] == '-' || s[i] == '+')) neg = s[i++] == '-';
  size_t start = i;
  int64_t whole = 0;
  const int64_t max_whole = INT64_MAX / unit_ns;
  while (i < s.size() && is_digit(s[i])) {
    int d = s[i] - '0';
    if (whole > (max_whole - d) / 10) return false;
    whole = whole * 10 + d;
    ++i;
  }
  if (i == start) return false;
  int64_t frac = 0;
  if (i < s.size() && s[i] == '.') {
    if (!allow_fraction) return false;
    ++i;
    size_t fstart = i;
    int64_t scale = unit_ns / 10;
    while (i < s.size() && is_digit(s[i])) {
      frac += (s[i] - '0') * scale;
      scale /= 10;
      ++i;
    }
    if (i == fstart) return false;
  }
  if (i != s.size()) return false;
  if (whole > (INT64_MAX - frac) / unit_ns) return false;
  int64_t v = whole * unit_ns + frac;
  ns = neg ? -v : v;
  return true;
}

bool parse_strftime(std::string_view s, std::string_view fmt, int64_t now_ns, int64_t& ns) {
  Fields f;
  size_t i = 0;
  if (!parse_fmt(s, i, fmt, f)) return false;
  while (i < s.size() && is_space(s[i])) ++i;
  if (i != s.size()) return false;
  if (f.have_epoch) {
    if (f.epoch > kMaxSec || f.epoch < -kMaxSec) return false;
    ns = f.epoch * kNsPerSec + f.nanos;
    return true;
  }
  if (f.hour12) {
    f.hour = f.hour % 12 + (f.pm ? 12 : 0);
  } else if (f.pm && f.hour < 12) {
    f.hour += 12;
  }
  auto build = [&](int64_t year, int64_t& out) {
    int month = f.month, day = f.day;
    if (f.yday > 0) {  // day of year wins over month/day
      int rest = f.yday;
      month = 1;
      while (month <= 12 && rest > days_in_month(year, month)) rest -= days_in_month(year, month++);
      if (month > 12) return false;
      day = rest;
    }
    return combine(year, month, day, f.hour, f.minute, f.second, f.nanos, f.offset_s, out);
  };
  if (f.have_year) return build(f.year, ns);
  // No year (syslog-style): the reading year, or the previous one for times ahead of now.
  int64_t year = year_of_days(now_ns / kNsPerSec / 86400);
  int64_t v = 0;
  if (build(year, v) && v <= now_ns + 86400 * kNsPerSec) {
    ns = v;
    return true;
  }
  return build(year - 1, ns);
}

std::string validate_strftime(std::string_view fmt) {
  bool any = false;
  for (size_t k = 0; k < fmt.size(); ++k) {
    if (fmt[k] != '%') continue;
    if (++k >= fmt.size()) return "a strftime format must not end with %";
    bool modifier = false;
    if (fmt[k] == '.') {
      modifier = true;
      if (++k >= fmt.size()) return "incomplete strftime directive at the end";
    }
    if (is_digit(fmt[k])) {
      modifier = true;
      if (++k >= fmt.size()) return "incomplete strftime directive at the end";
    }
    char c = fmt[k];
    if (kDirectives.find(c) == std::string_view::npos)
      return std::string("unsupported strftime directive %") + c;
    if (modifier && c != 'f')
      return std::string("only %f takes `.` or a width (%.f, %3f), not %") + c;
    any = true;
  }
  if (!any) return "a strftime format needs at least one % directive";
  return {};
}

std::string TimestampFormat::validate(std::string_view format) {
  if (format == "rfc3339" || format == "epoch_s" || format == "epoch_ms" || format == "epoch_ns")
    return {};
  if (format.find('%') == std::string_view::npos)
    return "expected rfc3339, epoch_s, epoch_ms, epoch_ns or a strftime format such as "
           "\"%Y-%m-%d %H:%M:%S\"";
  return validate_strftime(format);
}

TimestampFormat::TimestampFormat(std::string format) : fmt_(std::move(format)) {
  if (fmt_ == "rfc3339") {
    kind_ = Kind::kRfc3339;
  } else if (fmt_ == "epoch_s") {
    kind_ = Kind::kEpochS;
  } else if (fmt_ == "epoch_ms") {
    kind_ = Kind::kEpochMs;
  } else if (fmt_ == "epoch_ns") {
    kind_ = Kind::kEpochNs;
  } else {
    kind_ = Kind::kStrftime;
  }
}

bool TimestampFormat::parse_string(std::string_view s, int64_t now_ns, int64_t& ns) const {
  switch (kind_) {
    case Kind::kRfc3339:
      return parse_rfc3339(trim(s), ns);
    case Kind::kStrftime:
      return parse_strftime(s, fmt_, now_ns, ns);
    default:
      return parse_number(s, ns);
  }
}

bool TimestampFormat::parse_number(std::string_view token, int64_t& ns) const {
  switch (kind_) {
    case Kind::kEpochS:
      return parse_epoch(token, kNsPerSec, true, ns);
    case Kind::kEpochMs:
      return parse_epoch(token, 1'000'000, true, ns);
    case Kind::kEpochNs:
      return parse_epoch(token, 1, false, ns);
    default:
      return false;
  }
}

}  // namespace logship::decode
