#pragma once
// S3 event notifications as an SQS message body carries them (`mode: sqs`): direct S3 event
// notifications ({"Records":[…]}), the same wrapped by SNS ({"Type":"Notification","Message":
// "<JSON as a string>"}), and EventBridge "Object Created" events; the one-off s3:TestEvent.
// Pure parsing (no I/O), exposed for tests and fuzzing.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace logship::s3 {

/// One object an ObjectCreated event names.
struct NotifiedObject {
  std::string bucket;
  std::string key;  ///< decoded (S3 notifications URL-encode keys, `+` for a space)
  std::string etag;
  std::string sequencer;
  std::string event;  ///< "ObjectCreated:Put", "Object Created", …
  uint64_t size = 0;
  int64_t event_time_ns = 0;  ///< 0 when absent
};

struct Notification {
  enum class Kind {
    kObjects,  ///< events (ObjectCreated ones in `objects`; others counted in `ignored`)
    kTest,     ///< s3:TestEvent, sent once when notifications are configured
    kInvalid,  ///< none of the known shapes: `error` says why
  };
  Kind kind = Kind::kInvalid;
  std::string wrapper;  ///< "s3", "sns" or "eventbridge"
  std::vector<NotifiedObject> objects;
  size_t ignored = 0;  ///< events that are not ObjectCreated (ObjectRemoved, …)
  std::string error;
};

/// Limits: a body of at most 1 MiB (SQS allows 256 KiB), at most 1000 records.
Notification parse_notification(std::string_view body);

/// %XX decoded and `+` as a space (how S3 encodes keys in notifications); nullopt when a `%`
/// is not followed by two hex digits.
std::optional<std::string> decode_notification_key(std::string_view s);

}  // namespace logship::s3
