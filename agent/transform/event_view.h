#pragma once
// What conditions, templates and transforms read of one event: its text, metadata, time, and
// JSON fields looked up on demand. The event is parsed (simdjson on-demand) at most once, on
// the first field lookup, and only when it is JSON: marked so by its source, or text whose
// first non-space character is `{` or `[`. A field of a non-JSON event is absent.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <simdjson.h>

#include "agent/pipeline/event.h"

namespace logship::transform {

/// A parsed field path: `.a.b[0]` -> {"a", "b", 0}. Stored as a JSON pointer (`/a/b/0`).
struct FieldPath {
  struct Step {
    std::string key;  ///< object member (when !is_index)
    size_t index = 0;
    bool is_index = false;
  };
  std::vector<Step> steps;
  std::string pointer;  ///< RFC 6901 pointer, `~` and `/` escaped
  std::string text;     ///< as written, for messages
};

/// Parses `.a.b`, `.a[0]`, `."key with spaces"`, `.a.b[2].c`. Returns the characters consumed
/// (0 with `error` when `s` does not start with a valid path). A bare `.` is the whole event.
size_t parse_field_path(std::string_view s, FieldPath& out, std::string& error);

/// A value read from an event.
struct Value {
  enum class Kind : uint8_t { kAbsent, kNull, kBool, kNumber, kString, kOther };
  Kind kind = Kind::kAbsent;
  bool b = false;
  double n = 0;
  std::string s;  ///< kString: decoded text; kOther: the raw JSON (an object or array)
  static Value absent() { return {}; }
  static Value string(std::string_view v) {
    Value x;
    x.kind = Kind::kString;
    x.s = v;
    return x;
  }
  static Value number(double v) {
    Value x;
    x.kind = Kind::kNumber;
    x.n = v;
    return x;
  }
  static Value boolean(bool v) {
    Value x;
    x.kind = Kind::kBool;
    x.b = v;
    return x;
  }
  /// The value as template text: strings as is, numbers in their shortest form, booleans
  /// `true`/`false`, null and absent empty, objects/arrays their JSON.
  std::string render() const;
};

/// Per-transform scratch state (one simdjson parser and padded buffer, reused for every event).
class JsonScratch {
 public:
  simdjson::ondemand::parser parser;
  std::string padded;
};

class EventView {
 public:
  EventView(const EventBatch& batch, const Event& event, JsonScratch& scratch)
      : batch_(batch), event_(event), scratch_(scratch) {}
  std::string_view message() const { return batch_.text(event_); }
  std::string_view host() const { return batch_.meta(event_.host); }
  std::string_view source() const { return batch_.meta(event_.source); }
  std::string_view sourcetype() const { return batch_.meta(event_.sourcetype); }
  std::string_view index() const { return batch_.meta(event_.index); }
  double time_seconds() const { return static_cast<double>(event_.time_ns) / 1e9; }
  const Event& event() const { return event_; }
  /// Whether the text may be JSON (cheap; no parse).
  bool maybe_json() const;
  /// The field at `path` (absent when missing, or the event is not JSON).
  Value field(const FieldPath& path);

 private:
  bool parse();
  Value lookup(const FieldPath& path);
  const EventBatch& batch_;
  const Event& event_;
  JsonScratch& scratch_;
  simdjson::ondemand::document doc_;
  std::vector<std::pair<const FieldPath*, Value>> cache_;  ///< this event's lookups, by path
  enum class State : uint8_t { kUnparsed, kParsed, kNotJson } state_ = State::kUnparsed;
};

}  // namespace logship::transform
