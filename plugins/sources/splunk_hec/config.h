#pragma once
// Configuration of the `splunk_hec` source (CONFIG.md, "Source splunk_hec (receiver)").
// Parsing only: no sockets, no file reads beyond the `tokens_file` secret.
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "agent/core/secret.h"

namespace logship {
class ConfigNode;
}

namespace logship::hec_receiver {

struct HecSourceConfig {
  /// `address`: host:port to listen on. Default 127.0.0.1:8088.
  std::string address = "127.0.0.1:8088";
  /// `tokens` / `tokens_file`: accepted `Authorization: Splunk <token>` values. Required.
  std::vector<std::shared_ptr<Secret>> tokens;
  /// `tls.cert_file` / `tls.key_file`: PEM server certificate chain and key; HTTPS when set.
  std::string tls_cert_file;
  std::string tls_key_file;
  /// `tls.ca_file`: PEM CA bundle; when set, clients must present a certificate it verifies.
  std::string tls_ca_file;
  /// `max_body_bytes`: request body limit, before and after gzip inflation. Default 8MiB.
  uint64_t max_body_bytes = 8ull << 20;
  /// `max_pending_body_bytes`: request bodies held in memory at once, all connections together
  /// (raw, plus max_body_bytes for each gzip body being inflated); beyond, 503 code 9 (Server is
  /// busy). Default 256MiB.
  uint64_t max_pending_body_bytes = 256ull << 20;
  /// `acknowledgements.enabled`: issue ackIds and serve /ack. Default false.
  bool acks_enabled = false;
  /// `acknowledgements.max_channels` (10000), `.max_channels_per_token` (1000),
  /// `.max_channels_per_client` (1000, per client IP address): channels held at once. A new
  /// channel beyond a limit takes the place of an empty one (no ackId pending or unreported),
  /// else gets 503 code 9. `.channel_idle_timeout` (600s): a channel unused this long is dropped.
  size_t max_ack_channels = 10000;
  size_t max_ack_channels_per_token = 1000;
  size_t max_ack_channels_per_client = 1000;
  std::chrono::nanoseconds ack_channel_idle_timeout = std::chrono::seconds(600);
  /// `host` / `source` / `sourcetype` / `index`: metadata for events that carry none (neither in
  /// the envelope nor as request query parameters). Default unset; host then is the client IP.
  std::string host;
  std::string source;
  std::string sourcetype;
  std::string index;

  // Fixed limits (not configuration keys).
  /// Request header bytes (larger → 431).
  size_t max_header_bytes = 64 * 1024;
  /// Open connections; beyond, new connections are closed at once.
  size_t max_connections = 1024;
  /// A keep-alive connection idle this long is closed; also the per-read/write deadline.
  std::chrono::seconds idle_timeout{60};
  /// TLS handshake deadline.
  std::chrono::seconds handshake_timeout{10};
  /// ackIds held per channel (HecAckRegistry::Limits).
  size_t max_acks_per_channel = 100000;

  bool tls_enabled() const { return !tls_cert_file.empty(); }
};

/// Upper bound of `max_body_bytes` (event offsets in a batch are 32-bit).
inline constexpr uint64_t kMaxBodyBytesLimit = 1ull << 30;

/// Reads every key of the source's mapping, then rejects unknown keys (ConfigNode::finish).
/// Throws ConfigError.
HecSourceConfig parse_hec_source_config(ConfigNode& cfg);

}  // namespace logship::hec_receiver
