#include "agent/aws/credentials.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <vector>

#include <simdjson.h>
#include <spdlog/spdlog.h>

#include "agent/aws/xml.h"

namespace logship::aws {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::system_clock;

/// IMDS and ECS answer in milliseconds when present; a short total timeout lets a host that is
/// not on EC2/ECS fall through quickly. (HttpRequest has no separate connect timeout.)
constexpr std::chrono::milliseconds kMetadataTimeout{2000};
constexpr std::chrono::milliseconds kStsTimeout{10000};
constexpr int kMaxProfileDepth = 5;
constexpr std::string_view kStsVersion = "2011-06-15";

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? std::string(v) : std::string();
}

std::string trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return std::string(s);
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

/// Error text from a remote party, shortened and reduced to one line (it is only ever a code
/// and a message, never request data).
std::string clip(std::string_view s, size_t max = 200) {
  std::string out;
  for (char c : s.substr(0, max)) out += (c == '\n' || c == '\r') ? ' ' : c;
  if (s.size() > max) out += "…";
  return out;
}

std::string home_dir() {
  std::string h = env("HOME");
  return h.empty() ? std::string(".") : h;
}

std::string credentials_file() {
  std::string f = env("AWS_SHARED_CREDENTIALS_FILE");
  return f.empty() ? home_dir() + "/.aws/credentials" : f;
}

std::string config_file() {
  std::string f = env("AWS_CONFIG_FILE");
  return f.empty() ? home_dir() + "/.aws/config" : f;
}

/// Reads a small text file; nullopt when it cannot be opened.
std::optional<std::string> read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

/// Sections of an AWS shared file. In the config file "[profile x]" names profile x and
/// "[default]" the default; other sections ("[sso-session x]", "[services x]") are skipped.
std::map<std::string, Profile> parse_ini(const std::string& text, bool config) {
  std::map<std::string, Profile> out;
  Profile* cur = nullptr;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    std::string t = trim(line);
    if (t.empty() || t[0] == '#' || t[0] == ';') continue;
    if (t.front() == '[') {
      cur = nullptr;
      size_t close = t.find(']');
      if (close == std::string::npos) continue;
      std::string name = trim(std::string_view(t).substr(1, close - 1));
      if (config && name != "default") {
        if (name.rfind("profile", 0) != 0 || name.size() < 8 ||
            !std::isspace(static_cast<unsigned char>(name[7])))
          continue;
        name = trim(std::string_view(name).substr(8));
      }
      cur = &out[name];
      continue;
    }
    if (!cur) continue;
    size_t eq = t.find('=');
    if (eq == std::string::npos) continue;  // sub-property continuation lines: unsupported
    std::string key = lower(trim(std::string_view(t).substr(0, eq)));
    std::string value = trim(std::string_view(t).substr(eq + 1));
    if (!key.empty()) (*cur)[key] = value;
  }
  return out;
}

std::string get(const Profile& p, const std::string& key) {
  auto it = p.find(key);
  return it == p.end() ? std::string() : it->second;
}

std::string form_encode(const std::vector<std::pair<std::string, std::string>>& fields) {
  std::string out;
  for (auto& [k, v] : fields) {
    if (!out.empty()) out += '&';
    out += uri_encode(k) + "=" + uri_encode(v);
  }
  return out;
}

std::string default_session_name() {
  return "logship-" + std::to_string(Clock::to_time_t(Clock::now()));
}

/// What one provider produced: credentials, or why it did not.
struct Attempt {
  std::optional<Credentials> creds;
  std::string why;
};

Attempt failed(std::string why) {
  return Attempt{std::nullopt, std::move(why)};
}

std::string http_problem(const HttpResponse& r) {
  if (r.transport_error()) return clip(r.error);
  return "HTTP " + std::to_string(r.status);
}

/// {AccessKeyId, SecretAccessKey, Token, Expiration[, Code]} as ECS and IMDS return it.
Credentials parse_json_credentials(const std::string& body, std::string provider) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (parser.parse(body).get(doc) != simdjson::SUCCESS)
    throw std::runtime_error("response is not JSON");
  std::string_view v;
  if (doc["Code"].get(v) == simdjson::SUCCESS && v != "Success")
    throw std::runtime_error("Code " + clip(v, 60));
  Credentials c;
  c.provider = std::move(provider);
  if (doc["AccessKeyId"].get(v) == simdjson::SUCCESS) c.access_key_id = std::string(v);
  if (doc["SecretAccessKey"].get(v) == simdjson::SUCCESS) c.secret_access_key = std::string(v);
  if (doc["Token"].get(v) == simdjson::SUCCESS) c.session_token = std::string(v);
  if (doc["Expiration"].get(v) == simdjson::SUCCESS) {
    c.expiration = parse_iso8601(v);
    if (!c.expiration) throw std::runtime_error("bad Expiration");
  }
  if (c.empty()) throw std::runtime_error("response lacks AccessKeyId or SecretAccessKey");
  return c;
}

Credentials parse_sts_credentials(const std::string& body, std::string provider) {
  auto block = xml_element(body, "Credentials");
  if (!block) throw std::runtime_error("STS response without Credentials");
  Credentials c;
  c.provider = std::move(provider);
  c.access_key_id = xml_text(*block, "AccessKeyId").value_or("");
  c.secret_access_key = xml_text(*block, "SecretAccessKey").value_or("");
  c.session_token = xml_text(*block, "SessionToken").value_or("");
  if (auto e = xml_text(*block, "Expiration")) {
    c.expiration = parse_iso8601(*e);
    if (!c.expiration) throw std::runtime_error("STS response with a bad Expiration");
  }
  if (c.empty()) throw std::runtime_error("STS response lacks AccessKeyId or SecretAccessKey");
  return c;
}

/// Region used to reach STS.
std::string sts_region(const std::string& configured, const std::string& profile) {
  std::string r = resolve_region_sync(configured, profile);
  return r.empty() ? "us-east-1" : r;
}

/// One STS call (Query protocol, form POST). Signed when `signer` is given. Throws
/// std::runtime_error("<Action>: <Code>: <Message> (HTTP n)") on failure.
awaitable<Credentials> sts_call(HttpClient& http, std::string region,
                                std::vector<std::pair<std::string, std::string>> fields,
                                const Credentials* signer, std::string provider) {
  std::string action = fields.front().second;
  HttpRequest req;
  req.method = "POST";
  req.url = resolve_endpoint("sts", "", region) + "/";
  req.body = form_encode(fields);
  req.timeout = kStsTimeout;
  req.headers = {{"Content-Type", "application/x-www-form-urlencoded; charset=utf-8"},
                 {"Accept", "application/xml"}};
  if (signer) {
    SigningParams p;
    p.region = region;
    p.service = "sts";
    p.time = Clock::now();
    sign_request(req, *signer, p);
  }
  HttpResponse resp = co_await http.send(std::move(req));
  if (resp.status != 200) {
    std::string why = action + ": ";
    if (resp.transport_error()) {
      why += clip(resp.error);
    } else {
      auto code = xml_text(resp.body, "Code");
      auto msg = xml_text(resp.body, "Message");
      if (code) why += clip(*code, 80) + ": ";
      if (msg) why += clip(*msg) + " ";
      why += "(HTTP " + std::to_string(resp.status) + ")";
    }
    throw std::runtime_error(why);
  }
  co_return parse_sts_credentials(resp.body, std::move(provider));
}

awaitable<Credentials> assume_role(HttpClient& http, const std::string& region,
                                   const Credentials& source, const std::string& role_arn,
                                   std::string session_name, const std::string& external_id) {
  if (session_name.empty()) session_name = default_session_name();
  std::vector<std::pair<std::string, std::string>> fields;
  fields.emplace_back("Action", "AssumeRole");
  fields.emplace_back("Version", std::string(kStsVersion));
  fields.emplace_back("RoleArn", role_arn);
  fields.emplace_back("RoleSessionName", session_name);
  if (!external_id.empty()) fields.emplace_back("ExternalId", external_id);
  std::string provider = "assume-role:" + role_arn + " via " + source.provider;
  co_return co_await sts_call(http, region, std::move(fields), &source, std::move(provider));
}

awaitable<Credentials> web_identity(HttpClient& http, const std::string& region,
                                    const std::string& token_file, const std::string& role_arn,
                                    std::string session_name) {
  auto token = read_text(token_file);
  if (!token) throw std::runtime_error("cannot read the token file " + token_file);
  if (session_name.empty()) session_name = default_session_name();
  // A named vector: g++ 12 rejects braced pair lists inside a co_await expression.
  std::vector<std::pair<std::string, std::string>> fields;
  fields.emplace_back("Action", "AssumeRoleWithWebIdentity");
  fields.emplace_back("Version", std::string(kStsVersion));
  fields.emplace_back("RoleArn", role_arn);
  fields.emplace_back("RoleSessionName", session_name);
  fields.emplace_back("WebIdentityToken", trim(*token));
  std::string provider = "web-identity:" + role_arn;
  co_return co_await sts_call(http, region, std::move(fields), nullptr, std::move(provider));
}

Attempt from_environment() {
  std::string id = env("AWS_ACCESS_KEY_ID"), secret = env("AWS_SECRET_ACCESS_KEY");
  if (id.empty() && secret.empty()) return failed("AWS_ACCESS_KEY_ID not set");
  if (id.empty()) return failed("AWS_SECRET_ACCESS_KEY set without AWS_ACCESS_KEY_ID");
  if (secret.empty()) return failed("AWS_ACCESS_KEY_ID set without AWS_SECRET_ACCESS_KEY");
  Credentials c;
  c.access_key_id = id;
  c.secret_access_key = secret;
  c.session_token = env("AWS_SESSION_TOKEN");
  c.provider = "environment";
  return Attempt{std::move(c), {}};
}

awaitable<Attempt> from_web_identity_env(HttpClient& http, const std::string& region) {
  std::string file = env("AWS_WEB_IDENTITY_TOKEN_FILE"), role = env("AWS_ROLE_ARN");
  if (file.empty()) co_return failed("AWS_WEB_IDENTITY_TOKEN_FILE not set");
  if (role.empty()) co_return failed("AWS_WEB_IDENTITY_TOKEN_FILE set without AWS_ROLE_ARN");
  // Named arguments only: g++ 12 mis-destroys temporaries inside co_await expressions.
  std::string why, session = env("AWS_ROLE_SESSION_NAME");
  try {
    Credentials c = co_await web_identity(http, region, file, role, session);
    co_return Attempt{std::move(c), {}};
  } catch (const std::exception& e) {
    why = e.what();
  }
  co_return failed(why);
}

awaitable<Attempt> from_ecs(HttpClient& http) {
  std::string url = ecs_credentials_url();
  if (url.empty())
    co_return failed(
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI and AWS_CONTAINER_CREDENTIALS_FULL_URI not set");
  HttpRequest req;
  req.method = "GET";
  req.url = url;
  req.timeout = kMetadataTimeout;
  req.connect_timeout = std::chrono::milliseconds(1000);
  req.no_proxy = true;  // link-local metadata endpoints never go through a proxy
  std::string token;
  if (std::string f = env("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"); !f.empty()) {
    auto t = read_text(f);
    if (!t) co_return failed("cannot read AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE " + f);
    token = trim(*t);
  } else {
    token = env("AWS_CONTAINER_AUTHORIZATION_TOKEN");
  }
  if (!token.empty()) req.headers.emplace_back("Authorization", token);
  HttpResponse resp = co_await http.send(std::move(req));
  if (resp.status != 200) co_return failed(http_problem(resp));
  try {
    co_return Attempt{parse_json_credentials(resp.body, "ecs"), {}};
  } catch (const std::exception& e) {
    co_return failed(e.what());
  }
}

/// IMDSv2 session token; throws std::runtime_error with the reason.
awaitable<std::string> imds_token(HttpClient& http, const std::string& base) {
  HttpRequest req;
  req.method = "PUT";
  req.url = base + "/latest/api/token";
  req.timeout = kMetadataTimeout;
  req.connect_timeout = std::chrono::milliseconds(1000);
  req.no_proxy = true;  // link-local metadata endpoints never go through a proxy
  req.headers = {{"X-aws-ec2-metadata-token-ttl-seconds", "21600"}};
  HttpResponse resp = co_await http.send(std::move(req));
  if (resp.status != 200 || resp.body.empty())
    throw std::runtime_error("no IMDSv2 token: " + http_problem(resp));
  co_return trim(resp.body);
}

awaitable<HttpResponse> imds_get(HttpClient& http, const std::string& base, const std::string& path,
                                 const std::string& token) {
  HttpRequest req;
  req.method = "GET";
  req.url = base + path;
  req.timeout = kMetadataTimeout;
  req.connect_timeout = std::chrono::milliseconds(1000);
  req.no_proxy = true;  // link-local metadata endpoints never go through a proxy
  req.headers = {{"X-aws-ec2-metadata-token", token}};
  co_return co_await http.send(std::move(req));
}

awaitable<Attempt> from_imds(HttpClient& http) {
  std::string base = imds_endpoint();
  if (base.empty()) co_return failed("disabled by AWS_EC2_METADATA_DISABLED");
  std::string why;
  try {
    std::string token = co_await imds_token(http, base);
    const std::string dir = "/latest/meta-data/iam/security-credentials/";
    HttpResponse list = co_await imds_get(http, base, dir, token);
    if (list.status != 200) throw std::runtime_error("no instance role: " + http_problem(list));
    std::string role = trim(std::string_view(list.body).substr(0, list.body.find('\n')));
    if (role.empty()) throw std::runtime_error("no instance role attached");
    std::string path = dir + role;
    HttpResponse got = co_await imds_get(http, base, path, token);
    if (got.status != 200) throw std::runtime_error("role " + role + ": " + http_problem(got));
    co_return Attempt{parse_json_credentials(got.body, "imds"), {}};
  } catch (const std::exception& e) {
    why = e.what();
  }
  co_return failed(why);
}

/// Credentials of a named profile: role_arn (+ source_profile | credential_source |
/// web_identity_token_file) → STS AssumeRole(WithWebIdentity); else static keys.
/// Throws std::runtime_error with the reason.
awaitable<Credentials> profile_credentials(HttpClient& http, const std::string& name,
                                           const std::string& region_cfg, int depth) {
  if (depth > kMaxProfileDepth)
    throw std::runtime_error("profile '" + name + "': source_profile chain too long or cyclic");
  auto prof = load_profile(name);
  if (!prof)
    throw std::runtime_error("profile '" + name + "' not found in " + credentials_file() + " or " +
                             config_file());
  std::string provider = "profile:" + name;
  std::string role = get(*prof, "role_arn");
  std::string region = region_cfg.empty() ? sts_region("", name) : region_cfg;
  if (!role.empty()) {
    std::string src_name = get(*prof, "source_profile");
    std::string cred_source = get(*prof, "credential_source");
    std::string token_file = get(*prof, "web_identity_token_file");
    std::optional<Credentials> src;
    if (!src_name.empty() && src_name != name) {
      src = co_await profile_credentials(http, src_name, region_cfg, depth + 1);
    } else if (!src_name.empty()) {  // source_profile = itself: its own static keys
      Credentials c;
      c.access_key_id = get(*prof, "aws_access_key_id");
      c.secret_access_key = get(*prof, "aws_secret_access_key");
      c.session_token = get(*prof, "aws_session_token");
      c.provider = provider;
      if (c.empty())
        throw std::runtime_error(provider +
                                 ": source_profile refers to itself "
                                 "but it has no keys");
      src = std::move(c);
    } else if (!token_file.empty()) {
      std::string session = get(*prof, "role_session_name");
      Credentials c = co_await web_identity(http, region, token_file, role, session);
      c.provider = provider + " (web identity)";
      co_return c;
    } else if (cred_source == "Environment") {
      Attempt a = from_environment();
      if (!a.creds)
        throw std::runtime_error(provider + ": credential_source Environment: " + a.why);
      src = std::move(a.creds);
    } else if (cred_source == "EcsContainer") {
      Attempt a = co_await from_ecs(http);
      if (!a.creds)
        throw std::runtime_error(provider + ": credential_source EcsContainer: " + a.why);
      src = std::move(a.creds);
    } else if (cred_source == "Ec2InstanceMetadata") {
      Attempt a = co_await from_imds(http);
      if (!a.creds)
        throw std::runtime_error(provider + ": credential_source Ec2InstanceMetadata: " + a.why);
      src = std::move(a.creds);
    } else {
      throw std::runtime_error(provider +
                               ": role_arn needs source_profile, credential_source or "
                               "web_identity_token_file");
    }
    std::string session = get(*prof, "role_session_name"), external = get(*prof, "external_id");
    Credentials c = co_await assume_role(http, region, *src, role, session, external);
    c.provider = provider + " (assume-role via " + src->provider + ")";
    co_return c;
  }
  Credentials c;
  c.access_key_id = get(*prof, "aws_access_key_id");
  c.secret_access_key = get(*prof, "aws_secret_access_key");
  c.session_token = get(*prof, "aws_session_token");
  c.provider = provider;
  if (c.empty()) {
    std::string why = provider + " has no aws_access_key_id/aws_secret_access_key";
    if (prof->count("credential_process") || prof->count("sso_session") ||
        prof->count("sso_start_url"))
      why += " (credential_process and SSO are not supported)";
    throw std::runtime_error(why);
  }
  co_return c;
}

/// The default chain after explicit config. Throws with every reason when none works.
awaitable<Credentials> default_chain(HttpClient& http, const std::string& region_cfg) {
  std::vector<std::string> tried;
  Attempt a = from_environment();
  if (a.creds) co_return *a.creds;
  tried.push_back("environment: " + a.why);

  std::string region = region_cfg.empty() ? sts_region("", "") : region_cfg;
  a = co_await from_web_identity_env(http, region);
  if (a.creds) co_return *a.creds;
  tried.push_back("web identity: " + a.why);

  std::string name = profile_name("");
  std::string why;
  try {
    co_return co_await profile_credentials(http, name, region_cfg, 0);
  } catch (const std::exception& e) {
    why = e.what();
  }
  tried.push_back("shared files: " + why);

  a = co_await from_ecs(http);
  if (a.creds) co_return *a.creds;
  tried.push_back("ecs: " + a.why);

  a = co_await from_imds(http);
  if (a.creds) co_return *a.creds;
  tried.push_back("imds: " + a.why);

  std::string msg = "no AWS credentials found; tried ";
  for (size_t i = 0; i < tried.size(); ++i) msg += (i ? "; " : "") + tried[i];
  throw std::runtime_error(msg);
}

bool is_ip_literal(const std::string& host) {
  in_addr v4;
  in6_addr v6;
  return inet_pton(AF_INET, host.c_str(), &v4) == 1 || inet_pton(AF_INET6, host.c_str(), &v6) == 1;
}

}  // namespace

// ---- CredentialProvider -------------------------------------------------------------------

CredentialProvider::CredentialProvider(HttpClient& http, CredentialProviderOptions opts)
    : http_(http), opts_(std::move(opts)) {}

std::chrono::system_clock::time_point CredentialProvider::now() const {
  return opts_.now ? opts_.now() : Clock::now();
}

bool CredentialProvider::fresh(const Credentials& c) const {
  return !c.expiration || now() + opts_.refresh_margin < *c.expiration;
}

void CredentialProvider::invalidate() {
  std::lock_guard lk(mu_);
  cached_.reset();
}

uint64_t CredentialProvider::fetches() const {
  std::lock_guard lk(mu_);
  return fetches_;
}

awaitable<Credentials> CredentialProvider::get() {
  for (;;) {
    bool lead = false;
    uint64_t seen = 0;
    {
      std::lock_guard lk(mu_);
      if (cached_ && fresh(*cached_)) co_return *cached_;
      if (!refreshing_) {
        refreshing_ = true;
        ++fetches_;
        lead = true;
      } else {
        seen = seq_;
      }
    }
    if (lead) break;
    // Another caller is fetching: share its outcome.
    co_await wq_.wait(mu_, [&] { return seq_ != seen; });
    std::lock_guard lk(mu_);
    if (seq_ == seen) continue;  // spurious
    if (cached_) co_return *cached_;
    if (last_error_) throw std::runtime_error(*last_error_);
  }

  std::optional<Credentials> got;
  std::string err;
  try {
    got = co_await fetch();
  } catch (const std::exception& e) {
    err = e.what();
  }
  bool log_info = false;
  {
    std::lock_guard lk(mu_);
    refreshing_ = false;
    ++seq_;
    if (got) {
      cached_ = *got;
      last_error_.reset();
      log_info = got->provider != last_provider_;
      last_provider_ = got->provider;
    } else {
      cached_.reset();
      last_error_ = err;
    }
    wq_.notify_all();
  }
  if (!got) throw std::runtime_error(err);
  if (log_info)
    spdlog::info("AWS credentials from {}", got->provider);
  else
    spdlog::debug("AWS credentials refreshed from {}", got->provider);
  co_return *got;
}

awaitable<Credentials> CredentialProvider::fetch() {
  const CredentialsConfig& cfg = opts_.config;
  std::string region = opts_.region.empty() ? sts_region("", cfg.profile) : opts_.region;
  std::optional<Credentials> base;
  if (!cfg.access_key_id.empty() || !cfg.secret_access_key.empty()) {
    if (cfg.access_key_id.empty() || cfg.secret_access_key.empty())
      throw std::runtime_error(
          "credentials: access_key_id and secret_access_key must be set together");
    Credentials c;
    c.access_key_id = cfg.access_key_id;
    c.secret_access_key = cfg.secret_access_key;
    c.session_token = cfg.session_token;
    c.provider = "config";
    base = std::move(c);
  } else if (!cfg.profile.empty()) {
    base = co_await profile_credentials(http_, cfg.profile, opts_.region, 0);
  }
  if (cfg.role_arn.empty()) {
    if (base) co_return *base;
    co_return co_await default_chain(http_, opts_.region);
  }
  if (!base) base = co_await default_chain(http_, opts_.region);
  co_return co_await assume_role(http_, region, *base, cfg.role_arn, cfg.role_session_name,
                                 cfg.external_id);
}

// ---- files, region, endpoints ---------------------------------------------------------------

std::string profile_name(const std::string& configured) {
  if (!configured.empty()) return configured;
  std::string p = env("AWS_PROFILE");
  return p.empty() ? "default" : p;
}

std::optional<Profile> load_profile(const std::string& name) {
  std::optional<Profile> out;
  if (auto text = read_text(config_file())) {
    auto all = parse_ini(*text, true);
    if (auto it = all.find(name); it != all.end()) out = it->second;
  }
  if (auto text = read_text(credentials_file())) {
    auto all = parse_ini(*text, false);
    if (auto it = all.find(name); it != all.end()) {
      if (!out) out.emplace();
      for (auto& [k, v] : it->second) (*out)[k] = v;
    }
  }
  return out;
}

std::string resolve_region_sync(const std::string& configured, const std::string& profile) {
  if (!configured.empty()) return configured;
  if (std::string r = env("AWS_REGION"); !r.empty()) return r;
  if (std::string r = env("AWS_DEFAULT_REGION"); !r.empty()) return r;
  if (auto p = load_profile(profile_name(profile))) return get(*p, "region");
  return {};
}

awaitable<std::string> resolve_region(HttpClient& http, const std::string& configured,
                                      const std::string& profile) {
  if (std::string r = resolve_region_sync(configured, profile); !r.empty()) co_return r;
  std::string why;
  std::string base = imds_endpoint();
  if (base.empty()) {
    why = "IMDS disabled by AWS_EC2_METADATA_DISABLED";
  } else {
    try {
      std::string token = co_await imds_token(http, base);
      const std::string path = "/latest/meta-data/placement/region";
      HttpResponse r = co_await imds_get(http, base, path, token);
      if (r.status == 200 && !trim(r.body).empty()) co_return trim(r.body);
      why = "IMDS placement/region: " + http_problem(r);
    } catch (const std::exception& e) {
      why = std::string("IMDS: ") + e.what();
    }
  }
  throw std::runtime_error(
      "no AWS region: set `region`, AWS_REGION or AWS_DEFAULT_REGION, or `region` in profile '" +
      profile_name(profile) + "' (" + why + ")");
}

std::string resolve_endpoint(std::string_view service, const std::string& configured,
                             const std::string& region) {
  std::string e = configured;
  if (e.empty()) {
    std::string var = "AWS_ENDPOINT_URL_";
    for (char c : service) var += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    e = env(var.c_str());
  }
  if (e.empty()) e = env("AWS_ENDPOINT_URL");
  if (e.empty()) {
    std::string suffix = region.rfind("cn-", 0) == 0 ? "amazonaws.com.cn" : "amazonaws.com";
    e = "https://" + std::string(service) + "." + region + "." + suffix;
  }
  while (!e.empty() && e.back() == '/') e.pop_back();
  return e;
}

bool force_path_style(std::string_view endpoint, bool configured) {
  if (configured) return true;
  std::string url(endpoint);
  if (url.find("://") == std::string::npos) url = "http://" + url;
  try {
    std::string host = lower(parse_url(url).hostname);
    return host == "localhost" || is_ip_literal(host);
  } catch (const std::exception&) {
    return false;
  }
}

std::optional<std::chrono::system_clock::time_point> parse_iso8601(std::string_view s) {
  std::string str(trim(s));
  int y, mo, d, h, mi, sec, n = 0;
  if (std::sscanf(str.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec, &n) != 6)
    return std::nullopt;
  std::string_view rest = std::string_view(str).substr(static_cast<size_t>(n));
  if (!rest.empty() && rest[0] == '.') {
    rest.remove_prefix(1);
    while (!rest.empty() && std::isdigit(static_cast<unsigned char>(rest[0])))
      rest.remove_prefix(1);
  }
  if (rest != "Z" && rest != "+00:00" && rest != "z") return std::nullopt;
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60) return std::nullopt;
  std::tm tm{};
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = sec;
  return Clock::from_time_t(timegm(&tm));
}

std::optional<std::chrono::system_clock::time_point> parse_http_date(std::string_view s) {
  static constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                            "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  std::string str(trim(s));
  char mon[4] = {0};
  int d, y, h, mi, sec;
  if (std::sscanf(str.c_str(), "%*3s, %d %3s %d %d:%d:%d", &d, mon, &y, &h, &mi, &sec) != 6)
    return std::nullopt;
  int m = -1;
  for (int i = 0; i < 12; ++i)
    if (std::string_view(mon) == kMonths[i]) m = i;
  if (m < 0 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60) return std::nullopt;
  std::tm tm{};
  tm.tm_year = y - 1900;
  tm.tm_mon = m;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = sec;
  return Clock::from_time_t(timegm(&tm));
}

std::string ecs_credentials_url() {
  if (std::string rel = env("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"); !rel.empty())
    return "http://169.254.170.2" + (rel.front() == '/' ? rel : "/" + rel);
  return env("AWS_CONTAINER_CREDENTIALS_FULL_URI");
}

std::string imds_endpoint() {
  if (lower(trim(env("AWS_EC2_METADATA_DISABLED"))) == "true") return {};
  std::string e = env("AWS_EC2_METADATA_SERVICE_ENDPOINT");
  if (e.empty()) e = "http://169.254.169.254";
  while (!e.empty() && e.back() == '/') e.pop_back();
  return e;
}

}  // namespace logship::aws
