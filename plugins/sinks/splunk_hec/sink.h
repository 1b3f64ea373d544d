#pragma once
// HecSink: the splunk_hec sink. run() batches the input channel into requests
// (HecRequestBuilder), and `request.concurrency` sender coroutines deliver them (HecService),
// retrying transport errors, 5xx, 408, 429 and auth failures forever with backoff, and
// dead-lettering refused events (HecDeadLetter).
#include <atomic>
#include <chrono>
#include <memory>
#include <string>

#include "agent/observe/metrics.h"
#include "agent/pipeline/component.h"
#include "plugins/sinks/splunk_hec/config.h"
#include "plugins/sinks/splunk_hec/dead_letter.h"
#include "plugins/sinks/splunk_hec/request_builder.h"
#include "plugins/sinks/splunk_hec/service.h"

namespace logship {

class HecSink final : public Sink {
 public:
  /// No I/O here (`logship check` builds sinks and throws them away).
  HecSink(HecSinkConfig cfg, const ComponentContext& ctx);
  ~HecSink() override;

  /// Consumes `in` until it is closed and drained and every request has finished, or until the
  /// drain deadline (ctx.abort) passes: requests still retrying are then given up (their events
  /// report kErrored so checkpoints hold).
  awaitable<void> run(BatchChannel& in) override;

  const std::string& channel() const { return channel_; }

 private:
  struct RunState;
  static awaitable<void> sender(std::shared_ptr<RunState> st);
  static awaitable<void> abort_watch(std::shared_ptr<RunState> st);
  awaitable<bool> push(RunState& st, std::vector<HecRequest>& ready);
  awaitable<bool> deliver(RunState& st, HecRequest& req);
  void dead_letter(HecRequest& req, const HecResult& r, const std::string& endpoint);
  std::chrono::nanoseconds backoff(int attempt, const HecResult& r);

  HecSinkConfig cfg_;
  ComponentContext ctx_;
  ComponentMetrics m_;
  Histogram& duration_;
  Gauge& in_flight_;
  HecDeadLetter dead_letter_;
  std::string channel_;
  std::atomic<bool> logged_ack_id_{false};
  std::atomic<bool> logged_no_ack_{false};
};

}  // namespace logship
