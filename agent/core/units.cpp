#include "agent/core/units.h"

#include <algorithm>
#include <charconv>
#include <cmath>

#include <fmt/format.h>

namespace logship {
namespace {
bool parse_number(std::string_view s, double& out, size_t& used) {
  size_t i = 0;
  while (i < s.size() && ((s[i] >= '0' && s[i] <= '9') || s[i] == '.')) ++i;
  if (i == 0) return false;
  std::string_view num = s.substr(0, i);
  if (num.front() == '.' || num.back() == '.' || num.find('.') != num.rfind('.')) return false;
  auto [p, ec] = std::from_chars(num.data(), num.data() + num.size(), out);
  if (ec != std::errc() || p != num.data() + num.size()) return false;
  used = i;
  return true;
}
std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}
struct Unit {
  std::string_view name;
  double factor;
};
constexpr Unit kSizeUnits[] = {{"B", 1},
                               {"KiB", 1024.0},
                               {"MiB", 1048576.0},
                               {"GiB", 1073741824.0},
                               {"TiB", 1099511627776.0},
                               {"KB", 1e3},
                               {"MB", 1e6},
                               {"GB", 1e9},
                               {"TB", 1e12}};
constexpr Unit kDurationUnits[] = {{"ns", 1},   {"us", 1e3},   {"ms", 1e6},   {"s", 1e9},
                                   {"m", 60e9}, {"h", 3600e9}, {"d", 86400e9}};
/// The factor of a unit in `table`, 0 when it is not there.
template <size_t N>
double unit_factor(std::string_view unit, const Unit (&table)[N]) {
  for (const Unit& u : table)
    if (u.name == unit) return u.factor;
  return 0;
}
}  // namespace

std::optional<uint64_t> parse_size(std::string_view s) {
  s = trim(s);
  double v = 0;
  size_t used = 0;
  if (!parse_number(s, v, used)) return std::nullopt;
  std::string_view unit = trim(s.substr(used));
  double mult = unit.empty() ? 1 : unit_factor(unit, kSizeUnits);
  if (mult == 0) return std::nullopt;
  double total = v * mult;
  if (unit.empty() || unit == "B") {
    if (std::floor(v) != v) return std::nullopt;  // fractional bytes
  }
  if (!(total >= 0) || total > 9.0e18) return std::nullopt;
  return static_cast<uint64_t>(std::llround(total));
}

std::optional<std::chrono::nanoseconds> parse_duration(std::string_view s) {
  s = trim(s);
  if (s == "0") return std::chrono::nanoseconds(0);
  double v = 0;
  size_t used = 0;
  if (!parse_number(s, v, used)) return std::nullopt;
  std::string_view unit = trim(s.substr(used));
  double ns = unit_factor(unit, kDurationUnits);
  if (ns == 0) return std::nullopt;
  double total = v * ns;
  if (!(total >= 0) || total > 9.0e18) return std::nullopt;
  return std::chrono::nanoseconds(static_cast<int64_t>(std::llround(total)));
}

std::string format_size(uint64_t b) {
  if (b >= (1ull << 30)) return fmt::format("{:.1f}GiB", b / double(1ull << 30));
  if (b >= (1ull << 20)) return fmt::format("{:.1f}MiB", b / double(1ull << 20));
  if (b >= (1ull << 10)) return fmt::format("{:.1f}KiB", b / double(1ull << 10));
  return fmt::format("{}B", b);
}

std::string format_duration(std::chrono::nanoseconds d) {
  double s = d.count() / 1e9;
  if (s >= 1) return fmt::format("{:.1f}s", s);
  return fmt::format("{}ms", d.count() / 1000000);
}

std::optional<std::chrono::nanoseconds> parse_duration_arg(std::string_view s) {
  if (!s.empty() && s.size() <= 9 &&
      std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return parse_duration(std::string(s) + "s");
  return parse_duration(s);
}

}  // namespace logship
