#pragma once
// AwsClient: HttpClient + CredentialProvider + SigV4 signing + the AWS retry rules.
#include <atomic>
#include <chrono>
#include <functional>
#include <mutex>
#include <optional>
#include <random>
#include <string>

#include "agent/aws/credentials.h"
#include "agent/aws/sigv4.h"
#include "agent/core/asio.h"
#include "agent/net/http_client.h"

namespace logship {
class Lifecycle;
}

namespace logship::aws {

/// An error answer of an AWS service. Contains no request data (no header, no secret).
struct AwsError {
  long status = 0;   ///< HTTP status (0: transport error, then `message` is the curl text)
  std::string code;  ///< "NoSuchKey", "SlowDown", "ThrottlingException", …
  std::string message;
  std::string request_id;
  /// "AccessDenied: Access Denied (HTTP 403, request id X)".
  std::string to_string() const;
};

/// Parses an error response: S3 XML <Error><Code/><Message/><RequestId/></Error>, STS
/// <ErrorResponse><Error>…, or JSON {"__type":"…#Code","message":"…"} (SQS, KMS). Bodiless
/// answers (HEAD) get a code from the status ("NotFound", "Forbidden", …). nullopt for 1xx-3xx.
std::optional<AwsError> parse_aws_error(const HttpResponse& resp);

/// Whether an error is worth retrying (throttling, 5xx, timeouts, transport errors).
bool retryable(const AwsError& e);

/// Options of one AwsClient::send().
struct SendOptions {
  std::string service;  ///< SigV4 service: "s3", "sqs", "kms", "sts"
  std::string region;
  bool unsigned_payload = false;  ///< S3: x-amz-content-sha256 UNSIGNED-PAYLOAD
  int max_attempts = 5;           ///< including the first; skew/expired-token retries are extra
  std::chrono::milliseconds base_backoff{100};  ///< full jitter: U(0, min(max, base·2^n))
  std::chrono::milliseconds max_backoff{20000};
  /// Checked before every retry; true = give up and return the last response.
  std::function<bool()> cancelled;
  /// When set, backoff sleeps end early on stop (and the last response is returned).
  Lifecycle* lifecycle = nullptr;
};

/// Sends signed requests with retries. Guarantees: every attempt is signed afresh with current
/// credentials and the corrected clock; retryable failures are retried with exponential backoff
/// and full jitter up to max_attempts; RequestTimeTooSkewed corrects the clock offset from the
/// response's Date header (kept for all later requests) and retries once at once; ExpiredToken
/// invalidates the credentials and retries once at once; other errors (AccessDenied, NoSuchKey,
/// SignatureDoesNotMatch, …) are returned at once. Thread-safe; `http` and `creds` must outlive
/// the client.
class AwsClient {
 public:
  AwsClient(HttpClient& http, CredentialProvider& creds,
            std::function<std::chrono::system_clock::time_point()> now = {});

  /// The final response (2xx, a non-retryable error, or the last failed attempt). Never throws
  /// for HTTP or transport errors; throws std::runtime_error when no credentials can be had.
  awaitable<HttpResponse> send(HttpRequest req, const SendOptions& opts);

  /// Current correction added to the local clock when signing.
  std::chrono::seconds clock_offset() const {
    return std::chrono::seconds(clock_offset_s_.load(std::memory_order_relaxed));
  }
  /// Number of HTTP attempts made (for tests and metrics).
  uint64_t attempts() const { return attempts_.load(std::memory_order_relaxed); }

 private:
  std::chrono::system_clock::time_point now() const;
  std::chrono::milliseconds backoff(const SendOptions& o, int retry);

  HttpClient& http_;
  CredentialProvider& creds_;
  std::function<std::chrono::system_clock::time_point()> now_;
  std::atomic<int64_t> clock_offset_s_{0};
  std::atomic<uint64_t> attempts_{0};
  std::mutex rng_mu_;
  std::mt19937_64 rng_;
};

/// AwsClient::send, with "no credentials" (an exception there) turned into a failed response
/// (status 0, the reason in `error`) like a transport failure: for callers that map responses.
awaitable<HttpResponse> send_or_fail(AwsClient& client, HttpRequest req, const SendOptions& opts);

}  // namespace logship::aws
