#pragma once
// Decoding of application/x-www-form-urlencoded text (`+` is a space, `%XX` a byte): HEC query
// strings, S3 event notification keys.
#include <string>
#include <string_view>

namespace logship {

/// The hex digit's value, or -1.
int hex_digit_value(char c);

/// `s` with `+` as a space and each `%XX` decoded. A `%` not followed by two hex digits is kept
/// as it is, and `*all_valid` (when given) is set to false.
std::string form_url_decode(std::string_view s, bool* all_valid = nullptr);

}  // namespace logship
