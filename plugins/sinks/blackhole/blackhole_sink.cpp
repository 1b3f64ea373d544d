// `blackhole` sink: counts events and bytes, prints a rate line every `print_interval`
// (0 = only at exit), and reports every batch delivered.
#include <chrono>

#include <fmt/format.h>

#include "agent/config/config.h"
#include "agent/core/log.h"
#include "agent/pipeline/registry.h"

namespace logship {
namespace {

class BlackholeSink : public Sink {
 public:
  BlackholeSink(std::chrono::nanoseconds print_interval, ComponentContext ctx)
      : print_interval_(print_interval), ctx_(std::move(ctx)), m_(ctx_.id, ctx_.type, "sink") {}

  awaitable<void> run(BatchChannel& in) override {
    using clock = std::chrono::steady_clock;
    auto start = clock::now(), last = start;
    uint64_t events = 0, bytes = 0, last_events = 0, last_bytes = 0;
    for (;;) {
      bool timed_out = false;
      std::optional<BatchRef> ref;
      if (print_interval_.count() > 0)
        ref = co_await in.receive_for(print_interval_, timed_out);
      else
        ref = co_await in.receive();
      if (ref) {
        events += ref->batch->size();
        bytes += ref->batch->text_bytes();
        m_.received_events.inc(ref->batch->size());
        m_.received_bytes.inc(ref->batch->text_bytes());
        m_.sent_events.inc(ref->batch->size());
        m_.sent_bytes.inc(ref->batch->text_bytes());
        ref->ack.finish(DeliveryStatus::kDelivered);
      } else if (!timed_out) {
        break;
      }
      auto now = clock::now();
      if (print_interval_.count() > 0 && now - last >= print_interval_) {
        double dt = std::chrono::duration<double>(now - last).count();
        spdlog::info("[{}] {} events ({:.0f}/s), {:.1f} MiB ({:.1f} MiB/s)", ctx_.id, events,
                     (events - last_events) / dt, bytes / 1048576.0,
                     (bytes - last_bytes) / 1048576.0 / dt);
        last = now;
        last_events = events;
        last_bytes = bytes;
      }
    }
    double dt = std::chrono::duration<double>(clock::now() - start).count();
    spdlog::info("[{}] total {} events, {:.1f} MiB in {:.1f}s", ctx_.id, events, bytes / 1048576.0, dt);
  }

 private:
  std::chrono::nanoseconds print_interval_;
  ComponentContext ctx_;
  ComponentMetrics m_;
};

}  // namespace

void register_sinks_blackhole(Registry& r) {
  r.add_sink("blackhole",
             [](ConfigNode& cfg, const ComponentContext& ctx) -> std::unique_ptr<Sink> {
               auto interval = cfg.duration("print_interval", std::chrono::seconds(1));
               cfg.touch("buffer");
               cfg.throw_if_errors();
               return std::make_unique<BlackholeSink>(interval, ctx);
             });
}

}  // namespace logship
