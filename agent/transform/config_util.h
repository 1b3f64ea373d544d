#pragma once
// Reading conditions, templates and value references from a transform's configuration: a
// syntax or type error is reported at its token (file:line:col inside the value).
#include <memory>
#include <optional>
#include <string_view>

#include "agent/config/config.h"
#include "agent/transform/condition.h"

namespace logship::transform {

/// The condition at `key` (required unless `required` is false: then nullptr when absent).
/// Nullptr after reporting an error.
std::unique_ptr<Condition> read_condition(ConfigNode& cfg, std::string_view key, bool required);
/// The template at `key`; nullopt when absent or after reporting an error.
std::optional<Template> read_template(ConfigNode& cfg, std::string_view key);
/// A field path (`.a.b`) at `key`; nullopt when absent or after reporting an error.
std::optional<FieldPath> read_path(ConfigNode& cfg, std::string_view key);

}  // namespace logship::transform
