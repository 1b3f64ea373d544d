#include "plugins/sinks/splunk_hec/endpoint.h"

#include <algorithm>
#include <random>

#include <fmt/format.h>

namespace logship {

HecEndpoint::HecEndpoint(Executor ex, const HecSinkConfig& cfg, std::string url,
                         const std::string& sink_id)
    : url_(std::move(url)),
      cfg_(cfg),
      service_(std::make_unique<HecService>(std::move(ex), cfg, url_, make_hec_channel())),
      healthy_(metrics().gauge("logship_hec_endpoint_healthy",
                               "1 while the HEC endpoint takes requests, 0 while it backs off",
                               {{"component_id", sink_id}, {"endpoint", url_}})),
      duration_(metrics().histogram("logship_hec_endpoint_request_duration_seconds",
                                    "HEC request latency per endpoint (every attempt)",
                                    {{"component_id", sink_id}, {"endpoint", url_}},
                                    {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30})),
      sink_id_(sink_id) {
  healthy_.set(1);
}

void HecEndpoint::count_request(long status, double seconds) {
  duration_.observe(seconds);
  metrics()
      .counter("logship_hec_endpoint_requests_total", "HEC requests per endpoint and HTTP status",
               {{"component_id", sink_id_},
                {"endpoint", url_},
                {"status", status == 0 ? std::string("transport_error") : std::to_string(status)}})
      .inc();
}

namespace {
constexpr std::chrono::seconds kMaxProbeInterval{5};
}  // namespace

HecEndpoint::Gate HecEndpoint::gate() {
  std::lock_guard lk(mu_);
  Gate g;
  auto now = Clock::now();
  bool token_changed =
      block_ == Block::kAuth && SecretStore::instance().generation() != secret_generation_;
  if (now < ready_at_ && !token_changed) {
    g.wait = ready_at_ - now;
    return g;
  }
  if (token_changed) ready_at_ = now;
  if (probe_needed_) {
    if (probing_) {
      g.wait = std::chrono::milliseconds(50);
      return g;
    }
    probing_ = true;
    g.open = true;
    g.probe = true;
    return g;
  }
  g.open = true;
  return g;
}

void HecEndpoint::probe_done(const HecHealth& h) {
  std::lock_guard lk(mu_);
  probing_ = false;
  // 200 = healthy; 400/404 = no usable health endpoint (a proxy, an old Splunk): let a real
  // request decide. 503 (codes 18-20, 23) and transport errors keep the endpoint out.
  bool ok = h.status == 200 || h.status == 400 || h.status == 401 || h.status == 403 ||
            h.status == 404;
  if (ok) {
    probe_needed_ = false;
    return;
  }
  ++failures_;
  ready_at_ = Clock::now() + std::min<Clock::duration>(backoff_locked(nullptr), kMaxProbeInterval);
}

void HecEndpoint::on_success(const HecResult& r) {
  std::lock_guard lk(mu_);
  failures_ = 0;
  block_ = Block::kNone;
  probe_needed_ = false;
  healthy_.set(1);
  if (r.code == 24 || r.code == 25) {
    // Accepted, but Splunk's queues are filling up: pause this endpoint briefly.
    ready_at_ = std::max(ready_at_, Clock::now() + cfg_.retry_initial_backoff);
  }
}

HecEndpoint::Clock::duration HecEndpoint::on_failure(const HecResult& r, Block why) {
  std::lock_guard lk(mu_);
  ++failures_;
  block_ = why;
  healthy_.set(0);
  Clock::duration d = why == Block::kConfig ? Clock::duration(cfg_.retry_max_backoff)
                                            : backoff_locked(&r);
  // A transient failure is followed by a health probe, not by data: probing is a small GET, so
  // the endpoint is probed at least every kMaxProbeInterval and data flows again within seconds
  // of the server's return, however long the outage (bench/run outage: up to 42 s before). A
  // Retry-After from the server is honoured as given.
  if (why == Block::kBackoff && !r.retry_after) d = std::min<Clock::duration>(d, kMaxProbeInterval);
  ready_at_ = std::max(ready_at_, Clock::now() + d);
  probe_needed_ = why == Block::kBackoff;
  if (why == Block::kAuth) secret_generation_ = SecretStore::instance().generation();
  return d;
}

HecEndpoint::Clock::duration HecEndpoint::backoff_locked(const HecResult* r) {
  // Exponential backoff with full jitter between initial and min(max, initial * 2^(n-1)).
  using std::chrono::nanoseconds;
  nanoseconds lo = cfg_.retry_initial_backoff;
  nanoseconds cap = lo;
  for (int i = 1; i < failures_ && cap < cfg_.retry_max_backoff; ++i) cap *= 2;
  cap = std::min(cap, cfg_.retry_max_backoff);
  thread_local std::minstd_rand rng{std::random_device{}()};
  std::uniform_int_distribution<int64_t> dist(lo.count(), std::max(lo.count(), cap.count()));
  nanoseconds d(dist(rng));
  if (r && r->retry_after) d = std::max<nanoseconds>(*r->retry_after, lo);
  return d;
}

bool HecEndpoint::healthy() const {
  std::lock_guard lk(mu_);
  return block_ == Block::kNone;
}

bool HecEndpoint::acks_off() const {
  std::lock_guard lk(mu_);
  return acks_off_;
}

void HecEndpoint::set_acks_off() {
  std::lock_guard lk(mu_);
  acks_off_ = true;
}

void HecEndpoint::add_pending(uint64_t ack_id, HecRequest&& req) {
  std::lock_guard lk(mu_);
  pending_[ack_id] = Pending{std::move(req), Clock::now()};
}

std::vector<uint64_t> HecEndpoint::pending_ids(size_t max) const {
  std::lock_guard lk(mu_);
  std::vector<uint64_t> ids;
  for (auto& [id, p] : pending_) {
    if (ids.size() >= max) break;
    ids.push_back(id);
  }
  return ids;
}

std::optional<HecRequest> HecEndpoint::take_pending(uint64_t ack_id) {
  std::lock_guard lk(mu_);
  auto it = pending_.find(ack_id);
  if (it == pending_.end()) return std::nullopt;
  HecRequest r = std::move(it->second.req);
  pending_.erase(it);
  return r;
}

std::vector<HecRequest> HecEndpoint::take_expired(Clock::duration timeout) {
  std::lock_guard lk(mu_);
  std::vector<HecRequest> out;
  auto now = Clock::now();
  for (auto it = pending_.begin(); it != pending_.end();) {
    if (now - it->second.sent >= timeout) {
      out.push_back(std::move(it->second.req));
      it = pending_.erase(it);
    } else {
      ++it;
    }
  }
  return out;
}

std::vector<HecRequest> HecEndpoint::take_all_pending() {
  std::lock_guard lk(mu_);
  std::vector<HecRequest> out;
  for (auto& [id, p] : pending_) out.push_back(std::move(p.req));
  pending_.clear();
  return out;
}

size_t HecEndpoint::pending_count() const {
  std::lock_guard lk(mu_);
  return pending_.size();
}

}  // namespace logship
