#include "plugins/sinks/splunk_hec/config.h"

#include <algorithm>
#include <cctype>
#include <optional>

#include "agent/config/config.h"
#include "agent/net/tls_files.h"

namespace logship {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

bool valid_field_name(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.' ||
          c == ':'))
      return false;
  return true;
}

void read_template(ConfigNode& cfg, std::string_view key, HecTemplate::Meta meta,
                   HecTemplate& out) {
  out.kind = HecTemplate::Kind::kFromEvent;
  out.meta = meta;
  auto v = cfg.opt_str(key);
  if (!v) return;
  std::string error;
  if (!HecTemplate::parse(*v, out, error)) cfg.error(key, error);
  if (out.kind == HecTemplate::Kind::kLiteral && out.value.empty()) {
    out.kind = HecTemplate::Kind::kFromEvent;  // "" = unset
    out.meta = meta;
  }
}

std::chrono::nanoseconds positive(ConfigNode& cfg, std::string_view key,
                                  std::chrono::nanoseconds def) {
  auto d = cfg.duration(key, def);
  if (d <= std::chrono::nanoseconds::zero()) cfg.error(key, "must be greater than 0");
  return d;
}

}  // namespace

bool HecTemplate::parse(std::string_view text, HecTemplate& out, std::string& error) {
  std::string_view t = trim(text);
  bool opens = t.size() >= 2 && t.substr(0, 2) == "{{";
  if (!opens) {
    if (text.find("{{") != std::string_view::npos) {
      error = "a template must be a whole `{{ name }}` or a literal without `{{`";
      return false;
    }
    out.kind = Kind::kLiteral;
    out.value = std::string(text);
    return true;
  }
  if (t.size() < 4 || t.substr(t.size() - 2) != "}}") {
    error = "unterminated template; expected `{{ name }}`";
    return false;
  }
  std::string_view name = trim(t.substr(2, t.size() - 4));
  if (!valid_field_name(name)) {
    error = "invalid template name; expected `{{ name }}` with letters, digits, `_`, `-`, `.`";
    return false;
  }
  if (name == "host") {
    out.kind = Kind::kMeta;
    out.meta = Meta::kHost;
  } else if (name == "source") {
    out.kind = Kind::kMeta;
    out.meta = Meta::kSource;
  } else if (name == "sourcetype") {
    out.kind = Kind::kMeta;
    out.meta = Meta::kSourcetype;
  } else if (name == "index") {
    out.kind = Kind::kMeta;
    out.meta = Meta::kIndex;
  } else {
    out.kind = Kind::kField;
    out.value = std::string(name);
  }
  return true;
}

std::string normalize_hec_endpoint(std::string_view url, std::string& error) {
  std::string_view u = trim(url);
  size_t scheme_end = u.find("://");
  std::string scheme;
  if (scheme_end != std::string_view::npos) {
    scheme = std::string(u.substr(0, scheme_end));
    for (char& c : scheme) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  if (scheme != "http" && scheme != "https") {
    error = "expected an absolute http:// or https:// URL such as https://hec.example.com:8088";
    return "";
  }
  std::string_view rest = u.substr(scheme_end + 3);
  if (rest.find_first_of("?#") != std::string_view::npos) {
    error = "the endpoint must not carry a query string or fragment";
    return "";
  }
  size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  std::string_view path = slash == std::string_view::npos ? std::string_view{} : rest.substr(slash);
  if (authority.find('@') != authority.npos) {
    error = "credentials in endpoint URLs (user:password@) are not supported; the HEC token goes "
            "in token or token_file";
    return "";
  }
  if (authority.empty() || authority.front() == ':' ||
      authority.find_first_of(" \t") != authority.npos) {
    error = "the endpoint has no valid host";
    return "";
  }
  // An explicit port must be 1-65535 (after an IPv6 literal's `]`).
  std::optional<std::string_view> port;
  if (authority.front() == '[') {
    size_t close = authority.find(']');
    if (close != std::string_view::npos && close + 1 < authority.size() &&
        authority[close + 1] == ':')
      port = authority.substr(close + 2);
  } else if (size_t colon = authority.find(':'); colon != std::string_view::npos) {
    port = authority.substr(colon + 1);
  }
  if (port) {
    bool digits = !port->empty() && port->size() <= 5 &&
                  std::all_of(port->begin(), port->end(), [](char c) { return c >= '0' && c <= '9'; });
    unsigned long n = digits ? std::stoul(std::string(*port)) : 0;
    if (!digits || n == 0 || n > 65535) {
      error = "the endpoint's port must be a number from 1 to 65535";
      return "";
    }
  }
  // Drop a HEC path the user copied from the docs; keep a proxy prefix before it.
  size_t svc = path.find("/services/collector");
  if (svc != std::string_view::npos) path = path.substr(0, svc);
  while (!path.empty() && path.back() == '/') path.remove_suffix(1);
  return scheme + "://" + std::string(authority) + std::string(path);
}

HecSinkConfig parse_hec_sink_config(ConfigNode& cfg, const std::string& data_dir,
                                    const std::string& sink_id) {
  HecSinkConfig c;
  c.endpoints = cfg.list("endpoints");
  if (c.endpoints.empty()) cfg.error("endpoints", "at least one endpoint is required");
  for (auto& e : c.endpoints) {
    std::string error;
    std::string n = normalize_hec_endpoint(e, error);
    if (n.empty()) cfg.error("endpoints", error);
    e = std::move(n);
  }
  c.token = cfg.secret("token");
  c.target = cfg.choice("endpoint_target", "event", {"event", "raw"}) == "raw"
                 ? HecSinkConfig::Target::kRaw
                 : HecSinkConfig::Target::kEvent;
  c.compression = cfg.choice("compression", "gzip", {"none", "gzip"}) == "none"
                      ? HecSinkConfig::Compression::kNone
                      : HecSinkConfig::Compression::kGzip;
  c.compression_level = static_cast<int>(cfg.integer("compression_level", 1, 1, 9));

  if (auto b = cfg.map("batch")) {
    c.batch_max_bytes = b->size("max_bytes", HecSinkConfig::kDefaultBatchMaxBytes);
    if (c.batch_max_bytes < 1024) b->error("max_bytes", "must be at least 1KiB");
    c.batch_max_events = static_cast<uint64_t>(
        b->integer("max_events", HecSinkConfig::kDefaultBatchMaxEvents, 1, 1000000));
    c.batch_timeout = positive(*b, "timeout", HecSinkConfig::kDefaultBatchTimeout);
    b->finish();
  }
  if (auto r = cfg.map("request")) {
    c.request_concurrency =
        static_cast<int>(r->integer("concurrency", HecSinkConfig::kDefaultConcurrency, 1, 256));
    c.request_timeout = positive(*r, "timeout", HecSinkConfig::kDefaultRequestTimeout);
    r->finish();
  }
  if (auto r = cfg.map("retry")) {
    c.retry_initial_backoff =
        positive(*r, "initial_backoff", HecSinkConfig::kDefaultInitialBackoff);
    c.retry_max_backoff = positive(*r, "max_backoff", HecSinkConfig::kDefaultMaxBackoff);
    if (c.retry_max_backoff < c.retry_initial_backoff)
      r->error("max_backoff", "must not be smaller than retry.initial_backoff");
    r->finish();
  }
  if (auto a = cfg.map("acknowledgements")) {
    c.acks_enabled = a->boolean("enabled", true);
    c.acks_poll_interval = positive(*a, "poll_interval", HecSinkConfig::kDefaultAckPollInterval);
    c.acks_timeout = positive(*a, "timeout", HecSinkConfig::kDefaultAckTimeout);
    c.acks_max_pending_bytes =
        a->size("max_pending_bytes", HecSinkConfig::kDefaultAckMaxPendingBytes);
    a->finish();
  }
  if (auto t = cfg.map("tls")) {
    c.tls.verify = t->boolean("verify", true);
    c.tls.ca_file = t->str("ca_file", "");
    c.tls.ca_dir = t->str("ca_dir", "");
    c.tls.cert_file = t->str("cert_file", "");
    c.tls.key_file = t->str("key_file", "");
    c.tls.server_name = t->str("server_name", "");
    c.tls.min_version = t->choice("min_version", "1.2", {"1.2", "1.3"});
    if (!c.tls.key_file.empty() && c.tls.cert_file.empty())
      t->error("key_file", "tls.key_file needs tls.cert_file");
    if (c.tls.server_name.find_first_of(":/ ") != std::string::npos)
      t->error("server_name", "expected a host name");
    // The files are read now: a missing or malformed one is a config error, not an agent that
    // starts, reports ready and never sends.
    if (!c.tls.ca_file.empty())
      if (auto e = check_pem_certificates(c.tls.ca_file); !e.empty())
        t->error("ca_file", e + "; expected a PEM file of CA certificates");
    if (!c.tls.ca_dir.empty())
      if (auto e = check_ca_dir(c.tls.ca_dir); !e.empty())
        t->error("ca_dir", e + "; expected a directory of hashed CA certificates");
    if (!c.tls.cert_file.empty()) {
      auto e = c.tls.key_file.empty() ? check_pem_certificates(c.tls.cert_file)
                                      : check_cert_and_key(c.tls.cert_file, c.tls.key_file);
      if (!e.empty())
        t->error(e.find("private key") != std::string::npos ? "key_file" : "cert_file",
                 e + "; expected a PEM certificate and its unencrypted PEM private key");
    }
    t->finish();
  }
  c.dead_letter_path = data_dir + "/dead_letter/" + sink_id + ".jsonl";
  if (auto d = cfg.map("dead_letter")) {
    c.dead_letter_path = d->str("path", c.dead_letter_path);
    c.dead_letter_max_bytes = d->size("max_bytes", HecSinkConfig::kDefaultDeadLetterMaxBytes);
    if (c.dead_letter_max_bytes < 4096) d->error("max_bytes", "must be at least 4KiB");
    d->finish();
  }
  read_template(cfg, "host", HecTemplate::Meta::kHost, c.host);
  read_template(cfg, "source", HecTemplate::Meta::kSource, c.source);
  read_template(cfg, "sourcetype", HecTemplate::Meta::kSourcetype, c.sourcetype);
  read_template(cfg, "index", HecTemplate::Meta::kIndex, c.index);
  cfg.touch("buffer");  // the runtime's
  cfg.finish();
  return c;
}

}  // namespace logship
