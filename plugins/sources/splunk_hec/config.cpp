#include "plugins/sources/splunk_hec/config.h"

#include "agent/config/config.h"
#include "agent/core/log.h"
#include "agent/core/units.h"
#include "agent/net/tls_files.h"

namespace logship::hec_receiver {

HecSourceConfig parse_hec_source_config(ConfigNode& cfg) {
  HecSourceConfig c;
  c.address = cfg.address("address", c.address);
  c.tokens = cfg.secret_list("tokens");
  if (c.tokens.empty()) cfg.error("tokens", "at least one token is required");
  for (auto& t : c.tokens)
    if (t->value().empty()) cfg.error("tokens", "a token must not be empty");

  if (auto tls = cfg.map("tls")) {
    c.tls_cert_file = tls->str("cert_file");
    c.tls_key_file = tls->str("key_file");
    c.tls_ca_file = tls->opt_str("ca_file").value_or("");
    if (c.tls_cert_file.empty()) tls->error("cert_file", "must not be empty");
    if (c.tls_key_file.empty()) tls->error("key_file", "must not be empty");
    if (auto e = check_cert_and_key(c.tls_cert_file, c.tls_key_file); !e.empty())
      tls->error(e.find("private key") != std::string::npos ? "key_file" : "cert_file",
                 e + "; expected a PEM certificate and its unencrypted PEM private key");
    if (!c.tls_ca_file.empty())
      if (auto e = check_pem_certificates(c.tls_ca_file); !e.empty())
        tls->error("ca_file", e + "; expected a PEM file of the CA certificates clients present");
    if (key_file_too_open(c.tls_key_file))
      spdlog::warn("{}: the TLS private key {} is readable by its group or others; chmod 600 it",
                   tls->where("key_file"), c.tls_key_file);
    tls->finish();
  }

  c.max_body_bytes = cfg.size("max_body_bytes", c.max_body_bytes);
  if (c.max_body_bytes == 0 || c.max_body_bytes > kMaxBodyBytesLimit)
    cfg.error("max_body_bytes", "must be between 1 and " + format_size(kMaxBodyBytesLimit));

  c.max_pending_body_bytes = cfg.size("max_pending_body_bytes", c.max_pending_body_bytes);
  if (c.max_pending_body_bytes < c.max_body_bytes)
    cfg.error("max_pending_body_bytes",
              "must be at least max_body_bytes (" + format_size(c.max_body_bytes) + ")");

  if (auto acks = cfg.map("acknowledgements")) {
    c.acks_enabled = acks->boolean("enabled", false);
    c.max_ack_channels = static_cast<size_t>(
        acks->integer("max_channels", static_cast<int64_t>(c.max_ack_channels), 1, 1000000));
    c.max_ack_channels_per_token = static_cast<size_t>(acks->integer(
        "max_channels_per_token", static_cast<int64_t>(c.max_ack_channels_per_token), 1, 1000000));
    c.max_ack_channels_per_client = static_cast<size_t>(
        acks->integer("max_channels_per_client",
                      static_cast<int64_t>(c.max_ack_channels_per_client), 1, 1000000));
    c.ack_channel_idle_timeout = acks->duration("channel_idle_timeout", c.ack_channel_idle_timeout);
    if (c.ack_channel_idle_timeout < std::chrono::seconds(1))
      acks->error("channel_idle_timeout", "must be at least 1s");
    acks->finish();
  }

  c.host = cfg.opt_str("host").value_or("");
  c.source = cfg.opt_str("source").value_or("");
  c.sourcetype = cfg.opt_str("sourcetype").value_or("");
  c.index = cfg.opt_str("index").value_or("");
  cfg.finish();
  return c;
}

}  // namespace logship::hec_receiver
