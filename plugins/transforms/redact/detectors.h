#pragma once
// Built-in personal-data detectors of the `redact` transform: hand-written single-pass scanners
// (no regex library) over arbitrary bytes. Each detector appends the [begin, end) byte ranges of
// its matches, in increasing order and non-overlapping; matches of different detectors may
// overlap (merging them is the transform's job). The exact rules are documented in detectors.cpp.
#include <cstddef>
#include <optional>
#include <string_view>
#include <vector>

namespace logship::redact {

enum class Detector : unsigned char {
  kEmail,
  kIpv4,
  kIpv6,
  kCreditCard,
  kIban,
  kPhone,
  kAwsAccessKeyId,
  kAwsSecretAccessKey,
  kJwt,
  kBearerToken,
  kUsSsn
};
inline constexpr size_t kDetectorCount = 11;

/// "email", "ipv4", "ipv6", "credit_card", "iban", "phone", "aws_access_key_id",
/// "aws_secret_access_key", "jwt", "bearer_token", "us_ssn"
std::optional<Detector> detector_from_name(std::string_view name);
const char* detector_name(Detector d);

struct Match {
  size_t begin;
  size_t end;
};  // [begin, end) byte offsets into the scanned text

/// Appends the matches of `d` in `text`, in increasing order, non-overlapping.
void find_matches(Detector d, std::string_view text, std::vector<Match>& out);

}  // namespace logship::redact
