#pragma once
// splunk_hec sink configuration (CONFIG.md "Sink splunk_hec"): parsing and validation only, no
// sockets and no files.
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "agent/core/secret.h"
#include "agent/net/http_client.h"

namespace logship {

class ConfigNode;

/// A metadata template. `{{ name }}` takes the event's metadata (`host`, `source`, `sourcetype`,
/// `index`) or, for any other name, the event's indexed field `name`; any other text is a literal.
/// Absent: the event's own metadata of the same name.
struct HecTemplate {
  enum class Kind : uint8_t { kFromEvent, kLiteral, kMeta, kField };
  enum class Meta : uint8_t { kHost, kSource, kSourcetype, kIndex };
  Kind kind = Kind::kFromEvent;
  Meta meta = Meta::kHost;  ///< kFromEvent / kMeta: which metadata
  std::string value;        ///< kLiteral: the text; kField: the field name
  /// Parses `text`; returns false (with `error`) for a malformed `{{ ... }}`.
  static bool parse(std::string_view text, HecTemplate& out, std::string& error);
};

struct HecSinkConfig {
  static constexpr uint64_t kDefaultBatchMaxBytes = 1ull << 20;
  static constexpr uint64_t kDefaultBatchMaxEvents = 10000;
  static constexpr std::chrono::milliseconds kDefaultBatchTimeout{100};
  static constexpr int kDefaultConcurrency = 4;
  static constexpr std::chrono::seconds kDefaultRequestTimeout{30};
  static constexpr std::chrono::seconds kDefaultInitialBackoff{1};
  static constexpr std::chrono::seconds kDefaultMaxBackoff{60};
  static constexpr std::chrono::seconds kDefaultAckPollInterval{2};
  static constexpr std::chrono::seconds kDefaultAckTimeout{300};
  static constexpr uint64_t kDefaultAckMaxPendingBytes = 64ull << 20;
  static constexpr uint64_t kDefaultDeadLetterMaxBytes = 1ull << 30;

  enum class Target : uint8_t { kEvent, kRaw };
  enum class Compression : uint8_t { kNone, kGzip };

  /// `endpoints`: base URLs (`https://host:8088`), required; a `/services/collector…` path is
  /// normalised away. Each endpoint gets `request.concurrency` senders (see sink.h).
  std::vector<std::string> endpoints;
  /// `token` / `token_file`: the HEC token, required. Read per request (SIGHUP reloads it).
  std::shared_ptr<Secret> token;
  /// `endpoint_target`: `event` (default) or `raw`.
  Target target = Target::kEvent;
  /// `compression`: `gzip` (default) or `none`; `compression_level` 1–9, default 1.
  Compression compression = Compression::kGzip;
  int compression_level = 1;
  /// `batch.max_bytes` (uncompressed body, default 1MiB), `batch.max_events` (10000),
  /// `batch.timeout` (100ms: a partial request waits at most this long for more events).
  uint64_t batch_max_bytes = kDefaultBatchMaxBytes;
  uint64_t batch_max_events = kDefaultBatchMaxEvents;
  std::chrono::nanoseconds batch_timeout = kDefaultBatchTimeout;
  /// `request.concurrency` (requests in flight per endpoint, default 4), `request.timeout` (30s).
  int request_concurrency = kDefaultConcurrency;
  std::chrono::nanoseconds request_timeout = kDefaultRequestTimeout;
  /// `retry.initial_backoff` (1s), `retry.max_backoff` (60s): unlimited attempts, exponential
  /// backoff with jitter, `Retry-After` honoured.
  std::chrono::nanoseconds retry_initial_backoff = kDefaultInitialBackoff;
  std::chrono::nanoseconds retry_max_backoff = kDefaultMaxBackoff;
  /// `acknowledgements.enabled` (true), `.poll_interval` (2s), `.timeout` (300s),
  /// `.max_pending_bytes` (64MiB).
  bool acks_enabled = true;
  std::chrono::nanoseconds acks_poll_interval = kDefaultAckPollInterval;
  std::chrono::nanoseconds acks_timeout = kDefaultAckTimeout;
  uint64_t acks_max_pending_bytes = kDefaultAckMaxPendingBytes;
  /// `tls.{verify, ca_file, ca_dir, cert_file, key_file, server_name, min_version}`.
  TlsOptions tls;
  /// `dead_letter.path` (default `<data_dir>/dead_letter/<sink id>.jsonl`), `.max_bytes` (1GiB,
  /// then rotated to `.1`).
  std::string dead_letter_path;
  uint64_t dead_letter_max_bytes = kDefaultDeadLetterMaxBytes;
  /// `host` / `source` / `sourcetype` / `index` templates (default: from the event).
  HecTemplate host{HecTemplate::Kind::kFromEvent, HecTemplate::Meta::kHost, {}};
  HecTemplate source{HecTemplate::Kind::kFromEvent, HecTemplate::Meta::kSource, {}};
  HecTemplate sourcetype{HecTemplate::Kind::kFromEvent, HecTemplate::Meta::kSourcetype, {}};
  HecTemplate index{HecTemplate::Kind::kFromEvent, HecTemplate::Meta::kIndex, {}};
};

/// Reads and validates the sink's mapping (throws ConfigError naming file:line:col). Marks
/// `buffer` as handled by the runtime and rejects unknown keys.
HecSinkConfig parse_hec_sink_config(ConfigNode& cfg, const std::string& data_dir,
                                    const std::string& sink_id);

/// `https://h:8088/services/collector/event` → `https://h:8088`. Returns "" and sets `error`
/// when the URL is not an absolute http(s) URL without query or fragment.
std::string normalize_hec_endpoint(std::string_view url, std::string& error);

}  // namespace logship
