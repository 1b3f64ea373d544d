#include "plugins/sinks/splunk_hec/sink.h"

#include <algorithm>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "agent/core/log.h"
#include "agent/core/units.h"

namespace logship {

/// What run() shares with its senders, ack pollers and the abort watcher.
struct HecSink::RunState {
  explicit RunState(size_t depth) : queue(depth) {}
  HecSink* sink = nullptr;
  Lifecycle* abort = nullptr;
  Lifecycle own_abort;  ///< used when the runtime gives none (tests)
  Lifecycle finished;   ///< run() is done: wakes the pollers and the abort watcher
  std::vector<std::unique_ptr<HecEndpoint>> endpoints;
  HecRequestQueue queue;
  std::mutex mu;
  WaitQueue wq;
  int running = 0;  ///< senders + pollers still running
  std::atomic<int64_t> pending_bytes{0};
  std::mutex rebuild_mu;
  std::unique_ptr<HecRequestBuilder> rebuilder;  ///< re-encodes split requests
};

HecSink::HecSink(HecSinkConfig cfg, const ComponentContext& ctx)
    : cfg_(std::move(cfg)),
      ctx_(ctx),
      m_(ctx.id, ctx.type, "sink"),
      in_flight_(metrics().gauge("logship_hec_requests_in_flight", "HEC requests in flight",
                                 {{"component_id", ctx.id}})),
      pending_ack_bytes_(metrics().gauge(
          "logship_hec_pending_ack_bytes",
          "Bytes of requests sent and waiting for their indexer acknowledgement",
          {{"component_id", ctx.id}})),
      pending_acks_(metrics().gauge("logship_hec_pending_acks",
                                    "Requests waiting for their indexer acknowledgement",
                                    {{"component_id", ctx.id}})),
      ack_timeouts_(metrics().counter(
          "logship_hec_ack_timeouts_total",
          "Requests resent because no acknowledgement came within acknowledgements.timeout "
          "(possible duplicates)",
          {{"component_id", ctx.id}})),
      resent_events_(metrics().counter("logship_hec_resent_events_total",
                                       "Events resent after an acknowledgement timeout",
                                       {{"component_id", ctx.id}})),
      splits_(metrics().counter("logship_hec_request_splits_total",
                                "Requests split and resent (413, invalid-event-number)",
                                {{"component_id", ctx.id}})),
      dead_letter_(cfg_.dead_letter_path, cfg_.dead_letter_max_bytes, ctx.at_rest) {}

HecSink::~HecSink() = default;

awaitable<void> HecSink::run(BatchChannel& in) {
  if (!cfg_.tls.verify)
    spdlog::warn("[{}] tls.verify is false: the HEC server's certificate and name are not checked",
                 ctx_.id);
  in.defer_release();
  const int per_endpoint = cfg_.request_concurrency;
  // One encoded request waits per endpoint: enough to keep the senders busy (the batcher encodes
  // far faster than a request travels), and each waiting request holds ~2 MiB (its body and the
  // batches it refers to), which counts in the peak RSS.
  auto st = std::make_shared<RunState>(cfg_.endpoints.size());
  st->sink = this;
  st->abort = ctx_.abort ? ctx_.abort : &st->own_abort;
  st->rebuilder = std::make_unique<HecRequestBuilder>(cfg_);
  for (auto& url : cfg_.endpoints)
    st->endpoints.push_back(std::make_unique<HecEndpoint>(ctx_.executor, cfg_, url, ctx_.id));
  for (auto& ep : st->endpoints) {
    for (int i = 0; i < per_endpoint; ++i) {
      ++st->running;
      asio::co_spawn(ctx_.executor, sender(st, ep.get()), asio::detached);
    }
    if (cfg_.acks_enabled) {
      ++st->running;
      asio::co_spawn(ctx_.executor, ack_poller(st, ep.get()), asio::detached);
    }
  }
  asio::co_spawn(ctx_.executor, abort_watch(st), asio::detached);

  HecRequestBuilder builder(cfg_);
  std::vector<HecRequest> ready;
  auto push_ready = [&]() -> awaitable<bool> {
    bool ok = true;
    for (auto& r : ready)
      if (ok && !co_await st->queue.push(std::move(r))) ok = false;  // aborted: r errors out
    ready.clear();
    co_return ok;
  };
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
        if (!(open = co_await push_ready())) break;
        continue;
      }
    }
    if (!item) break;  // closed and drained, or aborted
    if (item->batch) {
      // The batch stays counted in the sink's buffer until every request carrying it reached a
      // final status: `buffer.max_bytes` bounds all the data this sink holds, not only what
      // waits in its queue (bench/run file-to-hec: peak RSS 54.5 -> see the commit message).
      struct Held {
        BatchPtr batch;
        std::shared_ptr<void> lease;
      };
      size_t bytes = item->batch->byte_size();
      auto held = std::make_shared<Held>(Held{std::move(item->batch), in.lease(bytes)});
      item->batch = BatchPtr(held, held->batch.get());
    }
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
    if (!(open = co_await push_ready())) break;
  }
  if (open) {
    builder.flush(ready);
    co_await push_ready();
  }
  st->queue.close();
  // Wait for the senders and pollers: they return once every request is final, or on abort.
  for (;;) {
    {
      std::lock_guard lk(st->mu);
      if (st->running == 0) break;
    }
    co_await st->wq.wait(st->mu, [&] { return st->running == 0; },
                         std::chrono::milliseconds(200));
    std::lock_guard lk(st->mu);
    if (st->running > 0 && st->queue.alive() == 0) st->finished.request_stop();  // wake pollers
  }
  st->finished.request_stop();
  // Requests still waiting for an ack (abort) report kErrored when destroyed here.
  for (auto& ep : st->endpoints) {
    auto left = ep->take_all_pending();
    for (auto& r : left) add_pending_bytes(*st, -static_cast<int64_t>(r.body.size()));
    ep->service().shutdown();
  }
  std::lock_guard lk(st->mu);
  st->sink = nullptr;
  st->endpoints.clear();  // HTTP clients go away while the loop still runs
}

void HecSink::add_pending_bytes(RunState& st, int64_t delta) {
  int64_t v = st.pending_bytes.fetch_add(delta) + delta;
  pending_ack_bytes_.set(v);
  if (delta < 0) st.queue.notify();  // senders waiting for room
}

namespace {
struct RunningGuard {
  std::mutex* mu;
  WaitQueue* wq;
  int* running;
  ~RunningGuard() {
    std::lock_guard lk(*mu);
    --*running;
    wq->notify_all();
  }
};
}  // namespace

awaitable<void> HecSink::sender(std::shared_ptr<RunState> st, HecEndpoint* ep) {
  RunningGuard guard{&st->mu, &st->wq, &st->running};
  HecSink* self = st->sink;
  for (;;) {
    if (!co_await self->wait_usable(*st, *ep)) break;
    // At max_pending_bytes of unacknowledged requests, stop sending (backpressure).
    while (self->cfg_.acks_enabled &&
           st->pending_bytes.load() >= static_cast<int64_t>(self->cfg_.acks_max_pending_bytes) &&
           !st->queue.aborted())
      co_await st->queue.wait_change(std::chrono::milliseconds(100));
    std::optional<HecRequest> req = co_await st->queue.pop();
    if (!req) break;
    co_await self->handle(*st, *ep, std::move(*req));
  }
}

awaitable<bool> HecSink::wait_usable(RunState& st, HecEndpoint& ep) {
  for (;;) {
    if (st.queue.aborted()) co_return false;
    HecEndpoint::Gate g = ep.gate();
    if (g.open && !g.probe) co_return true;
    if (g.open && g.probe) {
      HecHealth h = co_await ep.service().health();
      ep.probe_done(h);
      if (h.status != 200 && h.status != 404 && h.status != 400 && h.status != 401 &&
          h.status != 403)
        report_error(m_, "health", h.status ? fmt::format("http_{}", h.status) : "connection",
                     fmt::format("HEC endpoint {} is not healthy ({}{}); not sending to it",
                                 ep.url(), h.status ? fmt::format("HTTP {}", h.status) : h.text,
                                 h.code >= 0 ? fmt::format(", code {}", h.code) : ""));
      continue;
    }
    // Closed: sleep until it may open (woken early by queue changes; re-checked every 250ms so a
    // token re-read by SIGHUP is noticed).
    auto wait = std::min<WaitQueue::Duration>(g.wait, std::chrono::milliseconds(250));
    co_await st.queue.wait_change(wait);
    if (st.abort->stopping()) co_return false;
  }
}

void HecSink::delivered(RunState& st, HecRequest& req) {
  m_.sent_events.inc(req.events);
  m_.sent_bytes.inc(req.event_bytes);
  req.finish(DeliveryStatus::kDelivered);
  st.queue.finished();
}

void HecSink::delivered_parts(RunState&, std::vector<HecRequestPart>& parts) {
  m_.sent_events.inc(count_events(parts));
  m_.sent_bytes.inc(count_event_bytes(parts));
  finish_parts(parts, DeliveryStatus::kDelivered);
}

void HecSink::resend_parts(RunState& st, std::vector<HecRequestPart>&& parts) {
  if (parts.empty()) return;
  std::vector<HecRequest> rebuilt;
  {
    std::lock_guard lk(st.rebuild_mu);
    st.rebuilder->rebuild(std::move(parts), rebuilt);
  }
  for (auto& r : rebuilt) st.queue.push_derived(std::move(r));
}

void HecSink::dead_letter(RunState&, std::vector<HecRequestPart>& parts, const HecResult& r,
                          const std::string& endpoint) {
  if (parts.empty()) return;
  HecRequest holder;
  holder.parts = std::move(parts);
  size_t events = count_events(holder.parts);
  HecEncoder enc(cfg_);
  std::string lines;
  HecDeadLetter::format(lines, enc, holder, endpoint, r.status, r.describe());
  std::string err = dead_letter_.write(lines);
  if (!err.empty()) {
    report_error(m_, "dead_letter", "write",
                 fmt::format("HEC refused {} events ({}) and they could not be dead-lettered: {}",
                             events, r.describe(), err));
    holder.finish(DeliveryStatus::kErrored);  // the checkpoint holds: read again on restart
    return;
  }
  report_error(m_, "send", r.error,
               fmt::format("HEC refused {} event(s) ({}); written to {}", events, r.describe(),
                           dead_letter_.path()));
  m_.dropped("dead_letter").inc(events);
  holder.finish(DeliveryStatus::kDeadLettered);
}

awaitable<void> HecSink::handle(RunState& st, HecEndpoint& ep, HecRequest req) {
  in_flight_.add(1);
  HecResult r = co_await ep.service().send(req);
  in_flight_.add(-1);
  ep.count_request(r.status, r.seconds);

  switch (r.outcome) {
    case HecOutcome::kDelivered: {
      ep.on_success(r);
      if (cfg_.acks_enabled && !ep.acks_off()) {
        if (r.ack_id) {
          add_pending_bytes(st, static_cast<int64_t>(req.body.size()));
          ep.add_pending(*r.ack_id, std::move(req));
          pending_acks_.add(1);
          co_return;
        }
        ep.set_acks_off();
        if (!logged_no_ack_.exchange(true))
          spdlog::info("[{}] {} answered without ackId (indexer acknowledgement is off for the "
                       "token): a 2xx counts as delivered",
                       ctx_.id, ep.url());
      }
      delivered(st, req);
      co_return;
    }
    case HecOutcome::kRetry: {
      auto d = ep.on_failure(r, HecEndpoint::Block::kBackoff);
      report_error(m_, "send", r.error,
                   fmt::format("HEC request to {} failed ({}); keeping {} events, endpoint backs "
                               "off {}",
                               ep.url(), r.describe(), req.events, format_duration(d)));
      st.queue.push_retry(std::move(req));
      co_return;
    }
    case HecOutcome::kAuth: {
      auto d = ep.on_failure(r, HecEndpoint::Block::kAuth);
      report_error(m_, "send", r.error,
                   fmt::format("HEC endpoint {} refused the token or path ({}); keeping the data, "
                               "retrying in {} (or at once after SIGHUP re-reads token_file)",
                               ep.url(), r.describe(), format_duration(d)));
      st.queue.push_retry(std::move(req));
      co_return;
    }
    case HecOutcome::kReject:
      break;
  }
  // 4xx other than auth: HEC.md §1.4, §1.7, §2.4.
  if (r.status == 400 && (r.code == 10 || r.code == 11 || r.code == 16)) {
    auto d = ep.on_failure(r, HecEndpoint::Block::kConfig);
    report_error(m_, "send", fmt::format("hec_code_{}", r.code),
                 fmt::format("HEC endpoint {} reports a configuration error ({}); not sending to "
                             "it, keeping the data, retrying in {}",
                             ep.url(), r.describe(), format_duration(d)));
    st.queue.push_retry(std::move(req));
    co_return;
  }
  ep.on_success(r);  // the endpoint answered: it is reachable
  if (r.status == 413 && req.events > 1) {
    size_t half = req.events / 2;
    splits_.inc();
    report_error(m_, "send", r.error,
                 fmt::format("HEC endpoint {} refused a {} request as too large ({}); splitting "
                             "it in two",
                             ep.url(), format_size(req.uncompressed_bytes), r.describe()));
    HecRequestSplit s = split_request(std::move(req), half, half);
    resend_parts(st, std::move(s.head));
    resend_parts(st, std::move(s.tail));
    st.queue.finished();
    co_return;
  }
  bool event_target = cfg_.target == HecSinkConfig::Target::kEvent;
  if (r.status == 400 && event_target && r.invalid_event_number &&
      *r.invalid_event_number >= 0 && static_cast<size_t>(*r.invalid_event_number) < req.events) {
    // Splunk indexed the events before i; event i is bad; the rest was not indexed.
    size_t i = static_cast<size_t>(*r.invalid_event_number);
    splits_.inc();
    HecRequestSplit s = split_request(std::move(req), i, i + 1);
    delivered_parts(st, s.head);
    dead_letter(st, s.mid, r, ep.url());
    resend_parts(st, std::move(s.tail));
    st.queue.finished();
    co_return;
  }
  // Refused for good (400 without invalid-event-number, 413 for one event, other 4xx).
  dead_letter(st, req.parts, r, ep.url());
  st.queue.finished();
}

awaitable<void> HecSink::ack_poller(std::shared_ptr<RunState> st, HecEndpoint* ep) {
  RunningGuard guard{&st->mu, &st->wq, &st->running};
  HecSink* self = st->sink;
  const auto interval = self->cfg_.acks_poll_interval;
  const auto timeout = std::chrono::duration_cast<HecEndpoint::Clock::duration>(self->cfg_.acks_timeout);
  for (;;) {
    bool finished = co_await st->finished.sleep(interval);
    if (st->queue.aborted()) co_return;
    if (finished && ep->pending_count() == 0) co_return;
    std::vector<uint64_t> ids = ep->pending_ids(10000);
    if (!ids.empty()) {
      HecAckPoll p = co_await ep->service().poll_acks(ids);
      if (p.status == 200) {
        for (uint64_t id : p.acked) {
          if (auto req = ep->take_pending(id)) {
            self->add_pending_bytes(*st, -static_cast<int64_t>(req->body.size()));
            self->pending_acks_.add(-1);
            self->delivered(*st, *req);
          }
        }
      } else if (p.status == 400 && p.code == 14) {
        // The token has acknowledgements off: what was accepted with a 2xx is delivered.
        if (!self->logged_acks_off_.exchange(true))
          spdlog::info("[{}] {} answered code 14 (ACK is disabled): a 2xx counts as delivered",
                       self->ctx_.id, ep->url());
        ep->set_acks_off();
        for (auto& req : ep->take_all_pending()) {
          self->add_pending_bytes(*st, -static_cast<int64_t>(req.body.size()));
          self->pending_acks_.add(-1);
          self->delivered(*st, req);
        }
      } else {
        report_error(self->m_, "ack",
                     p.status ? fmt::format("http_{}", p.status) : std::string("connection"),
                     fmt::format("acknowledgement poll to {} failed: {}", ep->url(), p.error));
      }
    }
    // Unconfirmed after acknowledgements.timeout: resend (the first copy may be indexed: a
    // possible duplicate, counted).
    for (auto& req : ep->take_expired(timeout)) {
      self->add_pending_bytes(*st, -static_cast<int64_t>(req.body.size()));
      self->pending_acks_.add(-1);
      self->ack_timeouts_.inc();
      self->resent_events_.inc(req.events);
      report_error(self->m_, "ack", "timeout",
                   fmt::format("no acknowledgement from {} within {} for {} events; resending "
                               "them (possible duplicates)",
                               ep->url(), format_duration(self->cfg_.acks_timeout), req.events));
      st->queue.push_retry(std::move(req));
    }
  }
}

awaitable<void> HecSink::abort_watch(std::shared_ptr<RunState> st) {
  // Polls the runtime's abort; sleeps on our own `finished` so that run() wakes it at the end.
  for (;;) {
    bool finished = co_await st->finished.sleep(std::chrono::milliseconds(100));
    if (finished) co_return;
    if (st->abort->stopping()) {
      st->queue.abort();
      std::lock_guard lk(st->mu);
      for (auto& ep : st->endpoints) ep->service().shutdown();  // in-flight requests fail now
      co_return;
    }
  }
}

}  // namespace logship
