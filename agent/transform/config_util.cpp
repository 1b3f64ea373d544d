#include "agent/transform/config_util.h"

#include <fmt/format.h>

namespace logship::transform {

std::unique_ptr<Condition> read_condition(ConfigNode& cfg, std::string_view key, bool required) {
  if (!required && !cfg.has(key)) return nullptr;
  std::string text = cfg.str(key);
  if (cfg.has_error(key)) return nullptr;
  ParseError err;
  auto c = Condition::parse(text, err);
  if (!c) cfg.error_in_value(key, err.offset, fmt::format("invalid condition: {}", err.message));
  return c;
}

std::optional<Template> read_template(ConfigNode& cfg, std::string_view key) {
  auto text = cfg.opt_str(key);
  if (!text) return std::nullopt;
  Template t;
  ParseError err;
  if (!Template::parse(*text, t, err)) {
    cfg.error_in_value(key, err.offset, fmt::format("invalid template: {}", err.message));
    return std::nullopt;
  }
  return t;
}

std::optional<FieldPath> read_path(ConfigNode& cfg, std::string_view key) {
  auto text = cfg.opt_str(key);
  if (!text) return std::nullopt;
  FieldPath p;
  std::string err;
  size_t n = parse_field_path(*text, p, err);
  if (n == 0 || n != text->size() || p.steps.empty()) {
    cfg.error_in_value(key, n,
                       n == 0 ? fmt::format("invalid field path: {}", err)
                              : std::string("invalid field path; expected `.a.b` or `.a[0]`"));
    return std::nullopt;
  }
  return p;
}

}  // namespace logship::transform
