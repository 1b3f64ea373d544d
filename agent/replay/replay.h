#pragma once
// `logship replay`: what a replay run shares between the command line, the runtime and the
// source it drives (docs/replay.md). The pieces are pure and tested on their own: the time
// window and how it prunes date-partitioned S3 key layouts before they are listed, the token
// bucket behind --rate / --events-rate, the progress counters, the progress line and the summary.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "agent/core/asio.h"

namespace logship {
class Lifecycle;
}

namespace logship::replay {

// ---- time window ----------------------------------------------------------------------------
constexpr int64_t kNsPerSec = 1'000'000'000;
/// How long after an event's time its log file may be delivered (CloudTrail delivers within
/// about 15 minutes, VPC Flow Logs within 10; an hour is the margin): a file named or filed by its
/// delivery time can hold events up to this much older.
constexpr int64_t kDeliveryLagNs = 3600 * kNsPerSec;

/// [since, until): either bound may be open.
struct TimeWindow {
  std::optional<int64_t> since_ns, until_ns;
  bool bounded() const { return since_ns || until_ns; }
  bool contains(int64_t t) const {
    return (!since_ns || t >= *since_ns) && (!until_ns || t < *until_ns);
  }
  /// Can a file delivered at `delivered` (its key's or its LastModified time) hold events of the
  /// window? Events precede their delivery, by at most kDeliveryLagNs for the AWS layouts.
  bool may_hold(int64_t delivered) const {
    return (!since_ns || delivered >= *since_ns) &&
           (!until_ns || delivered < *until_ns + kDeliveryLagNs);
  }
  /// The same for files delivered at some time in [from, to).
  bool may_hold_range(int64_t from, int64_t to) const {
    return (!since_ns || to > *since_ns) && (!until_ns || from < *until_ns + kDeliveryLagNs);
  }
};

/// RFC 3339 (`2026-11-01T12:00:00Z`, offsets allowed) or a date (`2026-11-01`, midnight UTC).
std::optional<int64_t> parse_time_arg(std::string_view s);
/// `2026-11-01T12:00:00Z`.
std::string format_time(int64_t ns);
/// The delivery time in an AWS log file's name (`..._20261101T1205Z_...`), if it has one.
std::optional<int64_t> key_delivery_time(std::string_view key);

/// How the S3 walk treats a common prefix (a "directory" returned by a delimited listing).
enum class WalkStep { kSkip, kDescend, kListAll };
/// Deepest delimited level walked; below it a prefix is listed in full.
constexpr int kMaxWalkDepth = 10;
/// A date level (`…/YYYY/`, `…/YYYY/MM/`, `…/YYYY/MM/DD/`) outside the window is skipped, inside
/// it descended; the levels of the AWS layouts above the date (`AWSLogs/<account>/CloudTrail/
/// <region>/`) are descended; any other prefix is listed in full (a delimited walk of an
/// arbitrary tree would cost a request per directory).
WalkStep classify_prefix(std::string_view common_prefix, const TimeWindow& w, int depth);

// ---- rate limits ----------------------------------------------------------------------------
/// Token bucket over event bytes and events (either limit may be 0 = none). reserve() takes what
/// a batch costs and says how long to wait before sending it; debt carries over, so the long-run
/// rate is exact whatever the batch size. The bucket holds at most `burst` seconds of tokens.
class RateLimiter {
 public:
  using Clock = std::chrono::steady_clock;
  RateLimiter(double bytes_per_s, double events_per_s, double burst_s = 0.5);
  Clock::duration reserve(uint64_t bytes, uint64_t events, Clock::time_point now);
  bool limited() const { return bps_ > 0 || eps_ > 0; }
  /// Batch sizes that keep each send to about a tenth of a second of the rate.
  size_t batch_bytes(size_t dflt) const;
  size_t batch_events(size_t dflt) const;

 private:
  std::mutex mu_;
  double bps_, eps_, burst_;
  double bytes_tokens_, event_tokens_;
  Clock::time_point last_{};
  bool started_ = false;
};

/// Waits until the batch may be sent; false when the run was stopped meanwhile.
awaitable<bool> throttle(RateLimiter* limiter, Lifecycle& lifecycle, uint64_t bytes,
                         uint64_t events);

// ---- progress --------------------------------------------------------------------------------
/// Written by the source (any thread), read by the progress display and the summary.
struct Progress {
  std::atomic<uint64_t> units_selected{0};  ///< objects or files to read (known so far)
  std::atomic<uint64_t> units_done{0};
  std::atomic<uint64_t> units_skipped{0};   ///< done by an earlier attempt of this run (--resume)
  std::atomic<uint64_t> units_failed{0};   ///< selected objects or files that failed
  std::atomic<uint64_t> units_outside{0};   ///< listed, but outside the window by name or date
  std::atomic<uint64_t> bytes_selected{0};  ///< stored (compressed) bytes of the selected units
  std::atomic<uint64_t> bytes_read{0};      ///< stored bytes read so far
  std::atomic<uint64_t> bytes_done{0};      ///< stored bytes of the units done
  std::atomic<uint64_t> events_sent{0};
  std::atomic<uint64_t> event_bytes_sent{0};
  std::atomic<uint64_t> events_outside{0};  ///< read, outside the window by their own time
  std::atomic<uint64_t> list_requests{0};
  std::atomic<bool> listing_done{false};
  std::atomic<int64_t> first_time_ns{INT64_MAX}, last_time_ns{INT64_MIN};

  void saw_time(int64_t t);
  void fail(const std::string& uri, const std::string& reason);
  struct Failure {
    std::string uri, reason;
  };
  std::vector<Failure> failures() const;
  size_t failed() const;

 private:
  mutable std::mutex mu_;
  std::vector<Failure> failures_;
};

/// What the runtime hands the source it replays (ComponentContext::replay).
struct Context {
  std::string run_id;
  std::vector<std::string> from;  ///< s3://bucket/prefix or absolute local paths / globs
  TimeWindow window;
  bool dry_run = false;
  std::string mark;  ///< the logship_replay field's value ("" = --no-mark)
  std::optional<RateLimiter> limiter;
  Progress progress;
  std::atomic<bool> interrupted{false};  ///< SIGINT/SIGTERM stopped the run
};

/// `{"logship_replay":"<mark>"}` merged into `fields` (a flat JSON object text, or empty).
std::string with_mark(std::string_view fields, std::string_view mark);

// ---- command line helpers -------------------------------------------------------------------
/// [A-Za-z0-9._-]{1,64}, not starting with '.'.
bool valid_run_id(std::string_view id);
/// "2MiB/s", "500KB/s", "1048576" (bytes per second); nullopt when malformed or zero.
std::optional<double> parse_rate(std::string_view s);

// ---- display -----------------------------------------------------------------------------------
struct Snapshot {
  uint64_t units_selected, units_done, units_skipped, failed, bytes_selected, bytes_read,
      events_sent, event_bytes_sent;
  bool listing_done;
  static Snapshot of(const Progress& p);
};
/// One terminal line: `[#####.....] 12/40 objects  180.2/640.0 MiB  1200k events  52.1 MiB/s
/// 41k ev/s  ETA 0:09`, at most `width` columns. `bps` / `eps` are current rates.
std::string progress_line(const Snapshot& s, std::string_view unit, double bps, double eps,
                          size_t width);

struct Summary {
  std::string run_id;
  bool dry_run = false, interrupted = false;
  uint64_t objects = 0, files = 0, events = 0, bytes = 0, dead_lettered = 0;
  uint64_t skipped_done = 0, outside_window = 0, events_outside = 0, event_bytes = 0,
           list_requests = 0;
  std::optional<int64_t> first_time, last_time;
  std::vector<Progress::Failure> failures;
  double seconds = 0;
};
std::string summary_text(const Summary& s);
std::string summary_json(const Summary& s);

}  // namespace logship::replay
