#include "plugins/sources/splunk_hec/config.h"

#include "agent/config/config.h"
#include "agent/core/units.h"

namespace logship::hec_receiver {

HecSourceConfig parse_hec_source_config(ConfigNode& cfg) {
  HecSourceConfig c;
  c.address = cfg.address("address", c.address);
  c.tokens = cfg.secret_list("tokens");
  if (c.tokens.empty()) cfg.fail("tokens", "at least one token is required");
  for (auto& t : c.tokens)
    if (t->value().empty()) cfg.fail("tokens", "a token must not be empty");

  if (auto tls = cfg.map("tls")) {
    c.tls_cert_file = tls->str("cert_file");
    c.tls_key_file = tls->str("key_file");
    c.tls_ca_file = tls->opt_str("ca_file").value_or("");
    if (c.tls_cert_file.empty()) tls->fail("cert_file", "must not be empty");
    if (c.tls_key_file.empty()) tls->fail("key_file", "must not be empty");
    tls->finish();
  }

  c.max_body_bytes = cfg.size("max_body_bytes", c.max_body_bytes);
  if (c.max_body_bytes == 0 || c.max_body_bytes > kMaxBodyBytesLimit)
    cfg.fail("max_body_bytes", "must be between 1 and " + format_size(kMaxBodyBytesLimit));

  if (auto acks = cfg.map("acknowledgements")) {
    c.acks_enabled = acks->boolean("enabled", false);
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
