#pragma once
// Amazon SQS client (AWS JSON 1.0, SigV4 service "sqs"): ReceiveMessage (long poll),
// DeleteMessageBatch, ChangeMessageVisibilityBatch and GetQueueAttributes, for the `s3` source's
// `mode: sqs`.
//
// Guarantees: requests go through AwsClient (signed afresh per attempt; throttling, 5xx and
// transport errors retried with backoff); batches are split into requests of at most 10 entries;
// per-entry failures of a batch are returned with their code (ReceiptHandleIsInvalid,
// MessageNotInflight, …) so that the caller can tell a lost receipt from a transient failure;
// error messages name the queue and never hold a credential.
#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "agent/aws/client.h"
#include "agent/core/asio.h"

namespace logship::aws {

struct SqsMessage {
  std::string id;              ///< MessageId
  std::string receipt_handle;  ///< what Delete / ChangeMessageVisibility take
  std::string body;
  int receive_count = 0;  ///< ApproximateReceiveCount (0 when not reported)
  int64_t sent_ms = 0;    ///< SentTimestamp, unix milliseconds (0 when not reported)
};

struct SqsError {
  enum class Kind {
    kAccessDenied,  ///< AccessDenied / AccessDeniedException
    kNoQueue,       ///< QueueDoesNotExist / NonExistentQueue
    kThrottled,     ///< still throttled (or 5xx) after the retries
    kTransport,     ///< no answer after the retries
    kOther,
  };
  Kind kind = Kind::kOther;
  std::string code;
  std::string message;  ///< names the queue and the action
};

/// One entry of a batch: its id (unique within the call), the receipt handle, and for
/// ChangeMessageVisibilityBatch the new timeout.
struct SqsBatchEntry {
  std::string id;
  std::string receipt_handle;
  int visibility_s = 0;
};

/// An entry a batch call could not apply.
struct SqsBatchFailure {
  std::string id;
  std::string code;  ///< "ReceiptHandleIsInvalid", "MessageNotInflight", … ("" transport)
  std::string message;
  bool sender_fault = true;
  /// The receipt handle is no longer valid (the message was received again elsewhere, or its
  /// visibility ran out): retrying with it cannot succeed.
  bool receipt_lost() const;
};

template <class T>
struct SqsResult {
  std::optional<T> value;
  std::optional<SqsError> error;
  bool ok() const { return value.has_value(); }
};

class SqsClient {
 public:
  /// `endpoint`: where requests go (sqs.endpoint, AWS_ENDPOINT_URL_SQS, or the scheme and host of
  /// the queue URL). `lifecycle` may be null.
  SqsClient(AwsClient& client, std::string endpoint, std::string region, std::string queue_url,
            Lifecycle* lifecycle = nullptr);

  /// ReceiveMessage: up to `max` (1–10) messages, waiting up to `wait` (0–20 s) for the first;
  /// received messages are invisible to other consumers for `visibility`.
  awaitable<SqsResult<std::vector<SqsMessage>>> receive(int max, std::chrono::seconds wait,
                                                        std::chrono::seconds visibility);
  /// DeleteMessageBatch (any number of entries: sent 10 at a time). The value lists the entries
  /// that failed; an error means a whole request failed (its entries are in `failed` too).
  awaitable<SqsResult<std::vector<SqsBatchFailure>>> delete_batch(
      const std::vector<SqsBatchEntry>& entries);
  /// ChangeMessageVisibilityBatch, same shape.
  awaitable<SqsResult<std::vector<SqsBatchFailure>>> change_visibility_batch(
      const std::vector<SqsBatchEntry>& entries);
  /// GetQueueAttributes with AttributeNames ["All"].
  awaitable<SqsResult<std::map<std::string, std::string>>> attributes();

  const std::string& queue_url() const { return queue_url_; }
  const std::string& endpoint() const { return endpoint_; }

  /// "us-east-2" from https://sqs.us-east-2.amazonaws.com/… (or the legacy
  /// us-east-2.queue.amazonaws.com); nullopt for other hosts.
  static std::optional<std::string> region_of(std::string_view queue_url);
  /// "https://sqs.us-east-2.amazonaws.com" of a queue URL (its scheme, host and port).
  static std::string endpoint_of(std::string_view queue_url);

  /// Parsers (exposed for tests and fuzzing): nullopt with `err` set when malformed.
  static std::optional<std::vector<SqsMessage>> parse_receive(std::string_view body,
                                                              std::string* err);
  static std::optional<std::vector<SqsBatchFailure>> parse_batch(std::string_view body,
                                                                 std::string* err);

 private:
  awaitable<HttpResponse> call(std::string_view action, std::string body,
                               std::chrono::milliseconds timeout);
  SqsError explain(const HttpResponse& r, std::string_view action) const;
  awaitable<SqsResult<std::vector<SqsBatchFailure>>> batch(std::string_view action,
                                                           const std::vector<SqsBatchEntry>& e,
                                                           bool visibility);

  AwsClient& client_;
  std::string endpoint_, region_, queue_url_;
  Lifecycle* lifecycle_;
};

}  // namespace logship::aws
