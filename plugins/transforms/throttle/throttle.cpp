// `throttle`: at most `threshold` events per key and `window` (fixed windows that start at a
// key's first event); the excess is dropped and counted. State is one entry per key seen in
// the last window: entries idle for a whole window are evicted, and beyond 1,000,000 live keys
// new keys share one overflow entry (the strictest outcome, never unbounded memory).
#include <chrono>
#include <memory>
#include <unordered_map>

#include "agent/config/config.h"
#include "agent/observe/metrics.h"
#include "agent/pipeline/registry.h"
#include "agent/transform/batch_builder.h"
#include "agent/transform/config_util.h"

namespace logship {
namespace {

constexpr size_t kMaxKeys = 1'000'000;

class ThrottleTransform final : public Transform {
 public:
  ThrottleTransform(uint64_t threshold, std::chrono::nanoseconds window,
                    std::optional<transform::Template> key,
                    std::unique_ptr<transform::Condition> exempt, const ComponentContext& ctx)
      : threshold_(threshold),
        window_(window),
        key_(std::move(key)),
        exempt_(std::move(exempt)),
        metrics_(ctx.id, ctx.type, "transform"),
        throttled_(metrics_.dropped("throttled")),
        keys_(metrics().gauge("logship_throttle_keys", "Keys tracked by the throttle transform",
                              {{"component_id", ctx.id}})) {}

  void apply(const BatchPtr& in, std::vector<BatchPtr>& out) override {
    const EventBatch& b = *in;
    const auto now = std::chrono::steady_clock::now();
    if (now - last_sweep_ >= window_ || state_.size() > 2 * swept_size_ + 1024) sweep(now);
    keep_.assign(b.size(), 0);
    size_t kept = 0;
    for (size_t i = 0; i < b.size(); ++i) {
      transform::EventView v(b, b.events()[i], scratch_);
      bool k = true;
      if (!exempt_ || !exempt_->eval(v)) {
        std::string key = key_ ? key_->render(v) : std::string();
        auto it = state_.find(key);
        if (it == state_.end()) {
          if (state_.size() >= kMaxKeys) key = kOverflow;
          it = state_.try_emplace(std::move(key), Entry{now, 0}).first;
        }
        Entry& e = it->second;
        if (now - e.start >= window_) e = Entry{now, 0};
        k = e.count < threshold_;
        if (k) ++e.count;
      }
      if (k) {
        keep_[i] = 1;
        ++kept;
      }
    }
    keys_.set(static_cast<int64_t>(state_.size()));
    throttled_.inc(b.size() - kept);
    out[0] = transform::keep_subset(in, keep_, kept);
  }

 private:
  struct Entry {
    std::chrono::steady_clock::time_point start;
    uint64_t count;
  };
  inline static const std::string kOverflow = std::string("\0overflow", 9);
  void sweep(std::chrono::steady_clock::time_point now) {
    for (auto it = state_.begin(); it != state_.end();)
      it = now - it->second.start >= window_ ? state_.erase(it) : std::next(it);
    swept_size_ = state_.size();
    last_sweep_ = now;
  }
  uint64_t threshold_;
  std::chrono::nanoseconds window_;
  std::optional<transform::Template> key_;
  std::unique_ptr<transform::Condition> exempt_;
  ComponentMetrics metrics_;
  Counter& throttled_;
  Gauge& keys_;
  std::unordered_map<std::string, Entry> state_;
  size_t swept_size_ = 0;
  std::chrono::steady_clock::time_point last_sweep_ = std::chrono::steady_clock::now();
  transform::JsonScratch scratch_;
  std::vector<uint8_t> keep_;
};

}  // namespace

void register_transforms_throttle(Registry& r) {
  r.add_transform(
      "throttle", [](ConfigNode& cfg, const ComponentContext& ctx) -> std::unique_ptr<Transform> {
        auto threshold = cfg.integer("threshold", std::nullopt, 1, 1'000'000'000'000);
        auto window = cfg.duration("window", std::nullopt);
        if (window.count() <= 0) cfg.error("window", "window must be positive");
        // `key`: a path (`.user`) or a template (`{{ .user }}-{{ %host }}`).
        std::optional<transform::Template> key;
        if (auto text = cfg.opt_str("key")) {
          std::string t = *text;
          if (!t.empty() && t[0] == '.') {
            if (auto p = transform::read_path(cfg, "key")) t = "{{ " + p->text + " }}";
          }
          transform::Template tpl;
          transform::ParseError err;
          if (transform::Template::parse(t, tpl, err))
            key = std::move(tpl);
          else
            cfg.error_in_value("key", err.offset, "invalid key template: " + err.message);
        }
        auto exempt = transform::read_condition(cfg, "exempt", false);
        cfg.throw_if_errors();
        return std::make_unique<ThrottleTransform>(static_cast<uint64_t>(threshold), window,
                                                   std::move(key), std::move(exempt), ctx);
      });
}

}  // namespace logship
