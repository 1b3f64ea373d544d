#pragma once
// Small, allocation-light edits of JSON text (a transform's output must stay valid JSON): find
// the value at a field path, replace or remove it, set a member (creating objects on the way),
// and visit every string and number token. Hand-written scanners: the input is one event's
// text, already known to be JSON (or rejected as not JSON: every function returns false on
// malformed input and leaves the text alone).
#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

#include "agent/transform/event_view.h"

namespace logship::transform {

struct Span {
  size_t begin = 0;
  size_t end = 0;
};

/// The value at `path` in `doc`: its span, and for an object member the span to erase to
/// remove it (the member with one adjacent comma). False when absent or malformed.
bool json_find(std::string_view doc, const FieldPath& path, Span& value, Span* member = nullptr);
/// Decodes a JSON string token (with its quotes) into `out`. False when malformed.
bool json_decode_string(std::string_view token, std::string& out);
/// `doc` with the member at `path` removed (array elements are not removed). False when absent.
bool json_remove(std::string_view doc, const FieldPath& path, std::string& out);
/// `doc` with the value at `path` set to `json_value` (a JSON text), creating missing object
/// members on the way. False when the root or a step on the way is not an object.
bool json_set(std::string_view doc, const FieldPath& path, std::string_view json_value,
              std::string& out);
/// Calls `fn(span, is_string)` for every string value (not keys) and number token of `doc`, in
/// order. False when malformed (fn may have been called for a prefix).
bool json_for_each_scalar(std::string_view doc,
                          const std::function<void(Span, bool is_string)>& fn);

}  // namespace logship::transform
