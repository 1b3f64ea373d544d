// `route`: each event goes to every route whose condition it matches (`<id>.<name>`), and to
// `<id>._unmatched` when it matches none.
#include <memory>

#include <fmt/format.h>

#include "agent/config/config.h"
#include "agent/pipeline/registry.h"
#include "agent/transform/batch_builder.h"
#include "agent/transform/config_util.h"

namespace logship {
namespace {

class RouteTransform final : public Transform {
 public:
  RouteTransform(std::vector<std::string> names,
                 std::vector<std::unique_ptr<transform::Condition>> conds)
      : names_(std::move(names)), conds_(std::move(conds)) {}

  std::vector<std::string> outputs() const override {
    auto v = names_;
    v.push_back("_unmatched");
    return v;
  }

  void apply(const BatchPtr& in, std::vector<BatchPtr>& out) override {
    const EventBatch& b = *in;
    const size_t routes = conds_.size();
    // match_[i * (routes + 1) + r]: event i goes to output r (the last is _unmatched).
    match_.assign(b.size() * (routes + 1), 0);
    std::vector<size_t> counts(routes + 1, 0);
    for (size_t i = 0; i < b.size(); ++i) {
      transform::EventView v(b, b.events()[i], scratch_);
      bool any = false;
      for (size_t r = 0; r < routes; ++r) {
        if (conds_[r]->eval(v)) {
          match_[i * (routes + 1) + r] = 1;
          ++counts[r];
          any = true;
        }
      }
      if (!any) {
        match_[i * (routes + 1) + routes] = 1;
        ++counts[routes];
      }
    }
    for (size_t r = 0; r <= routes; ++r) {
      if (counts[r] == 0) continue;
      if (counts[r] == b.size()) {
        out[r] = in;
        continue;
      }
      transform::BatchBuilder bb(b);
      for (size_t i = 0; i < b.size(); ++i)
        if (match_[i * (routes + 1) + r]) bb.add(b.events()[i]);
      out[r] = bb.finish();
    }
  }

 private:
  std::vector<std::string> names_;
  std::vector<std::unique_ptr<transform::Condition>> conds_;
  transform::JsonScratch scratch_;
  std::vector<uint8_t> match_;
};

bool valid_route_name(const std::string& n) {
  if (n.empty() || n[0] == '_') return false;
  for (char c : n)
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return false;
  return true;
}

}  // namespace

void register_transforms_route(Registry& r) {
  r.add_transform(
      "route", [](ConfigNode& cfg, const ComponentContext&) -> std::unique_ptr<Transform> {
        auto routes = cfg.map("routes");
        if (!routes) cfg.fail("routes", "routes is required: a map of route name -> condition");
        std::vector<std::string> names;
        std::vector<std::unique_ptr<transform::Condition>> conds;
        for (const auto& kv : routes->raw()) {
          std::string name = kv.first.Scalar();
          if (!valid_route_name(name))
            routes->error(name, fmt::format("invalid route name \"{}\"; expected [a-z0-9_]+ not "
                                            "starting with `_`",
                                            name));
          names.push_back(name);
          conds.push_back(transform::read_condition(*routes, name, true));
        }
        if (names.empty()) cfg.error("routes", "routes is empty; expected at least one route");
        routes->finish();
        cfg.throw_if_errors();
        return std::make_unique<RouteTransform>(std::move(names), std::move(conds));
      });
}

}  // namespace logship
