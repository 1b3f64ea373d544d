// `filter`: keeps the events for which `condition` is true; the others count as delivered for
// their source (dropped, reason "filtered").
#include <memory>

#include "agent/config/config.h"
#include "agent/observe/metrics.h"
#include "agent/pipeline/registry.h"
#include "agent/transform/batch_builder.h"
#include "agent/transform/config_util.h"

namespace logship {
namespace {

class FilterTransform final : public Transform {
 public:
  FilterTransform(std::unique_ptr<transform::Condition> c, const ComponentContext& ctx)
      : cond_(std::move(c)),
        metrics_(ctx.id, ctx.type, "transform"),
        filtered_(metrics_.dropped("filtered")) {}

  void apply(const BatchPtr& in, std::vector<BatchPtr>& out) override {
    const EventBatch& b = *in;
    keep_.assign(b.size(), 0);
    size_t kept = 0;
    for (size_t i = 0; i < b.size(); ++i) {
      transform::EventView v(b, b.events()[i], scratch_);
      if (cond_->eval(v)) {
        keep_[i] = 1;
        ++kept;
      }
    }
    filtered_.inc(b.size() - kept);
    out[0] = transform::keep_subset(in, keep_, kept);
  }

 private:
  std::unique_ptr<transform::Condition> cond_;
  ComponentMetrics metrics_;
  Counter& filtered_;
  transform::JsonScratch scratch_;
  std::vector<uint8_t> keep_;
};

}  // namespace

void register_transforms_filter(Registry& r) {
  r.add_transform("filter",
                  [](ConfigNode& cfg, const ComponentContext& ctx) -> std::unique_ptr<Transform> {
                    auto c = transform::read_condition(cfg, "condition", true);
                    cfg.throw_if_errors();
                    if (!c) cfg.fail("condition", "invalid condition");
                    return std::make_unique<FilterTransform>(std::move(c), ctx);
                  });
}

}  // namespace logship
