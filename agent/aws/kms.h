#pragma once
// AWS KMS client (AWS JSON 1.1, SigV4 service "kms"): Decrypt and GenerateDataKey, for the data
// keys of client-side encrypted S3 objects and of the encrypted disk buffer.
//
// Guarantees: requests go through AwsClient (signed afresh per attempt; throttling, 5xx and
// transport errors retried with backoff); plaintext keys are held in KeyBytes, which zeroes its
// memory when destroyed, and never appear in a log, an error or a metric; every error names the
// key and the object it was for, in words an operator can act on.
#include <atomic>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "agent/aws/client.h"
#include "agent/core/asio.h"

namespace logship::aws {

/// Key material in memory: copied only explicitly, zeroed (OPENSSL_cleanse) when destroyed.
class KeyBytes {
 public:
  KeyBytes() = default;
  explicit KeyBytes(std::string v) : v_(std::move(v)) {}
  KeyBytes(const KeyBytes&) = delete;
  KeyBytes& operator=(const KeyBytes&) = delete;
  KeyBytes(KeyBytes&& o) noexcept : v_(std::move(o.v_)) { o.wipe(); }
  KeyBytes& operator=(KeyBytes&& o) noexcept;
  ~KeyBytes() { wipe(); }
  const std::string& bytes() const { return v_; }
  size_t size() const { return v_.size(); }
  KeyBytes copy() const { return KeyBytes(v_); }

 private:
  void wipe();
  std::string v_;
};

/// KMS encryption context: sorted names -> values (sent as a JSON object).
using EncryptionContext = std::map<std::string, std::string>;

struct KmsError {
  enum class Kind {
    kAccessDenied,       ///< AccessDeniedException: IAM or key policy
    kInvalidCiphertext,  ///< wrong key or encryption context, or a damaged blob
    kIncorrectKey,       ///< the blob was wrapped by another key than the one named
    kKeyUnusable,        ///< disabled, pending deletion, not found
    kThrottled,          ///< still throttled after the retries
    kTransport,          ///< no answer (connection, timeout) after the retries
    kOther,
  };
  Kind kind = Kind::kOther;
  std::string code;     ///< KMS's error type ("AccessDeniedException"), "" for transport errors
  std::string message;  ///< complete and actionable; holds no key material and no credential
};

struct KmsDecrypted {
  KeyBytes plaintext;
  std::string key_id;  ///< the ARN KMS reports
};

struct KmsDataKey {
  KeyBytes plaintext;
  std::string ciphertext_blob;  ///< binary (not base64)
  std::string key_id;
};

template <class T>
struct KmsResult {
  std::optional<T> value;
  std::optional<KmsError> error;
  bool ok() const { return value.has_value(); }
};

class KmsClient {
 public:
  /// `endpoint`: resolve_endpoint("kms", configured, region). `lifecycle` may be null.
  KmsClient(AwsClient& client, std::string endpoint, std::string region,
            Lifecycle* lifecycle = nullptr);

  /// Decrypt of a wrapped key. `key_id` is sent when not empty (KMS then refuses a blob of
  /// another key); `what` names the object the key is for ("s3://bucket/key") in messages.
  awaitable<KmsResult<KmsDecrypted>> decrypt(std::string_view blob, const EncryptionContext& ctx,
                                             std::string_view key_id, std::string_view what);
  /// GenerateDataKey with KeySpec AES_256.
  awaitable<KmsResult<KmsDataKey>> generate_data_key(std::string_view key_id,
                                                     const EncryptionContext& ctx,
                                                     std::string_view what);

  const std::string& endpoint() const { return endpoint_; }
  uint64_t calls() const { return calls_.load(std::memory_order_relaxed); }

  /// The request body of Decrypt (exposed for tests).
  static std::string decrypt_body(std::string_view blob, const EncryptionContext& ctx,
                                  std::string_view key_id);

 private:
  awaitable<HttpResponse> call(std::string_view target, std::string body);
  KmsError explain(const HttpResponse& r, std::string_view op, std::string_view key_id,
                   std::string_view what) const;

  AwsClient& client_;
  std::string endpoint_, region_;
  Lifecycle* lifecycle_;
  std::atomic<uint64_t> calls_{0};
};

}  // namespace logship::aws
