#pragma once
// HecEndpoint: one HEC base URL with its own connection pool, channel GUID and cookies
// (HecService), its health (backoff after failures, probed through /services/collector/health
// before it takes traffic again), and the requests it sent that wait for their indexer
// acknowledgement. Thread-safe.
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "agent/observe/metrics.h"
#include "plugins/sinks/splunk_hec/service.h"

namespace logship {

class HecEndpoint {
 public:
  using Clock = std::chrono::steady_clock;
  /// Why the endpoint is not taking requests.
  enum class Block : uint8_t {
    kNone,
    kBackoff,  ///< transport error / 5xx / 429 / 408: back off, probe health, then resume
    kAuth,     ///< 401 / 403 / 404: retry with backoff, at once after SIGHUP re-read the token
    kConfig,   ///< 400 codes 10/11/16: configuration error, retried at the maximum backoff
  };

  HecEndpoint(Executor ex, const HecSinkConfig& cfg, std::string url, const std::string& sink_id);

  HecService& service() { return *service_; }
  const std::string& url() const { return url_; }

  /// When the endpoint may take a request; `probe` says whether a health probe must pass first
  /// (only one caller gets probe = true at a time).
  struct Gate {
    bool open = false;
    bool probe = false;
    Clock::duration wait{};  ///< when closed: how long until it may open
  };
  Gate gate();
  /// Result of a health probe started by gate(): healthy (200, or no health endpoint) or not.
  void probe_done(const HecHealth& h);
  /// A request succeeded; codes 24/25 (capacity approaching) slow the endpoint down.
  void on_success(const HecResult& r);
  /// A request failed: closes the gate for a backoff; returns the delay.
  Clock::duration on_failure(const HecResult& r, Block why);
  bool healthy() const;

  // ---- indexer acknowledgements ----
  /// The server answered without ackId or with code 14 on /ack: 2xx means delivered.
  bool acks_off() const;
  void set_acks_off();
  void add_pending(uint64_t ack_id, HecRequest&& req);
  std::vector<uint64_t> pending_ids(size_t max) const;
  std::optional<HecRequest> take_pending(uint64_t ack_id);
  /// Pending requests sent more than `timeout` ago.
  std::vector<HecRequest> take_expired(Clock::duration timeout);
  std::vector<HecRequest> take_all_pending();
  size_t pending_count() const;

  // per-endpoint metrics
  void count_request(long status, double seconds);

 private:
  Clock::duration backoff_locked(const HecResult* r);
  std::string url_;
  HecSinkConfig cfg_;
  std::unique_ptr<HecService> service_;
  mutable std::mutex mu_;
  Block block_ = Block::kNone;
  int failures_ = 0;
  Clock::time_point ready_at_{};
  bool probe_needed_ = false;
  bool probing_ = false;
  uint64_t secret_generation_ = 0;
  bool acks_off_ = false;
  struct Pending {
    HecRequest req;
    Clock::time_point sent;
  };
  std::map<uint64_t, Pending> pending_;
  Gauge& healthy_;
  Histogram& duration_;
  std::string sink_id_;
};

}  // namespace logship
