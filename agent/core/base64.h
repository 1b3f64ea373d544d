#pragma once
// Standard base64 (RFC 4648 §4, with padding), through OpenSSL's EVP block functions.
#include <optional>
#include <string>
#include <string_view>

namespace logship {

std::string base64_encode(std::string_view in);
/// nullopt unless `in` is canonical padded base64 (length a multiple of 4, alphabet only,
/// '=' only as the last one or two characters).
std::optional<std::string> base64_decode(std::string_view in);

}  // namespace logship
