// `sample`: keeps one event in `rate`. Without `key` each event is kept with probability
// 1/rate; with `key` the decision is a hash of the key's value (XXH64, fixed seed), so all the
// events of one key are kept or dropped together, in every process. `exempt` events are kept.
#include <memory>
#include <random>

#include <xxhash.h>

#include "agent/config/config.h"
#include "agent/observe/metrics.h"
#include "agent/pipeline/registry.h"
#include "agent/transform/batch_builder.h"
#include "agent/transform/config_util.h"

namespace logship {
namespace {

class SampleTransform final : public Transform {
 public:
  SampleTransform(uint64_t rate, std::optional<transform::FieldPath> key,
                  std::unique_ptr<transform::Condition> exempt, const ComponentContext& ctx)
      : rate_(rate),
        key_(std::move(key)),
        exempt_(std::move(exempt)),
        metrics_(ctx.id, ctx.type, "transform"),
        sampled_(metrics_.dropped("sampled")),
        rng_(std::random_device{}()) {}

  void apply(const BatchPtr& in, std::vector<BatchPtr>& out) override {
    const EventBatch& b = *in;
    keep_.assign(b.size(), 0);
    size_t kept = 0;
    for (size_t i = 0; i < b.size(); ++i) {
      transform::EventView v(b, b.events()[i], scratch_);
      bool k;
      if (exempt_ && exempt_->eval(v)) {
        k = true;
      } else if (key_) {
        std::string s = v.field(*key_).render();
        k = XXH64(s.data(), s.size(), 0) % rate_ == 0;
      } else {
        k = rng_() % rate_ == 0;
      }
      if (k) {
        keep_[i] = 1;
        ++kept;
      }
    }
    sampled_.inc(b.size() - kept);
    out[0] = transform::keep_subset(in, keep_, kept);
  }

 private:
  uint64_t rate_;
  std::optional<transform::FieldPath> key_;
  std::unique_ptr<transform::Condition> exempt_;
  ComponentMetrics metrics_;
  Counter& sampled_;
  std::mt19937_64 rng_;
  transform::JsonScratch scratch_;
  std::vector<uint8_t> keep_;
};

}  // namespace

void register_transforms_sample(Registry& r) {
  r.add_transform("sample",
                  [](ConfigNode& cfg, const ComponentContext& ctx) -> std::unique_ptr<Transform> {
                    auto rate = cfg.integer("rate", std::nullopt, 1, 1'000'000'000);
                    auto key = transform::read_path(cfg, "key");
                    auto exempt = transform::read_condition(cfg, "exempt", false);
                    cfg.throw_if_errors();
                    return std::make_unique<SampleTransform>(
                        static_cast<uint64_t>(rate), std::move(key), std::move(exempt), ctx);
                  });
}

}  // namespace logship
