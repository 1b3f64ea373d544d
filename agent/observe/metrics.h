#pragma once
// Counters, gauges and histograms, rendered in Prometheus text format. Metrics are registered
// once (at component construction) and then updated lock-free through stable references.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace logship {

using Labels = std::vector<std::pair<std::string, std::string>>;

class Counter {
 public:
  void inc(uint64_t n = 1) { v_.fetch_add(n, std::memory_order_relaxed); }
  uint64_t value() const { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> v_{0};
};

class Gauge {
 public:
  void set(int64_t v) { v_.store(v, std::memory_order_relaxed); }
  void add(int64_t d) { v_.fetch_add(d, std::memory_order_relaxed); }
  int64_t value() const { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<int64_t> v_{0};
};

class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);
  void observe(double v);
  const std::vector<double>& bounds() const { return bounds_; }
  /// Cumulative counts per bound, then +Inf; sum; count.
  void snapshot(std::vector<uint64_t>& cumulative, double& sum, uint64_t& count) const;

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> counts_;  // bounds_.size() + 1
  std::atomic<uint64_t> sum_micros_{0};
  std::atomic<uint64_t> count_{0};
};

class MetricsRegistry {
 public:
  /// Returns the metric with this name and label set, creating it on first use.
  Counter& counter(std::string_view name, std::string_view help, const Labels& labels = {});
  Gauge& gauge(std::string_view name, std::string_view help, const Labels& labels = {});
  Histogram& histogram(std::string_view name, std::string_view help, const Labels& labels,
                       std::vector<double> bounds);
  std::string render_prometheus() const;
  /// Value of a counter or gauge for tests; -1 when absent.
  double value(std::string_view name, const Labels& labels = {}) const;

 private:
  enum class Kind { kCounter, kGauge, kHistogram };
  struct Family {
    Kind kind;
    std::string help;
    std::map<Labels, std::unique_ptr<Counter>> counters;
    std::map<Labels, std::unique_ptr<Gauge>> gauges;
    std::map<Labels, std::unique_ptr<Histogram>> histograms;
  };
  Family& family(std::string_view name, std::string_view help, Kind kind);
  mutable std::mutex mu_;
  std::map<std::string, Family, std::less<>> families_;
};

/// The process-wide registry served on /metrics.
MetricsRegistry& metrics();

/// The standard per-component metrics, declared once per component.
/// Names: logship_component_{received,sent}_{events,bytes}_total{component_id,component_type,
/// component_kind}, logship_component_errors_total{...,stage,error},
/// logship_component_dropped_events_total{...,reason}.
class ComponentMetrics {
 public:
  ComponentMetrics(std::string id, std::string type, std::string kind);
  const std::string& id() const { return id_; }
  const std::string& type() const { return type_; }
  Counter& received_events;
  Counter& received_bytes;
  Counter& sent_events;
  Counter& sent_bytes;
  /// errors_total{stage,error}; registered lazily (cheap after the first call per pair).
  Counter& errors(std::string_view stage, std::string_view error);
  Counter& dropped(std::string_view reason);
  Labels labels() const;

 private:
  std::string id_, type_, kind_;
};

/// A degraded mode: increments errors_total{stage,error} by `n` and logs (rate-limited: the
/// first time, then at most once a minute per component/stage/error) `message` at warn level.
/// `as_error`: logged at level error (data lost or input held), not warning.
void report_error(ComponentMetrics& m, std::string_view stage, std::string_view error,
                  std::string_view message, uint64_t n = 1, bool as_error = false);
/// Like report_error, but rate-limited per `key` (e.g. a file path): once per `interval` per key,
/// so a problem with one file never hides the same problem with another.
void report_error_for(ComponentMetrics& m, std::string_view stage, std::string_view error,
                      std::string_view key, std::chrono::seconds interval, std::string_view message);

}  // namespace logship
