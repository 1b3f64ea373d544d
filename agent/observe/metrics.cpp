#include "agent/observe/metrics.h"

#include <cmath>

#include <fmt/format.h>

#include "agent/core/log.h"

namespace logship {

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)), counts_(new std::atomic<uint64_t>[bounds_.size() + 1]) {
  for (size_t i = 0; i <= bounds_.size(); ++i) counts_[i].store(0);
}

void Histogram::observe(double v) {
  size_t i = 0;
  while (i < bounds_.size() && v > bounds_[i]) ++i;
  counts_[i].fetch_add(1, std::memory_order_relaxed);
  sum_micros_.fetch_add(static_cast<uint64_t>(std::llround(std::max(0.0, v) * 1e6)),
                        std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
}

void Histogram::snapshot(std::vector<uint64_t>& cumulative, double& sum, uint64_t& count) const {
  cumulative.assign(bounds_.size() + 1, 0);
  uint64_t acc = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    acc += counts_[i].load(std::memory_order_relaxed);
    cumulative[i] = acc;
  }
  sum = sum_micros_.load(std::memory_order_relaxed) / 1e6;
  count = acc;
}

MetricsRegistry::Family& MetricsRegistry::family(std::string_view name, std::string_view help,
                                                 Kind kind) {
  auto it = families_.find(name);
  if (it == families_.end()) {
    it = families_.emplace(std::string(name), Family{kind, std::string(help), {}, {}, {}}).first;
  }
  return it->second;
}

Counter& MetricsRegistry::counter(std::string_view name, std::string_view help,
                                  const Labels& labels) {
  std::lock_guard lk(mu_);
  auto& f = family(name, help, Kind::kCounter);
  auto& p = f.counters[labels];
  if (!p) p = std::make_unique<Counter>();
  return *p;
}

Gauge& MetricsRegistry::gauge(std::string_view name, std::string_view help, const Labels& labels) {
  std::lock_guard lk(mu_);
  auto& f = family(name, help, Kind::kGauge);
  auto& p = f.gauges[labels];
  if (!p) p = std::make_unique<Gauge>();
  return *p;
}

Histogram& MetricsRegistry::histogram(std::string_view name, std::string_view help,
                                      const Labels& labels, std::vector<double> bounds) {
  std::lock_guard lk(mu_);
  auto& f = family(name, help, Kind::kHistogram);
  auto& p = f.histograms[labels];
  if (!p) p = std::make_unique<Histogram>(std::move(bounds));
  return *p;
}

namespace {
void escape_label(std::string& out, std::string_view v) {
  for (char c : v) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
}
std::string render_labels(const Labels& labels, std::string_view extra_k = {},
                          std::string_view extra_v = {}) {
  if (labels.empty() && extra_k.empty()) return "";
  std::string out = "{";
  bool first = true;
  for (auto& [k, v] : labels) {
    if (!first) out += ',';
    first = false;
    out += k;
    out += "=\"";
    escape_label(out, v);
    out += '"';
  }
  if (!extra_k.empty()) {
    if (!first) out += ',';
    out += extra_k;
    out += "=\"";
    escape_label(out, extra_v);
    out += '"';
  }
  out += '}';
  return out;
}
std::string fmt_double(double v) {
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  return fmt::format("{}", v);
}
}  // namespace

std::string MetricsRegistry::render_prometheus() const {
  std::lock_guard lk(mu_);
  std::string out;
  out.reserve(8192);
  for (auto& [name, f] : families_) {
    const char* type = f.kind == Kind::kCounter ? "counter"
                       : f.kind == Kind::kGauge ? "gauge"
                                                : "histogram";
    out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, f.help, name, type);
    for (auto& [labels, c] : f.counters)
      out += fmt::format("{}{} {}\n", name, render_labels(labels), c->value());
    for (auto& [labels, g] : f.gauges)
      out += fmt::format("{}{} {}\n", name, render_labels(labels), g->value());
    for (auto& [labels, h] : f.histograms) {
      std::vector<uint64_t> cum;
      double sum;
      uint64_t count;
      h->snapshot(cum, sum, count);
      for (size_t i = 0; i <= h->bounds().size(); ++i) {
        std::string le = i < h->bounds().size() ? fmt_double(h->bounds()[i]) : "+Inf";
        out += fmt::format("{}_bucket{} {}\n", name, render_labels(labels, "le", le), cum[i]);
      }
      out += fmt::format("{}_sum{} {}\n", name, render_labels(labels), sum);
      out += fmt::format("{}_count{} {}\n", name, render_labels(labels), count);
    }
  }
  return out;
}

double MetricsRegistry::value(std::string_view name, const Labels& labels) const {
  std::lock_guard lk(mu_);
  auto it = families_.find(name);
  if (it == families_.end()) return -1;
  if (auto c = it->second.counters.find(labels); c != it->second.counters.end())
    return static_cast<double>(c->second->value());
  if (auto g = it->second.gauges.find(labels); g != it->second.gauges.end())
    return static_cast<double>(g->second->value());
  return -1;
}

MetricsRegistry& metrics() {
  static MetricsRegistry r;
  return r;
}

ComponentMetrics::ComponentMetrics(std::string id, std::string type, std::string kind)
    : received_events(metrics().counter("logship_component_received_events_total",
                                        "Events received by the component",
                                        {{"component_id", id},
                                         {"component_kind", kind},
                                         {"component_type", type}})),
      received_bytes(metrics().counter("logship_component_received_bytes_total",
                                       "Bytes of event text received by the component",
                                       {{"component_id", id},
                                        {"component_kind", kind},
                                        {"component_type", type}})),
      sent_events(metrics().counter("logship_component_sent_events_total",
                                    "Events the component delivered downstream",
                                    {{"component_id", id},
                                     {"component_kind", kind},
                                     {"component_type", type}})),
      sent_bytes(metrics().counter("logship_component_sent_bytes_total",
                                   "Bytes of event text the component delivered downstream",
                                   {{"component_id", id},
                                    {"component_kind", kind},
                                    {"component_type", type}})),
      id_(std::move(id)),
      type_(std::move(type)),
      kind_(std::move(kind)) {}

Labels ComponentMetrics::labels() const {
  return {{"component_id", id_}, {"component_kind", kind_}, {"component_type", type_}};
}

Counter& ComponentMetrics::errors(std::string_view stage, std::string_view error) {
  Labels l = labels();
  l.emplace_back("error", std::string(error));
  l.emplace_back("stage", std::string(stage));
  return metrics().counter("logship_component_errors_total", "Errors by stage and kind", l);
}

Counter& ComponentMetrics::dropped(std::string_view reason) {
  Labels l = labels();
  l.emplace_back("reason", std::string(reason));
  return metrics().counter("logship_component_dropped_events_total",
                           "Events dropped on purpose (never silently)", l);
}

void report_error(ComponentMetrics& m, std::string_view stage, std::string_view error,
                  std::string_view message, uint64_t n, bool as_error) {
  m.errors(stage, error).inc(n);
  uint64_t suppressed = 0;
  std::string key = fmt::format("{}/{}/{}", m.id(), stage, error);
  if (log_allowed(key, std::chrono::seconds(60), &suppressed)) {
    auto level = as_error ? spdlog::level::err : spdlog::level::warn;
    if (suppressed)
      spdlog::log(level, "[{}] {} ({} similar since the last report)", m.id(), message,
                  suppressed);
    else
      spdlog::log(level, "[{}] {}", m.id(), message);
  }
}

}  // namespace logship

namespace logship {
void report_error_for(ComponentMetrics& m, std::string_view stage, std::string_view error,
                      std::string_view key, std::chrono::seconds interval, std::string_view message) {
  m.errors(stage, error).inc();
  std::string k = fmt::format("{}/{}/{}/{}", m.id(), stage, error, key);
  if (log_allowed(k, interval, nullptr)) spdlog::warn("[{}] {}", m.id(), message);
}
}  // namespace logship
