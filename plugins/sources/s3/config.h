#pragma once
// `s3` source configuration (CONFIG.md "Source s3"). Parsing is pure: no file or network access
// except reading `*_file` secrets.
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace logship {
class ConfigNode;
class Secret;

struct S3CredentialsConfig {
  std::string access_key_id;
  std::shared_ptr<Secret> secret_access_key;  ///< or secret_access_key_file
  std::shared_ptr<Secret> session_token;      ///< or session_token_file
  std::string profile;
  std::string role_arn;
  bool any() const;
};

/// `client_side_encryption`: objects written by the Amazon S3 Encryption Client.
struct S3ClientSideEncryption {
  bool enabled = false;             ///< the mapping is present
  std::shared_ptr<Secret> kek;      ///< kek_file: 32 raw bytes (64 hex characters are decoded)
  bool allow_legacy = false;        ///< v1 (AES/CBC) and the context-less `kms` wrap
  bool require_commitment = false;  ///< commitment: require (format v3 only)
  bool required = false;            ///< objects not client-side encrypted are failed
  std::map<std::string, std::string> context;  ///< encryption_context entries required
};

/// `mode: sqs`: S3 event notifications consumed from an SQS queue.
struct S3SqsConfig {
  int max_messages = 10;                                          ///< per ReceiveMessage (1-10)
  std::chrono::nanoseconds wait_time = std::chrono::seconds(20);  ///< long poll (0-20 s)
  int max_in_flight = 20;      ///< messages received and not yet deleted or released
  bool delete_failed = false;  ///< delete a message whose object failed permanently
  std::string endpoint;  ///< "" = AWS_ENDPOINT_URL_SQS, AWS_ENDPOINT_URL, the queue URL's host
};

struct S3SourceConfig {
  std::string mode;    ///< "poll" | "sqs"
  std::string bucket;  ///< poll: listed; sqs: "" = any bucket a notification names
  std::string queue_url;
  std::chrono::nanoseconds visibility_timeout = std::chrono::seconds(300);
  S3SqsConfig sqs;
  std::vector<std::string> prefix{""};
  std::vector<std::string> key_include, key_exclude;
  std::string format;  ///< cloudtrail | vpcflow | ndjson | lines
  std::string compression = "auto";
  std::string region;    ///< "" = AWS_REGION, then profile, then IMDS
  std::string endpoint;  ///< "" = AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, then AWS
  std::optional<bool> force_path_style;
  S3CredentialsConfig credentials;
  std::chrono::nanoseconds poll_interval = std::chrono::seconds(60);
  std::optional<int64_t> since_ns;  ///< objects last modified before are ignored
  std::chrono::nanoseconds lookback = std::chrono::hours(24);
  int64_t max_concurrent_objects = 4;
  uint64_t max_object_bytes = 10ull << 30;
  std::vector<std::string> indexed_fields;
  bool vpc_emit_json = false;
  std::shared_ptr<Secret> sse_c_key;  ///< sse_c.key_file: 32 raw bytes or base64 of them
  S3ClientSideEncryption cse;
  std::string kms_endpoint;  ///< "" = AWS_ENDPOINT_URL_KMS, AWS_ENDPOINT_URL, then AWS
  std::string host, sourcetype, index;
  bool event_id = false;  ///< attach logship_event_id (agent/pipeline/event_id.h)
  bool include_insights = false;  ///< CloudTrail-Insight/ keys (skipped unless key_include asks)

  static S3SourceConfig parse(ConfigNode& cfg);
};

}  // namespace logship
