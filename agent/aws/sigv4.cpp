#include "agent/aws/sigv4.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <cctype>
#include <ctime>
#include <stdexcept>

namespace logship::aws {
namespace {

constexpr std::string_view kAlgorithm = "AWS4-HMAC-SHA256";
constexpr std::string_view kUnsignedPayload = "UNSIGNED-PAYLOAD";

std::string to_lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

/// Trims the value and folds runs of spaces/tabs into one space (SigV4 header canonicalisation).
std::string canonical_header_value(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  bool in_space = false;
  for (char c : v) {
    if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
      in_space = true;
      continue;
    }
    if (in_space && !out.empty()) out += ' ';
    in_space = false;
    out += c;
  }
  return out;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string date_stamp(std::chrono::system_clock::time_point t) {
  return amz_date(t).substr(0, 8);
}

/// Headers that are never signed: they may be rewritten by proxies or libcurl.
bool unsigned_header(std::string_view lower_name) {
  return lower_name == "authorization" || lower_name == "user-agent" || lower_name == "expect" ||
         lower_name == "x-amzn-trace-id";
}

void remove_header(HttpRequest& req, std::string_view name) {
  std::erase_if(req.headers, [&](const auto& h) { return iequals(h.first, name); });
}

const std::string* find_header(const HttpRequest& req, std::string_view name) {
  for (auto& [k, v] : req.headers)
    if (iequals(k, name)) return &v;
  return nullptr;
}

struct CanonicalHeaders {
  std::string text;     ///< "name:value\n" lines
  std::string signed_;  ///< "a;b;c"
};

/// Canonicalises `headers` plus `host`: lower-cased names, stable-sorted so that the values of a
/// repeated name keep their order and are joined with commas.
CanonicalHeaders canonical_headers(const std::vector<std::pair<std::string, std::string>>& headers,
                                   const std::string& url_host) {
  std::vector<std::pair<std::string, std::string>> hs;
  bool has_host = false;
  for (auto& [k, v] : headers) {
    std::string name = to_lower(canonical_header_value(k));
    if (unsigned_header(name)) continue;
    if (name == "host") has_host = true;
    hs.emplace_back(std::move(name), canonical_header_value(v));
  }
  if (!has_host) hs.emplace_back("host", url_host);
  std::stable_sort(hs.begin(), hs.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  CanonicalHeaders out;
  for (size_t i = 0; i < hs.size(); ++i) {
    if (i > 0 && hs[i].first == hs[i - 1].first) {
      out.text.back() = ',';  // replace the previous line's '\n'
      out.text += hs[i].second;
      out.text += '\n';
      continue;
    }
    if (!out.signed_.empty()) out.signed_ += ';';
    out.signed_ += hs[i].first;
    out.text += hs[i].first;
    out.text += ':';
    out.text += hs[i].second;
    out.text += '\n';
  }
  return out;
}

std::string signing_key(const Credentials& c, const SigningParams& p) {
  std::string k = hmac_sha256("AWS4" + c.secret_access_key, date_stamp(p.time));
  k = hmac_sha256(k, p.region);
  k = hmac_sha256(k, p.service);
  return hmac_sha256(k, "aws4_request");
}

std::string scope(const SigningParams& p) {
  return date_stamp(p.time) + "/" + p.region + "/" + p.service + "/aws4_request";
}

/// Fills string_to_sign and signature from the canonical request.
void finish(SigningResult& r, const Credentials& c, const SigningParams& p) {
  r.string_to_sign = std::string(kAlgorithm) + "\n" + amz_date(p.time) + "\n" + scope(p) + "\n" +
                     sha256_hex(r.canonical_request);
  r.signature = hex_encode(hmac_sha256(signing_key(c, p), r.string_to_sign));
  r.authorization = std::string(kAlgorithm) + " Credential=" + c.access_key_id + "/" + scope(p) +
                    ", SignedHeaders=" + r.signed_headers + ", Signature=" + r.signature;
}

}  // namespace

std::string hex_encode(std::string_view bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out += kHex[c >> 4];
    out += kHex[c & 15];
  }
  return out;
}

std::string sha256_hex(std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr) != 1)
    throw std::runtime_error("sha256 failed");
  return hex_encode(std::string_view(reinterpret_cast<const char*>(md), len));
}

std::string hmac_sha256(std::string_view key, std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (!HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
            reinterpret_cast<const unsigned char*>(data.data()), data.size(), md, &len))
    throw std::runtime_error("hmac-sha256 failed");
  return std::string(reinterpret_cast<const char*>(md), len);
}

std::string uri_encode(std::string_view s, bool encode_slash) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size() * 3 / 2);
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~' ||
        (c == '/' && !encode_slash)) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

std::string percent_decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size()) {
      int hi = hex_value(s[i + 1]), lo = hex_value(s[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out += static_cast<char>(hi * 16 + lo);
        i += 2;
        continue;
      }
    }
    out += s[i];
  }
  return out;
}

std::string canonical_uri(std::string_view wire_path, bool s3) {
  if (wire_path.empty()) return "/";
  std::vector<std::string_view> segs;
  size_t start = 0;
  for (;;) {
    size_t slash = wire_path.find('/', start);
    segs.push_back(wire_path.substr(
        start, slash == std::string_view::npos ? std::string_view::npos : slash - start));
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  std::string out;
  if (s3) {
    // Kept exactly as sent: S3 object keys may contain "//", "." and "..".
    for (size_t i = 0; i < segs.size(); ++i) {
      if (i > 0) out += '/';
      out += uri_encode(percent_decode(segs[i]), true);
    }
    if (out.empty() || out[0] != '/') out.insert(out.begin(), '/');
    return out;
  }
  // RFC 3986 dot-segment removal, empty segments dropped; a trailing slash is kept.
  std::vector<std::string_view> kept;
  for (std::string_view seg : segs) {
    if (seg.empty() || seg == ".") continue;
    if (seg == "..") {
      if (!kept.empty()) kept.pop_back();
      continue;
    }
    kept.push_back(seg);
  }
  for (std::string_view seg : kept) {
    out += '/';
    out += uri_encode(seg, true);  // the wire segment is encoded already: this is the 2nd pass
  }
  if (out.empty() || wire_path.back() == '/') out += '/';
  return out;
}

std::string canonical_query(std::string_view wire_query) {
  std::vector<std::pair<std::string, std::string>> params;
  size_t start = 0;
  while (start <= wire_query.size()) {
    size_t amp = wire_query.find('&', start);
    std::string_view part = wire_query.substr(
        start, amp == std::string_view::npos ? std::string_view::npos : amp - start);
    if (!part.empty()) {
      size_t eq = part.find('=');
      std::string_view name = part.substr(0, eq);
      std::string_view value =
          eq == std::string_view::npos ? std::string_view() : part.substr(eq + 1);
      params.emplace_back(uri_encode(percent_decode(name)), uri_encode(percent_decode(value)));
    }
    if (amp == std::string_view::npos) break;
    start = amp + 1;
  }
  std::sort(params.begin(), params.end());
  std::string out;
  for (auto& [k, v] : params) {
    if (!out.empty()) out += '&';
    out += k;
    out += '=';
    out += v;
  }
  return out;
}

std::string amz_date(std::chrono::system_clock::time_point t) {
  std::time_t tt = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tm);
  return buf;
}

UrlParts parse_url(std::string_view url) {
  UrlParts u;
  size_t colon = url.find("://");
  if (colon == std::string_view::npos || colon == 0)
    throw std::invalid_argument("URL without a scheme");
  u.scheme = to_lower(url.substr(0, colon));
  std::string_view rest = url.substr(colon + 3);
  size_t auth_end = rest.find_first_of("/?#");
  std::string_view authority = rest.substr(0, auth_end);
  rest = auth_end == std::string_view::npos ? std::string_view() : rest.substr(auth_end);
  if (size_t at = authority.rfind('@'); at != std::string_view::npos)
    authority = authority.substr(at + 1);
  std::string_view hostname = authority, port;
  if (!authority.empty() && authority[0] == '[') {
    size_t close = authority.find(']');
    if (close == std::string_view::npos) throw std::invalid_argument("bad IPv6 host in URL");
    hostname = authority.substr(0, close + 1);
    if (close + 1 < authority.size() && authority[close + 1] == ':')
      port = authority.substr(close + 2);
  } else if (size_t c = authority.rfind(':'); c != std::string_view::npos) {
    hostname = authority.substr(0, c);
    port = authority.substr(c + 1);
  }
  if (hostname.empty()) throw std::invalid_argument("URL without a host");
  bool default_port = port.empty() || (u.scheme == "http" && port == "80") ||
                      (u.scheme == "https" && port == "443");
  u.host = std::string(hostname);
  if (!default_port) u.host += ":" + std::string(port);
  if (hostname.front() == '[') hostname = hostname.substr(1, hostname.size() - 2);
  u.hostname = std::string(hostname);
  if (size_t hash = rest.find('#'); hash != std::string_view::npos) rest = rest.substr(0, hash);
  size_t q = rest.find('?');
  u.path = std::string(rest.substr(0, q));
  if (u.path.empty()) u.path = "/";
  if (q != std::string_view::npos) u.query = std::string(rest.substr(q + 1));
  return u;
}

SigningResult sign_request(HttpRequest& req, const Credentials& creds, const SigningParams& p) {
  UrlParts url = parse_url(req.url);
  const bool s3 = p.service == "s3";
  const bool want_sha_header = p.content_sha256_header.value_or(s3);

  remove_header(req, "authorization");
  remove_header(req, "x-amz-date");
  req.headers.emplace_back("X-Amz-Date", amz_date(p.time));
  if (!creds.session_token.empty()) {
    remove_header(req, "x-amz-security-token");
    req.headers.emplace_back("X-Amz-Security-Token", creds.session_token);
  }
  std::string payload_hash;
  if (const std::string* given = find_header(req, "x-amz-content-sha256")) {
    payload_hash = canonical_header_value(*given);
  } else {
    const std::string& body = req.body_ref ? *req.body_ref : req.body;
    payload_hash = p.unsigned_payload ? std::string(kUnsignedPayload) : sha256_hex(body);
    if (want_sha_header) req.headers.emplace_back("X-Amz-Content-Sha256", payload_hash);
  }

  CanonicalHeaders ch = canonical_headers(req.headers, url.host);
  SigningResult r;
  r.signed_headers = ch.signed_;
  r.canonical_request = req.method + "\n" + canonical_uri(url.path, s3) + "\n" +
                        canonical_query(url.query) + "\n" + ch.text + "\n" + ch.signed_ + "\n" +
                        payload_hash;
  finish(r, creds, p);
  req.headers.emplace_back("Authorization", r.authorization);
  return r;
}

std::string presign_url(const HttpRequest& req, const Credentials& creds, const SigningParams& p,
                        std::chrono::seconds expires, SigningResult* result) {
  UrlParts url = parse_url(req.url);
  const bool s3 = p.service == "s3";
  std::vector<std::pair<std::string, std::string>> headers;
  for (auto& h : req.headers)
    if (!iequals(h.first, "authorization")) headers.push_back(h);
  CanonicalHeaders ch = canonical_headers(headers, url.host);

  auto seconds = std::clamp<long long>(expires.count(), 1, 604800);
  std::string added = "X-Amz-Algorithm=" + std::string(kAlgorithm) +
                      "&X-Amz-Credential=" + uri_encode(creds.access_key_id + "/" + scope(p)) +
                      "&X-Amz-Date=" + amz_date(p.time) +
                      "&X-Amz-Expires=" + std::to_string(seconds);
  if (!creds.session_token.empty())
    added += "&X-Amz-Security-Token=" + uri_encode(creds.session_token);
  added += "&X-Amz-SignedHeaders=" + uri_encode(ch.signed_);
  std::string query = url.query.empty() ? added : url.query + "&" + added;

  const std::string& body = req.body_ref ? *req.body_ref : req.body;
  SigningResult r;
  r.signed_headers = ch.signed_;
  r.canonical_request =
      req.method + "\n" + canonical_uri(url.path, s3) + "\n" + canonical_query(query) + "\n" +
      ch.text + "\n" + ch.signed_ + "\n" +
      (s3 || p.unsigned_payload ? std::string(kUnsignedPayload) : sha256_hex(body));
  finish(r, creds, p);
  r.authorization.clear();  // not a header-signed request

  std::string base = req.url;
  if (size_t hash = base.find('#'); hash != std::string::npos) base.resize(hash);
  base += base.find('?') == std::string::npos ? '?' : '&';
  if (base.back() == '&' && base[base.size() - 2] == '?') base.pop_back();  // "x?" + "&"
  base += added + "&X-Amz-Signature=" + r.signature;
  if (result) *result = std::move(r);
  return base;
}

}  // namespace logship::aws
