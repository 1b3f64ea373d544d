#pragma once
// Conditions (filter, route, sample.exempt, throttle.exempt) and the value references and
// templates of set/throttle: parsed and type-checked once at load, evaluated per event.
//
// Grammar (lowest precedence first):
//   expr    := or
//   or      := and ("or" and)*
//   and     := not ("and" not)*
//   not     := "not" not | cmp
//   cmp     := primary (("=="|"!="|"<"|"<="|">"|">=") primary)?
//   primary := "(" expr ")" | func "(" args ")" | .path | %message | %host | %source
//            | %sourcetype | %index | %time | "string" | number | true | false | null
// An absent field compares unequal to everything (`!=` is true) and fails every ordering
// comparison; functions of an absent or non-string value are false (lower() gives absent).
// A field path alone in a boolean position is true when the field is the boolean true.
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "agent/transform/event_view.h"

namespace re2 {
class RE2;
}

namespace logship::transform {

/// A value reference: a field path or one of the %-names.
struct ValueRef {
  enum class Kind : uint8_t { kField, kMessage, kHost, kSource, kSourcetype, kIndex, kTime };
  Kind kind = Kind::kField;
  FieldPath path;
  Value get(EventView& ev) const;
  /// Parses `.path` or `%name` at the start of `s`; returns the characters consumed, 0 with
  /// `error` otherwise.
  static size_t parse(std::string_view s, ValueRef& out, std::string& error);
};

/// Where a parse failed: `offset` characters into the text.
struct ParseError {
  std::string message;
  size_t offset = 0;
};

class Condition {
 public:
  struct Node;
  /// Nullptr with `err` on a syntax or type error.
  static std::unique_ptr<Condition> parse(std::string_view text, ParseError& err);
  ~Condition();
  Condition(Condition&&) noexcept;
  bool eval(EventView& ev) const;
  const std::string& text() const { return text_; }

 private:
  Condition();
  std::string text_;
  std::unique_ptr<Node> root_;
};

/// A template: literal text with `{{ .path }}` / `{{ %host }}` placeholders (an absent value
/// renders as ""). `${VAR}` was interpolated by the config loader already.
class Template {
 public:
  static bool parse(std::string_view text, Template& out, ParseError& err);
  std::string render(EventView& ev) const;
  /// True when the template has no placeholder (its value is the same for every event).
  bool constant() const { return parts_.size() <= 1 && (parts_.empty() || !parts_[0].ref); }
  const std::string& literal() const;

 private:
  struct Part {
    std::string text;
    std::shared_ptr<ValueRef> ref;  ///< null: literal text
  };
  std::vector<Part> parts_;
};

}  // namespace logship::transform
