#pragma once
// HecSink: the splunk_hec sink. run() cuts the input channel into requests (HecRequestBuilder);
// `request.concurrency` sender coroutines per endpoint pull them from one HecRequestQueue, so a
// slow or failing endpoint never stalls the others (it stops pulling while it backs off). Each
// response is mapped by the HEC.md table: delivered (or waiting for its indexer
// acknowledgement), retried (backoff + jitter, Retry-After), split (413, invalid-event-number)
// or dead-lettered. One ack poller per endpoint confirms pending requests and resends those
// unconfirmed after acknowledgements.timeout.
#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "agent/observe/metrics.h"
#include "agent/pipeline/component.h"
#include "plugins/sinks/splunk_hec/config.h"
#include "plugins/sinks/splunk_hec/dead_letter.h"
#include "plugins/sinks/splunk_hec/endpoint.h"
#include "plugins/sinks/splunk_hec/request_builder.h"
#include "plugins/sinks/splunk_hec/request_queue.h"

namespace logship {

class HecSink final : public Sink {
 public:
  /// No I/O here (`logship check` builds sinks and throws them away).
  HecSink(HecSinkConfig cfg, const ComponentContext& ctx);
  ~HecSink() override;
  /// Consumes `in` until it is closed and drained and every request reached a final status, or
  /// until the drain deadline (ctx.abort) passes: requests not finished then report kErrored so
  /// checkpoints hold.
  awaitable<void> run(BatchChannel& in) override;
  std::vector<std::string> dead_letter_files() const override {
    return {dead_letter_.path() + ".1", dead_letter_.path()};
  }

 private:
  struct RunState;
  static awaitable<void> sender(std::shared_ptr<RunState> st, HecEndpoint* ep);
  static awaitable<void> ack_poller(std::shared_ptr<RunState> st, HecEndpoint* ep);
  static awaitable<void> abort_watch(std::shared_ptr<RunState> st);
  awaitable<bool> wait_usable(RunState& st, HecEndpoint& ep);
  awaitable<void> handle(RunState& st, HecEndpoint& ep, HecRequest req);
  void delivered(RunState& st, HecRequest& req);
  void delivered_parts(RunState& st, std::vector<HecRequestPart>& parts);
  void dead_letter(RunState& st, std::vector<HecRequestPart>& parts, const HecResult& r,
                   const std::string& endpoint);
  void resend_parts(RunState& st, std::vector<HecRequestPart>&& parts);
  void add_pending_bytes(RunState& st, int64_t delta);

  HecSinkConfig cfg_;
  ComponentContext ctx_;
  ComponentMetrics m_;
  Gauge& in_flight_;
  Gauge& pending_ack_bytes_;
  Gauge& pending_acks_;
  Counter& ack_timeouts_;
  Counter& resent_events_;
  Counter& splits_;
  HecDeadLetter dead_letter_;
  std::atomic<bool> logged_no_ack_{false};
  std::atomic<bool> logged_acks_off_{false};
};

}  // namespace logship
