#include "plugins/sinks/splunk_hec/sink.h"

#include <algorithm>
#include <random>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "agent/core/units.h"

namespace logship {

/// What the run() coroutine shares with its senders and the abort watcher. Holds no I/O object
/// once run() has returned.
struct HecSink::RunState {
  HecSink* sink = nullptr;
  Lifecycle* abort = nullptr;
  Lifecycle own_abort;  ///< used when the runtime gives none (tests)
  Lifecycle finished;   ///< run() is done: wakes the abort watcher
  std::unique_ptr<HecService> service;
  Channel<HecRequest> queue;
  std::mutex mu;
  WaitQueue wq;
  int running = 0;  ///< senders still running
  bool done = false;
  explicit RunState(size_t depth) : queue(SIZE_MAX, depth) {}
};

HecSink::HecSink(HecSinkConfig cfg, const ComponentContext& ctx)
    : cfg_(std::move(cfg)),
      ctx_(ctx),
      m_(ctx.id, ctx.type, "sink"),
      duration_(metrics().histogram(
          "logship_hec_request_duration_seconds", "Duration of HEC requests (every attempt)",
          {{"component_id", ctx.id}},
          {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60})),
      in_flight_(metrics().gauge("logship_hec_requests_in_flight", "HEC requests in flight",
                                 {{"component_id", ctx.id}})),
      dead_letter_(cfg_.dead_letter_path, cfg_.dead_letter_max_bytes),
      channel_(make_hec_channel()) {}

HecSink::~HecSink() = default;

awaitable<void> HecSink::run(BatchChannel& in) {
  if (!cfg_.tls.verify)
    spdlog::warn("[{}] tls.verify is false: the HEC server's certificate and name are not checked",
                 ctx_.id);
  const int senders = cfg_.request_concurrency;
  auto st = std::make_shared<RunState>(static_cast<size_t>(senders));
  st->sink = this;
  st->abort = ctx_.abort ? ctx_.abort : &st->own_abort;
  st->service = std::make_unique<HecService>(ctx_.executor, cfg_, cfg_.endpoints.front(), channel_);
  st->running = senders;
  for (int i = 0; i < senders; ++i) asio::co_spawn(ctx_.executor, sender(st), asio::detached);
  asio::co_spawn(ctx_.executor, abort_watch(st), asio::detached);

  HecRequestBuilder builder(cfg_);
  std::vector<HecRequest> ready;
  auto deadline = std::chrono::steady_clock::now();
  bool open = true;
  for (;;) {
    std::optional<BatchRef> item;
    if (builder.empty()) {
      item = co_await in.receive();
    } else {
      bool timed_out = false;
      auto left = deadline - std::chrono::steady_clock::now();
      if (left > WaitQueue::Duration::zero()) item = co_await in.receive_for(left, timed_out);
      if (!item && (timed_out || left <= WaitQueue::Duration::zero())) {
        builder.flush(ready);  // batch.timeout: send what we have
        if (!(open = co_await push(*st, ready))) break;
        continue;
      }
    }
    if (!item) break;  // closed and drained, or aborted
    if (builder.empty()) deadline = std::chrono::steady_clock::now() + cfg_.batch_timeout;
    if (item->batch) {
      m_.received_events.inc(item->batch->size());
      m_.received_bytes.inc(item->batch->text_bytes());
    }
    size_t replaced = builder.add(std::move(*item), ready);
    if (replaced)
      report_error(m_, "encode", "invalid_utf8",
                   fmt::format("replaced {} invalid UTF-8 sequence(s) by U+FFFD", replaced),
                   replaced);
    if (!(open = co_await push(*st, ready))) break;
  }
  if (open) {
    builder.flush(ready);
    co_await push(*st, ready);
  }
  st->queue.close();
  for (;;) {
    {
      std::lock_guard lk(st->mu);
      if (st->running == 0) break;
    }
    co_await st->wq.wait(st->mu, [&] { return st->running == 0; });
  }
  {
    std::lock_guard lk(st->mu);
    st->done = true;
    st->sink = nullptr;
  }
  st->finished.request_stop();
  st->service->shutdown();
  st->service.reset();  // the HTTP client goes away while the loop still runs
}

awaitable<bool> HecSink::push(RunState& st, std::vector<HecRequest>& ready) {
  bool ok = true;
  for (auto& r : ready) {
    size_t bytes = r.body.size();
    if (ok && !co_await st.queue.send(std::move(r), bytes)) ok = false;  // aborted: r errors out
  }
  ready.clear();
  co_return ok;
}

awaitable<void> HecSink::sender(std::shared_ptr<RunState> st) {
  struct Done {
    RunState* s;
    ~Done() {
      std::lock_guard lk(s->mu);
      --s->running;
      s->wq.notify_all();
    }
  } done{st.get()};
  for (;;) {
    std::optional<HecRequest> req = co_await st->queue.receive();
    if (!req) break;
    bool keep_going = co_await st->sink->deliver(*st, *req);
    if (!keep_going) {
      st->queue.abort();  // drain deadline passed: the batcher stops, queued requests error out
      break;
    }
  }
}

awaitable<void> HecSink::abort_watch(std::shared_ptr<RunState> st) {
  // Polls the runtime's abort (a Lifecycle sleep cannot be cancelled by us); sleeps on our own
  // `finished` so that run() wakes it when it returns and nothing is left behind.
  for (;;) {
    bool finished = co_await st->finished.sleep(std::chrono::milliseconds(100));
    std::lock_guard lk(st->mu);
    if (finished || st->done) co_return;
    if (st->abort->stopping()) {
      st->queue.abort();
      if (st->service) st->service->shutdown();  // in-flight requests fail now
      co_return;
    }
  }
}

std::chrono::nanoseconds HecSink::backoff(int attempt, const HecResult& r) {
  using std::chrono::nanoseconds;
  nanoseconds lo = cfg_.retry_initial_backoff;
  nanoseconds cap = lo;
  for (int i = 1; i < attempt && cap < cfg_.retry_max_backoff; ++i) cap *= 2;
  cap = std::min(cap, cfg_.retry_max_backoff);
  thread_local std::minstd_rand rng{std::random_device{}()};
  std::uniform_int_distribution<int64_t> dist(lo.count(), std::max(lo.count(), cap.count()));
  nanoseconds d(dist(rng));
  if (r.retry_after) d = std::max<nanoseconds>(*r.retry_after, lo);
  return d;
}

awaitable<bool> HecSink::deliver(RunState& st, HecRequest& req) {
  const std::string& endpoint = st.service->endpoint();
  for (int attempt = 1;; ++attempt) {
    in_flight_.add(1);
    HecResult r = co_await st.service->send(req);
    in_flight_.add(-1);
    duration_.observe(r.seconds);
    if (r.outcome == HecOutcome::kDelivered) {
      if (cfg_.acks_enabled) {
        if (r.ack_id && !logged_ack_id_.exchange(true))
          spdlog::info(
              "[{}] HEC returned an ackId; indexer acknowledgement polling is not implemented yet, "
              "so a 2xx counts as delivered",
              ctx_.id);
        if (!r.ack_id && !logged_no_ack_.exchange(true))
          spdlog::info(
              "[{}] HEC returned no ackId (acknowledgements off for the token); a 2xx "
              "counts as delivered",
              ctx_.id);
      }
      m_.sent_events.inc(req.events);
      m_.sent_bytes.inc(req.event_bytes);
      req.finish(DeliveryStatus::kDelivered);
      co_return true;
    }
    if (r.outcome == HecOutcome::kReject) {
      dead_letter(req, r, endpoint);
      co_return true;
    }
    auto delay = backoff(attempt, r);
    std::string what = r.outcome == HecOutcome::kAuth
                           ? "HEC refused the request (check token/endpoint)"
                           : "HEC request failed";
    report_error(m_, "send", r.error,
                 fmt::format("{}: {} ({}); keeping {} events, attempt {}, retrying in {}", what,
                             endpoint, r.describe(), req.events, attempt, format_duration(delay)));
    if (co_await st.abort->sleep(delay)) co_return false;  // drain deadline: give up
  }
}

void HecSink::dead_letter(HecRequest& req, const HecResult& r, const std::string& endpoint) {
  HecEncoder enc(cfg_);
  std::string lines;
  HecDeadLetter::format(lines, enc, req, endpoint, r.status, r.describe());
  std::string err = dead_letter_.write(lines);
  if (!err.empty()) {
    report_error(m_, "dead_letter", "write",
                 fmt::format("HEC refused {} events ({}) and they could not be dead-lettered: {}",
                             req.events, r.describe(), err),
                 1);
    req.finish(DeliveryStatus::kErrored);
    return;
  }
  report_error(m_, "send", r.error,
               fmt::format("HEC refused {} events ({}); written to {}", req.events, r.describe(),
                           dead_letter_.path()));
  m_.dropped("dead_letter").inc(req.events);
  req.finish(DeliveryStatus::kDeadLettered);
}

}  // namespace logship
