// `set`: metadata (index, sourcetype, host, source), indexed fields (`fields.<name>`) and JSON
// fields of the event (`event.<path>`) from templates, and `remove` of JSON fields. An
// `event.*` or `remove` step on an event that is not a JSON object leaves it as it is (counted:
// errors_total{stage="transform",error="not_json_object"}).
#include <memory>
#include <unordered_map>

#include <fmt/format.h>

#include "agent/config/config.h"
#include "agent/core/json_escape.h"
#include "agent/observe/metrics.h"
#include "agent/pipeline/registry.h"
#include "agent/transform/batch_builder.h"
#include "agent/transform/config_util.h"
#include "agent/transform/json_edit.h"

namespace logship {
namespace {

struct SetConfig {
  std::optional<transform::Template> index, sourcetype, host, source;
  std::vector<std::pair<std::string, transform::Template>> fields;
  std::vector<std::pair<transform::FieldPath, transform::Template>> event;
  std::vector<transform::FieldPath> remove;
};

class SetTransform final : public Transform {
 public:
  SetTransform(SetConfig c, const ComponentContext& ctx)
      : c_(std::move(c)), metrics_(ctx.id, ctx.type, "transform") {}

  void apply(const BatchPtr& in, std::vector<BatchPtr>& out) override {
    const EventBatch& b = *in;
    transform::BatchBuilder bb(b);
    std::unordered_map<std::string, uint16_t> interned;
    auto intern = [&](const std::string& s) -> uint16_t {
      auto it = interned.find(s);
      if (it != interned.end()) return it->second;
      uint16_t id = bb.intern(s);
      interned.emplace(s, id);
      return id;
    };
    std::string text, next, fields, fnext;
    size_t not_object = 0;
    for (const Event& e : b.events()) {
      transform::EventView v(b, e, scratch_);
      text.assign(b.text(e));
      bool edited = false;
      if (!c_.event.empty() || !c_.remove.empty()) {
        if (is_object(text) &&
            transform::json_for_each_scalar(text, [](transform::Span, bool) {})) {
          for (const auto& [path, tpl] : c_.event) {
            std::string val;
            json_quote_append(val, tpl.render(v));
            if (transform::json_set(text, path, val, next)) text.swap(next);
          }
          for (const auto& path : c_.remove)
            if (transform::json_remove(text, path, next)) text.swap(next);
          edited = true;
        } else {
          ++not_object;
        }
      }
      fields.assign(b.fields(e));
      for (const auto& [name, tpl] : c_.fields) {
        if (fields.empty()) fields = "{}";
        std::string val;
        json_quote_append(val, tpl.render(v));
        transform::FieldPath p;
        p.steps.push_back({name, 0, false});
        if (transform::json_set(fields, p, val, fnext)) fields.swap(fnext);
      }
      std::string_view tv = text, fv = fields;
      Event& n = bb.add(e, edited ? &tv : nullptr, c_.fields.empty() ? nullptr : &fv);
      if (edited) n.flags |= Event::kJsonValue;
      if (c_.index) n.index = intern(c_.index->render(v));
      if (c_.sourcetype) n.sourcetype = intern(c_.sourcetype->render(v));
      if (c_.host) n.host = intern(c_.host->render(v));
      if (c_.source) n.source = intern(c_.source->render(v));
    }
    if (not_object)
      report_error(metrics_, "transform", "not_json_object",
                   fmt::format("{} event(s) are not JSON objects: their event.* and remove steps "
                               "were skipped",
                               not_object),
                   not_object);
    out[0] = bb.finish();
  }

 private:
  static bool is_object(std::string_view t) {
    for (char c : t) {
      if (c == ' ' || c == '\t' || c == '\r' || c == '\n') continue;
      return c == '{';
    }
    return false;
  }
  SetConfig c_;
  ComponentMetrics metrics_;
  transform::JsonScratch scratch_;
};

}  // namespace

void register_transforms_set(Registry& r) {
  r.add_transform(
      "set", [](ConfigNode& cfg, const ComponentContext& ctx) -> std::unique_ptr<Transform> {
        SetConfig c;
        c.index = transform::read_template(cfg, "index");
        c.sourcetype = transform::read_template(cfg, "sourcetype");
        c.host = transform::read_template(cfg, "host");
        c.source = transform::read_template(cfg, "source");
        if (auto f = cfg.map("fields")) {
          for (const auto& kv : f->raw()) {
            std::string name = kv.first.Scalar();
            if (auto t = transform::read_template(*f, name))
              c.fields.emplace_back(name, std::move(*t));
          }
          f->finish();
        }
        if (auto ev = cfg.map("event")) {
          for (const auto& kv : ev->raw()) {
            std::string name = kv.first.Scalar();
            std::string path_text = name.empty() || name[0] != '.' ? "." + name : name;
            transform::FieldPath p;
            std::string err;
            size_t n = transform::parse_field_path(path_text, p, err);
            if (n != path_text.size() || p.steps.empty()) {
              ev->error(name,
                        fmt::format("invalid field path \"{}\"; expected `a.b` or `.a.b`", name));
              ev->touch(name);
              continue;
            }
            if (auto t = transform::read_template(*ev, name))
              c.event.emplace_back(std::move(p), std::move(*t));
          }
          ev->finish();
        }
        if (cfg.has("remove")) {
          auto list = cfg.list("remove");
          for (const auto& s : list) {
            transform::FieldPath p;
            std::string err;
            size_t n = transform::parse_field_path(s, p, err);
            if (n != s.size() || p.steps.empty() || p.steps.back().is_index)
              cfg.error("remove",
                        fmt::format("invalid field path \"{}\" in remove; expected `.a.b`", s));
            else
              c.remove.push_back(std::move(p));
          }
        }
        if (!c.index && !c.sourcetype && !c.host && !c.source && c.fields.empty() &&
            c.event.empty() && c.remove.empty())
          cfg.error("type",
                    "a set transform needs at least one of index, sourcetype, host, source, "
                    "fields, event, remove");
        cfg.throw_if_errors();
        return std::make_unique<SetTransform>(std::move(c), ctx);
      });
}

}  // namespace logship
