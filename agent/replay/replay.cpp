#include "agent/replay/replay.h"

#include <algorithm>
#include <cmath>
#include <ctime>

#include <fmt/format.h>

#include "agent/core/json_escape.h"
#include "agent/core/units.h"
#include "agent/pipeline/event_id.h"
#include "agent/pipeline/lifecycle.h"
#include "plugins/sources/file/decode_timestamp.h"

namespace logship::replay {
namespace {

bool all_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}
int to_int(std::string_view s) {
  int v = 0;
  for (char c : s) v = v * 10 + (c - '0');
  return v;
}
int64_t day_ns(int64_t y, unsigned m, unsigned d) {
  return decode::days_from_civil(y, m, d) * 86400 * kNsPerSec;
}
unsigned days_in_month(int64_t y, unsigned m) {
  return static_cast<unsigned>(decode::days_in_month(y, int(m)));
}
/// A partition value: `2026` or Hive style `year=2026`.
std::string_view value_of(std::string_view seg) {
  auto eq = seg.find('=');
  return eq == std::string_view::npos ? seg : seg.substr(eq + 1);
}

}  // namespace

std::optional<int64_t> parse_time_arg(std::string_view s) {
  int64_t ns = 0;
  if (s.size() == 10 && s[4] == '-' && s[7] == '-' && all_digits(s.substr(0, 4)) &&
      all_digits(s.substr(5, 2)) && all_digits(s.substr(8, 2))) {
    int64_t y = to_int(s.substr(0, 4));
    unsigned m = static_cast<unsigned>(to_int(s.substr(5, 2)));
    unsigned d = static_cast<unsigned>(to_int(s.substr(8, 2)));
    if (m < 1 || m > 12 || d < 1 || d > days_in_month(y, m)) return std::nullopt;
    return day_ns(y, m, d);
  }
  if (s.size() < 20 || !decode::parse_rfc3339(s, ns)) return std::nullopt;
  return ns;
}

std::string format_time(int64_t ns) {
  time_t secs = static_cast<time_t>(ns / kNsPerSec - (ns % kNsPerSec < 0 ? 1 : 0));
  struct tm tm {};
  gmtime_r(&secs, &tm);
  char buf[32];
  strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::optional<int64_t> key_delivery_time(std::string_view key) {
  // `_YYYYMMDDTHHMMZ_` (CloudTrail: ..._CloudTrail_us-east-1_20261101T0005Z_abc.json.gz; VPC
  // flow: ..._vpcflowlogs_us-east-1_fl-123_20261101T0005Z_hash.log.gz).
  auto name = key.substr(key.rfind('/') == std::string_view::npos ? 0 : key.rfind('/') + 1);
  for (size_t p = name.find('_'); p != std::string_view::npos; p = name.find('_', p + 1)) {
    std::string_view t = name.substr(p + 1);
    if (t.size() < 14 || t[8] != 'T' || t[13] != 'Z') continue;
    if (!all_digits(t.substr(0, 8)) || !all_digits(t.substr(9, 4))) continue;
    if (t.size() > 14 && t[14] != '_' && t[14] != '.') continue;
    int64_t y = to_int(t.substr(0, 4));
    unsigned mo = static_cast<unsigned>(to_int(t.substr(4, 2)));
    unsigned d = static_cast<unsigned>(to_int(t.substr(6, 2)));
    int h = to_int(t.substr(9, 2)), mi = to_int(t.substr(11, 2));
    if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59) continue;
    return day_ns(y, mo, d) + (int64_t(h) * 3600 + mi * 60) * kNsPerSec;
  }
  return std::nullopt;
}

WalkStep classify_prefix(std::string_view cp, const TimeWindow& w, int depth) {
  std::vector<std::string_view> segs;
  for (size_t b = 0; b < cp.size();) {
    size_t e = cp.find('/', b);
    if (e == std::string_view::npos) e = cp.size();
    if (e > b) segs.push_back(cp.substr(b, e - b));
    b = e + 1;
  }
  if (segs.empty()) return WalkStep::kDescend;
  // The date levels at the end: YYYY, YYYY/MM, YYYY/MM/DD, YYYY/MM/DD/HH.
  auto is_year = [](std::string_view v) {
    return v.size() == 4 && all_digits(v) && to_int(v) >= 1970 && to_int(v) <= 2199;
  };
  auto two = [](std::string_view v, int lo, int hi) {
    return v.size() == 2 && all_digits(v) && to_int(v) >= lo && to_int(v) <= hi;
  };
  size_t n = segs.size();
  std::optional<std::pair<int64_t, int64_t>> range;
  auto val = [&](size_t back) { return value_of(segs[n - 1 - back]); };
  if (is_year(val(0))) {
    int64_t y = to_int(val(0));
    range = {{day_ns(y, 1, 1), day_ns(y + 1, 1, 1)}};
  } else if (n >= 2 && is_year(val(1)) && two(val(0), 1, 12)) {
    int64_t y = to_int(val(1));
    unsigned m = static_cast<unsigned>(to_int(val(0)));
    int64_t from = day_ns(y, m, 1);
    range = {{from, from + int64_t(days_in_month(y, m)) * 86400 * kNsPerSec}};
  } else if (n >= 3 && is_year(val(2)) && two(val(1), 1, 12) && two(val(0), 1, 31)) {
    int64_t y = to_int(val(2));
    unsigned m = static_cast<unsigned>(to_int(val(1))), d = static_cast<unsigned>(to_int(val(0)));
    if (d <= days_in_month(y, m)) {
      int64_t from = day_ns(y, m, d);
      range = {{from, from + 86400 * kNsPerSec}};
    }
  } else if (n >= 4 && is_year(val(3)) && two(val(2), 1, 12) && two(val(1), 1, 31) &&
             two(val(0), 0, 23)) {
    int64_t y = to_int(val(3));
    unsigned m = static_cast<unsigned>(to_int(val(2))), d = static_cast<unsigned>(to_int(val(1)));
    if (d <= days_in_month(y, m)) {
      int64_t from = day_ns(y, m, d) + int64_t(to_int(val(0))) * 3600 * kNsPerSec;
      range = {{from, from + 3600 * kNsPerSec}};
    }
  }
  if (range)
    return w.may_hold_range(range->first, range->second) ? WalkStep::kDescend : WalkStep::kSkip;
  if (depth >= kMaxWalkDepth) return WalkStep::kListAll;
  // Above the date: the AWS layouts (AWSLogs/<account>/<service>/<region>/, or Hive-style
  // `aws-account-id=…/aws-service=…/aws-region=…/`).
  for (auto s : segs)
    if (s == "AWSLogs" || s.starts_with("aws-account-id=")) return WalkStep::kDescend;
  return WalkStep::kListAll;
}

// ---- rate limits ------------------------------------------------------------------------------
RateLimiter::RateLimiter(double bytes_per_s, double events_per_s, double burst_s)
    : bps_(bytes_per_s), eps_(events_per_s), burst_(burst_s) {
  bytes_tokens_ = bps_ * burst_;
  event_tokens_ = eps_ * burst_;
}

RateLimiter::Clock::duration RateLimiter::reserve(uint64_t bytes, uint64_t events,
                                                  Clock::time_point now) {
  std::lock_guard lk(mu_);
  if (!started_) {
    started_ = true;
    last_ = now;
  }
  double dt = std::chrono::duration<double>(now - last_).count();
  if (dt > 0) last_ = now;
  double wait = 0;
  if (bps_ > 0) {
    bytes_tokens_ = std::min(bps_ * burst_, bytes_tokens_ + std::max(0.0, dt) * bps_);
    bytes_tokens_ -= static_cast<double>(bytes);
    if (bytes_tokens_ < 0) wait = std::max(wait, -bytes_tokens_ / bps_);
  }
  if (eps_ > 0) {
    event_tokens_ = std::min(eps_ * burst_, event_tokens_ + std::max(0.0, dt) * eps_);
    event_tokens_ -= static_cast<double>(events);
    if (event_tokens_ < 0) wait = std::max(wait, -event_tokens_ / eps_);
  }
  return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(wait));
}

size_t RateLimiter::batch_bytes(size_t dflt) const {
  if (bps_ <= 0) return dflt;
  return std::clamp<size_t>(static_cast<size_t>(bps_ / 10), 4096, dflt);
}
size_t RateLimiter::batch_events(size_t dflt) const {
  if (eps_ <= 0) return dflt;
  return std::clamp<size_t>(static_cast<size_t>(eps_ / 10), 1, dflt);
}

awaitable<bool> throttle(RateLimiter* limiter, Lifecycle& lifecycle, uint64_t bytes,
                         uint64_t events) {
  if (!limiter || !limiter->limited()) co_return !lifecycle.stopping();
  auto wait = limiter->reserve(bytes, events, RateLimiter::Clock::now());
  if (wait <= RateLimiter::Clock::duration::zero()) co_return !lifecycle.stopping();
  co_return !co_await lifecycle.sleep(wait);
}

// ---- progress ---------------------------------------------------------------------------------
void Progress::saw_time(int64_t t) {
  int64_t cur = first_time_ns.load(std::memory_order_relaxed);
  while (t < cur && !first_time_ns.compare_exchange_weak(cur, t, std::memory_order_relaxed)) {
  }
  cur = last_time_ns.load(std::memory_order_relaxed);
  while (t > cur && !last_time_ns.compare_exchange_weak(cur, t, std::memory_order_relaxed)) {
  }
}

void Progress::fail(const std::string& uri, const std::string& reason) {
  std::lock_guard lk(mu_);
  failures_.push_back({uri, reason});
}
std::vector<Progress::Failure> Progress::failures() const {
  std::lock_guard lk(mu_);
  return failures_;
}
size_t Progress::failed() const {
  std::lock_guard lk(mu_);
  return failures_.size();
}

std::string with_mark(std::string_view fields, std::string_view mark) {
  std::string value;
  json_escape_append(value, mark);
  return with_field(fields, "logship_replay", value);
}

bool valid_run_id(std::string_view id) {
  if (id.empty() || id.size() > 64 || id[0] == '.') return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
  });
}

std::optional<double> parse_rate(std::string_view s) {
  if (s.ends_with("/s")) s.remove_suffix(2);
  if (s.empty()) return std::nullopt;
  auto v = parse_size(s);
  if (!v || *v == 0) return std::nullopt;
  return static_cast<double>(*v);
}

// ---- display ----------------------------------------------------------------------------------
Snapshot Snapshot::of(const Progress& p) {
  return {p.units_selected.load(), p.units_done.load(),
          p.units_skipped.load(),  p.units_failed.load(),
          p.bytes_selected.load(), p.bytes_read.load(),
          p.events_sent.load(),    p.event_bytes_sent.load(),
          p.listing_done.load()};
}

namespace {
std::string human_count(uint64_t n) {
  if (n >= 10'000'000) return fmt::format("{:.1f}M", double(n) / 1e6);
  if (n >= 100'000) return fmt::format("{:.0f}k", double(n) / 1e3);
  return std::to_string(n);
}
std::string mib(uint64_t b) {
  return fmt::format("{:.1f}", double(b) / (1024.0 * 1024.0));
}
std::string clock_text(double secs) {
  auto s = static_cast<uint64_t>(std::max(0.0, secs));
  if (s >= 3600) return fmt::format("{}:{:02}:{:02}", s / 3600, (s / 60) % 60, s % 60);
  return fmt::format("{}:{:02}", s / 60, s % 60);
}
}  // namespace

std::string progress_line(const Snapshot& s, std::string_view unit, double bps, double eps,
                          size_t width) {
  uint64_t total = std::max(s.bytes_selected, s.bytes_read);
  double frac = total ? double(s.bytes_read) / double(total) : (s.listing_done ? 1.0 : 0.0);
  uint64_t units_total = s.units_selected;
  uint64_t units_finished = s.units_done + s.units_skipped + s.failed;
  std::string tail = fmt::format(
      " {}/{}{} {}  {}/{} MiB  {} events  {} MiB/s  {} ev/s  ", units_finished, units_total,
      s.listing_done ? "" : "+", unit, mib(s.bytes_read), mib(total), human_count(s.events_sent),
      mib(static_cast<uint64_t>(bps)), human_count(static_cast<uint64_t>(eps)));
  if (!s.listing_done) {
    tail += "listing";
  } else if (bps > 0 && total > s.bytes_read) {
    tail += "ETA " + clock_text(double(total - s.bytes_read) / bps);
  } else {
    tail += "ETA -";
  }
  size_t bar = width > tail.size() + 12 ? std::min<size_t>(30, width - tail.size() - 2) : 10;
  auto filled = static_cast<size_t>(std::lround(frac * double(bar)));
  std::string line = "[" + std::string(std::min(filled, bar), '#') +
                     std::string(bar - std::min(filled, bar), '.') + "]";
  line += tail;
  if (line.size() > width) line.resize(width);
  return line;
}

std::string summary_text(const Summary& s) {
  std::string out;
  std::string state = s.dry_run ? "dry run (nothing sent)" : s.interrupted ? "interrupted" : "done";
  out += fmt::format("replay {}: {} in {:.1f} s\n", s.run_id, state, s.seconds);
  if (s.files && !s.objects) {
    out += fmt::format("  files:          {}", s.files);
  } else {
    out += fmt::format("  objects:        {}", s.objects);
  }
  if (s.skipped_done) out += fmt::format(" (+{} done by an earlier attempt)", s.skipped_done);
  if (s.outside_window) out += fmt::format(" ({} more outside the window)", s.outside_window);
  out += "\n";
  out += fmt::format("  bytes:          {} stored ({} bytes)\n", format_size(s.bytes), s.bytes);
  if (!s.dry_run) {
    out +=
        fmt::format("  events:         {} ({} of event text", s.events, format_size(s.event_bytes));
    if (s.seconds > 0)
      out +=
          fmt::format(", {:.1f} MiB/s, {:.0f} events/s",
                      double(s.event_bytes) / 1048576.0 / s.seconds, double(s.events) / s.seconds);
    out += ")\n";
    if (s.events_outside)
      out += fmt::format("  outside window: {} events not sent\n", s.events_outside);
  }
  // A dry run reads no event: its times are the files' (delivery time in the name, LastModified
  // or mtime).
  if (s.first_time && s.last_time)
    out += fmt::format("  {}{} .. {}\n", s.dry_run ? "file times:     " : "time range:     ",
                       format_time(*s.first_time), format_time(*s.last_time));
  if (s.list_requests) out += fmt::format("  list requests:  {}\n", s.list_requests);
  if (!s.dry_run) out += fmt::format("  dead-lettered:  {}\n", s.dead_lettered);
  out += fmt::format("  failed:         {}\n", s.failures.size());
  for (auto& f : s.failures) out += fmt::format("    {}: {}\n", f.uri, f.reason);
  return out;
}

std::string summary_json(const Summary& s) {
  auto str = [](std::string_view v) {
    std::string o = "\"";
    json_escape_append(o, v);
    return o + "\"";
  };
  std::string out = "{\"run_id\":" + str(s.run_id);
  out += fmt::format(
      ",\"objects\":{},\"files\":{},\"events\":{},\"bytes\":{},\"dead_lettered\":{},\"failed\":{}",
      s.objects, s.files, s.events, s.bytes, s.dead_lettered, s.failures.size());
  out += fmt::format(",\"seconds\":{:.3f},\"dry_run\":{},\"interrupted\":{}", s.seconds, s.dry_run,
                     s.interrupted);
  out += fmt::format(
      ",\"skipped_done\":{},\"outside_window\":{},\"events_outside\":{},\"event_bytes\":{}",
      s.skipped_done, s.outside_window, s.events_outside, s.event_bytes);
  out += fmt::format(",\"list_requests\":{}", s.list_requests);
  out +=
      ",\"first_time\":" + (s.first_time ? str(format_time(*s.first_time)) : std::string("null"));
  out += ",\"last_time\":" + (s.last_time ? str(format_time(*s.last_time)) : std::string("null"));
  out += ",\"failures\":[";
  for (size_t i = 0; i < s.failures.size(); ++i)
    out += (i ? "," : "") + std::string("{\"uri\":") + str(s.failures[i].uri) +
           ",\"reason\":" + str(s.failures[i].reason) + "}";
  out += "]}\n";
  return out;
}

}  // namespace logship::replay
