#pragma once
// AWS Signature Version 4 (header signing and query presigning) over logship::HttpRequest.
//
// URLs are wire URLs: the path and query are already percent-encoded as they will be sent (build
// S3 object paths with uri_encode(key, false)). The signer decodes and re-encodes them into the
// canonical form, so "%7e" and "~" sign alike.
#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "agent/net/http_client.h"

namespace logship::aws {

/// AWS credentials. Deliberately has no stream operator or formatter: the secret and the session
/// token must never reach a log line or an error message; log `provider` instead.
struct Credentials {
  std::string access_key_id;
  std::string secret_access_key;
  std::string session_token;                                        ///< empty for long-term keys
  std::optional<std::chrono::system_clock::time_point> expiration;  ///< unset = never expires
  std::string provider;  ///< "environment", "profile:x", "imds", … (for log messages)
  bool empty() const { return access_key_id.empty() || secret_access_key.empty(); }
};

/// What to sign with, besides credentials.
struct SigningParams {
  std::string region;   ///< e.g. "us-east-1"
  std::string service;  ///< "s3" selects S3 rules (single path encoding, no normalisation)
  std::chrono::system_clock::time_point time;
  /// Payload hash "UNSIGNED-PAYLOAD" instead of hex(sha256(body)).
  bool unsigned_payload = false;
  /// Add the x-amz-content-sha256 header; unset = only for service "s3".
  std::optional<bool> content_sha256_header;
};

/// The intermediate and final products of one signature (for tests and debugging; contains no
/// secret, but the canonical request holds header values such as the session token).
struct SigningResult {
  std::string canonical_request;
  std::string string_to_sign;
  std::string signed_headers;  ///< "host;x-amz-date"
  std::string signature;       ///< hex
  std::string authorization;   ///< value of the Authorization header
};

/// Signs `req` in place: replaces/adds x-amz-date, x-amz-security-token (when the credentials
/// carry a session token), x-amz-content-sha256 (S3, unless the caller set it: its value is then
/// used as the payload hash) and Authorization. `host` comes from a Host header if the request
/// has one, else from the URL (with a non-default port). Every other request header is signed
/// except user-agent, expect and x-amzn-trace-id.
SigningResult sign_request(HttpRequest& req, const Credentials& creds, const SigningParams& p);

/// Returns `req.url` with the X-Amz-* presigning query parameters appended (valid for
/// `expires`, at most 7 days). Signed headers: host plus the request's own headers. The payload
/// hash is UNSIGNED-PAYLOAD for S3, else the body's hash. `result` receives the pieces.
std::string presign_url(const HttpRequest& req, const Credentials& creds, const SigningParams& p,
                        std::chrono::seconds expires, SigningResult* result = nullptr);

// ---- building blocks (exposed for the clients and tests) ------------------------------------

/// hex(sha256(data)), lower case.
std::string sha256_hex(std::string_view data);
/// Raw 32-byte HMAC-SHA256.
std::string hmac_sha256(std::string_view key, std::string_view data);
/// Lower-case hex of raw bytes.
std::string hex_encode(std::string_view bytes);
/// RFC 3986 encoding: A-Za-z0-9-._~ kept, everything else %XX (upper case); '/' kept when
/// `encode_slash` is false (S3 object keys in paths).
std::string uri_encode(std::string_view s, bool encode_slash = true);
/// Decodes %XX escapes (invalid escapes are kept as is); '+' stays '+'.
std::string percent_decode(std::string_view s);
/// Canonical URI of a wire path: S3 = each segment decoded then encoded once, never normalised;
/// other services = '.', '..' and empty segments removed, then each segment encoded again.
std::string canonical_uri(std::string_view wire_path, bool s3);
/// Canonical query string of a wire query (without '?'): decoded, encoded, sorted by name then
/// value; "a" becomes "a=".
std::string canonical_query(std::string_view wire_query);
/// "20150830T123600Z".
std::string amz_date(std::chrono::system_clock::time_point t);

/// The parts of a URL the signer needs. `host` is the Host header value (port kept only when not
/// the scheme's default), `path` and `query` are raw wire text ("/" if the path is empty).
struct UrlParts {
  std::string scheme;
  std::string host;      ///< host[:port], IPv6 in brackets
  std::string hostname;  ///< without port and brackets
  std::string path;
  std::string query;  ///< without '?', fragment dropped
};
/// Splits an absolute URL; throws std::invalid_argument when it has no scheme or host.
UrlParts parse_url(std::string_view url);

}  // namespace logship::aws
