#pragma once
// JSON string escaping shared by every writer of JSON text (HEC envelopes, checkpoints, parsers'
// indexed fields).
#include <cstddef>
#include <string>
#include <string_view>

namespace logship {

/// Appends `in` to `out` as the contents of a JSON string (without the quotes): escapes `"`, `\`
/// and control characters, passes valid UTF-8 through, and replaces each invalid UTF-8 sequence
/// (maximal subpart: bad lead byte, overlong, surrogate, > U+10FFFF, truncated) by U+FFFD.
/// Returns the number of replacements.
size_t json_escape_append(std::string& out, std::string_view in);

/// Appends `in` as a whole JSON string: the quotes and the escaped contents.
inline void json_quote_append(std::string& out, std::string_view in) {
  out += '"';
  json_escape_append(out, in);
  out += '"';
}

}  // namespace logship
