#include "plugins/sinks/splunk_hec/service.h"

#include "agent/core/secret.h"

#include <charconv>
#include <random>

#include <fmt/format.h>
#include <simdjson.h>

namespace logship {
namespace {

void append_query_param(std::string& url, bool& first, std::string_view key,
                        std::string_view value) {
  if (value.empty()) return;
  url.push_back(first ? '?' : '&');
  first = false;
  url.append(key);
  url.push_back('=');
  static constexpr char kHex[] = "0123456789ABCDEF";
  for (unsigned char c : value) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      url.push_back(static_cast<char>(c));
    } else {
      url.push_back('%');
      url.push_back(kHex[c >> 4]);
      url.push_back(kHex[c & 15]);
    }
  }
}

std::string transport_label(int curl_code) {
  switch (curl_code) {
    case 28:
      return "timeout";  // CURLE_OPERATION_TIMEDOUT
    case 6:
    case 5:
      return "dns";  // COULDNT_RESOLVE_HOST / PROXY
    case 35:
    case 53:
    case 54:
    case 58:
    case 59:  // SSL_CONNECT_ERROR, engine, cert, cipher
    case 60:
    case 64:
    case 66:
    case 77:
    case 80:  // PEER_FAILED_VERIFICATION, CACERT_BADFILE...
    case 82:
    case 83:
    case 90:
    case 91:
      return "tls";
    default:
      return "connection";
  }
}

void parse_hec_body(const std::string& body, HecResult& r) {
  if (body.empty() || body.size() > 64 * 1024) return;
  simdjson::padded_string p(body);
  simdjson::ondemand::parser parser;
  simdjson::ondemand::document doc;
  if (parser.iterate(p).get(doc)) return;
  simdjson::ondemand::object obj;
  if (doc.get_object().get(obj)) return;
  for (auto field : obj) {
    std::string_view key;
    if (field.unescaped_key().get(key)) return;
    auto v = field.value();
    if (key == "text") {
      std::string_view t;
      if (!v.get_string().get(t)) r.text = std::string(t.substr(0, 512));
    } else if (key == "code") {
      int64_t c;
      if (!v.get_int64().get(c)) r.code = static_cast<int>(c);
    } else if (key == "ackId") {
      uint64_t a;
      if (!v.get_uint64().get(a)) r.ack_id = a;
    } else if (key == "invalid-event-number") {
      int64_t i;
      if (!v.get_int64().get(i)) r.invalid_event_number = i;
    }
  }
}

}  // namespace

std::string HecResult::describe() const {
  // `text` comes from the server (or a proxy, or curl quoting one): it may echo the request's
  // Authorization header. Secrets and credential-shaped values are scrubbed, the length capped.
  std::string t = scrub(text, 512);
  if (status == 0) return fmt::format("{}: {}", error, t);
  if (code >= 0) return fmt::format("HTTP {}, code {}: {}", status, code, t);
  if (!t.empty()) return fmt::format("HTTP {}: {}", status, t);
  return fmt::format("HTTP {}", status);
}

HecResult classify_hec_response(const HttpResponse& resp) {
  HecResult r;
  r.status = resp.status;
  r.seconds = resp.total_seconds;
  if (resp.transport_error()) {
    r.outcome = HecOutcome::kRetry;
    r.error = transport_label(resp.curl_code);
    // With TLS 1.3 a refused client certificate arrives as an alert on the first read
    // (CURLE_RECV_ERROR / SEND_ERROR): still a TLS problem for the operator.
    if (r.error == "connection" && (resp.error.find("SSL") != std::string::npos ||
                                    resp.error.find("alert") != std::string::npos))
      r.error = "tls";
    r.text = resp.error;
    return r;
  }
  parse_hec_body(resp.body, r);
  r.error = fmt::format("http_{}", resp.status);
  long s = resp.status;
  if (s >= 200 && s < 300) {
    r.outcome = HecOutcome::kDelivered;
  } else if (s == 401 || s == 403 || s == 404) {
    r.outcome = HecOutcome::kAuth;
  } else if (s == 408 || s == 429 || s >= 500 || s < 200) {
    r.outcome = HecOutcome::kRetry;
  } else {
    r.outcome = HecOutcome::kReject;
  }
  if (auto ra = resp.header("retry-after")) {
    char* end = nullptr;
    long v = std::strtol(ra->c_str(), &end, 10);
    if (end != ra->c_str() && v >= 0) r.retry_after = std::chrono::seconds(std::min(v, 3600L));
  }
  return r;
}

std::string make_hec_channel() {
  std::random_device rd;
  std::mt19937_64 g((static_cast<uint64_t>(rd()) << 32) ^ rd());
  uint64_t a = g(), b = g();
  a = (a & 0xFFFFFFFFFFFF0FFFull) | 0x0000000000004000ull;  // version 4
  b = (b & 0x3FFFFFFFFFFFFFFFull) | 0x8000000000000000ull;  // variant 10
  return fmt::format("{:08X}-{:04X}-{:04X}-{:04X}-{:012X}", a >> 32, (a >> 16) & 0xFFFF, a & 0xFFFF,
                     b >> 48, b & 0xFFFFFFFFFFFFull);
}

HecService::HecService(Executor ex, const HecSinkConfig& cfg, std::string endpoint,
                       std::string channel)
    : client_(std::move(ex), cfg.tls, cfg.request_concurrency + 1),
      endpoint_(std::move(endpoint)),
      channel_(std::move(channel)),
      token_(cfg.token),
      raw_(cfg.target == HecSinkConfig::Target::kRaw),
      timeout_(std::chrono::duration_cast<std::chrono::milliseconds>(cfg.request_timeout)) {}

std::string HecService::url_for(const HecRequest& req) const {
  if (!raw_) return endpoint_ + "/services/collector/event";
  std::string url = endpoint_ + "/services/collector/raw";
  bool first = true;
  append_query_param(url, first, "channel", channel_);
  append_query_param(url, first, "host", req.host);
  append_query_param(url, first, "source", req.source);
  append_query_param(url, first, "sourcetype", req.sourcetype);
  append_query_param(url, first, "index", req.index);
  return url;
}

void HecService::remember_cookies(const HttpResponse& resp) {
  std::lock_guard lk(cookie_mu_);
  for (auto& [k, v] : resp.headers) {
    if (k != "set-cookie") continue;
    std::string_view c(v);
    c = c.substr(0, c.find(';'));
    size_t eq = c.find('=');
    if (eq == std::string_view::npos || eq == 0) continue;
    std::string name(c.substr(0, eq));
    while (!name.empty() && name.back() == ' ') name.pop_back();
    if (cookies_.size() < 32 || cookies_.count(name)) cookies_[name] = std::string(c.substr(eq + 1));
  }
}

void HecService::add_common_headers(HttpRequest& r) {
  r.headers.emplace_back("Authorization", "Splunk " + (token_ ? token_->value() : ""));
  r.headers.emplace_back("X-Splunk-Request-Channel", channel_);
  r.headers.emplace_back("User-Agent", "logship/" LOGSHIP_VERSION);
  std::lock_guard lk(cookie_mu_);
  if (!cookies_.empty()) {
    std::string c;
    for (auto& [k, v] : cookies_) {
      if (!c.empty()) c += "; ";
      c += k;
      c += '=';
      c += v;
    }
    r.headers.emplace_back("Cookie", std::move(c));
  }
}

awaitable<HecResult> HecService::send(const HecRequest& req) {
  HttpRequest http;
  http.method = "POST";
  http.url = url_for(req);
  http.timeout = timeout_;
  http.body_ref = &req.body;  // `req` outlives this call (kept for retries): no copy
  http.headers.reserve(7);
  add_common_headers(http);
  http.headers.emplace_back("Content-Type",
                            raw_ ? "text/plain; charset=utf-8" : "application/json");
  if (req.gzip) http.headers.emplace_back("Content-Encoding", "gzip");
  HttpResponse resp = co_await client_.send(std::move(http));
  remember_cookies(resp);
  co_return classify_hec_response(resp);
}

awaitable<HecAckPoll> HecService::poll_acks(const std::vector<uint64_t>& ids) {
  HttpRequest http;
  http.method = "POST";
  http.url = endpoint_ + "/services/collector/ack?channel=" + channel_;
  http.timeout = timeout_;
  http.body = "{\"acks\":[";
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i) http.body += ',';
    http.body += std::to_string(ids[i]);
  }
  http.body += "]}";
  add_common_headers(http);
  http.headers.emplace_back("Content-Type", "application/json");
  HttpResponse resp = co_await client_.send(std::move(http));
  remember_cookies(resp);
  HecAckPoll out;
  out.status = resp.status;
  if (resp.transport_error()) {
    out.error = resp.error;
    co_return out;
  }
  if (resp.status != 200) {
    HecResult r = classify_hec_response(resp);
    out.code = r.code;
    out.error = r.describe();
    co_return out;
  }
  // {"acks":{"0":true,"1":false}}
  simdjson::padded_string p(resp.body);
  simdjson::ondemand::parser parser;
  simdjson::ondemand::document doc;
  simdjson::ondemand::object acks;
  if (parser.iterate(p).get(doc) || doc["acks"].get_object().get(acks)) {
    out.status = 0;
    out.error = "malformed /ack answer";
    co_return out;
  }
  for (auto field : acks) {
    std::string_view key;
    bool v = false;
    if (field.unescaped_key().get(key) || field.value().get_bool().get(v)) continue;
    if (!v) continue;
    uint64_t id = 0;
    auto [ptr, ec] = std::from_chars(key.data(), key.data() + key.size(), id);
    if (ec == std::errc() && ptr == key.data() + key.size()) out.acked.push_back(id);
  }
  co_return out;
}

awaitable<HecHealth> HecService::health() {
  HttpRequest http;
  http.method = "GET";
  http.url = endpoint_ + "/services/collector/health";
  http.timeout = std::min<std::chrono::milliseconds>(timeout_, std::chrono::seconds(10));
  HttpResponse resp = co_await client_.send(std::move(http));
  HecHealth h;
  h.status = resp.status;
  if (resp.transport_error()) {
    h.text = resp.error;
    co_return h;
  }
  HecResult r = classify_hec_response(resp);
  h.code = r.code;
  h.text = r.text;
  co_return h;
}

}  // namespace logship
