#include "agent/aws/client.h"

#include "agent/core/secret.h"

#include <algorithm>
#include <cctype>

#include <simdjson.h>
#include <spdlog/spdlog.h>

#include "agent/aws/xml.h"
#include "agent/core/log.h"
#include "agent/pipeline/lifecycle.h"

namespace logship::aws {
namespace {

using Clock = std::chrono::system_clock;
using namespace std::chrono_literals;

/// Beyond this difference between our signing time and the server's Date, a bodiless 403 is
/// taken as a clock-skew rejection (AWS allows 15 minutes).
constexpr auto kSkewSuspicion = 5min;

std::string trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return std::string(s);
}

// Text from a server: secrets and credential-shaped values (an echoed Authorization header,
// X-Amz-Security-Token, Signature=, Credential=) scrubbed, control characters blanked, capped.
std::string clip(std::string_view s, size_t max = 300) {
  return scrub(s, max);
}

std::string code_for_status(long status) {
  switch (status) {
    case 400:
      return "BadRequest";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "NotFound";
    case 409:
      return "Conflict";
    case 412:
      return "PreconditionFailed";
    case 416:
      return "InvalidRange";
    case 429:
      return "TooManyRequests";
    case 500:
      return "InternalError";
    case 502:
      return "BadGateway";
    case 503:
      return "ServiceUnavailable";
    case 504:
      return "GatewayTimeout";
    default:
      return "HTTP" + std::to_string(status);
  }
}

/// "com.amazonaws.sqs#QueueDoesNotExist" / "ThrottlingException:http://…" → the bare code.
std::string bare_code(std::string_view t) {
  if (size_t hash = t.rfind('#'); hash != std::string_view::npos) t = t.substr(hash + 1);
  if (size_t colon = t.find(':'); colon != std::string_view::npos) t = t.substr(0, colon);
  return std::string(t);
}

bool is_skew_error(const AwsError& e) {
  if (e.code == "RequestTimeTooSkewed" || e.code == "RequestExpired" ||
      e.code == "RequestInTheFuture")
    return true;
  return e.code == "InvalidSignatureException" &&
         (e.message.find("Signature expired") != std::string::npos ||
          e.message.find("not yet current") != std::string::npos);
}

bool is_expired_token(const AwsError& e) {
  return e.code == "ExpiredToken" || e.code == "ExpiredTokenException" ||
         e.code == "TokenRefreshRequired";
}

/// The server's clock from the response: the Date header, else S3's <ServerTime>.
std::optional<Clock::time_point> server_time(const HttpResponse& r) {
  if (auto d = r.header("date"))
    if (auto t = parse_http_date(*d)) return t;
  if (auto st = xml_text(r.body, "ServerTime")) return parse_iso8601(*st);
  return std::nullopt;
}

/// scheme://host/path of a URL, without the query (for log lines).
std::string where(const HttpRequest& r) {
  size_t q = r.url.find('?');
  return r.method + " " + (q == std::string::npos ? r.url : r.url.substr(0, q));
}

}  // namespace

std::string AwsError::to_string() const {
  std::string s = code.empty() ? std::string("error") : code;
  if (!message.empty()) s += ": " + message;
  s += status ? " (HTTP " + std::to_string(status) : std::string(" (transport error");
  if (!request_id.empty()) s += ", request id " + request_id;
  s += ")";
  return s;
}

std::optional<AwsError> parse_aws_error(const HttpResponse& r) {
  AwsError e;
  e.status = r.status;
  if (r.transport_error()) {
    e.code = "TransportError";
    e.message = clip(r.error);
    return e;
  }
  if (r.status < 400) return std::nullopt;
  std::string body = trim(r.body);
  if (!body.empty() && body.front() == '<') {
    e.code = clip(xml_text(body, "Code").value_or(""), 100);
    e.message = clip(xml_text(body, "Message").value_or(""));
    e.request_id = clip(xml_text(body, "RequestId").value_or(""), 100);
  } else if (!body.empty() && body.front() == '{') {
    simdjson::dom::parser parser;
    simdjson::dom::element doc;
    if (parser.parse(body).get(doc) == simdjson::SUCCESS) {
      std::string_view v;
      if (doc["__type"].get(v) == simdjson::SUCCESS || doc["code"].get(v) == simdjson::SUCCESS ||
          doc["Code"].get(v) == simdjson::SUCCESS)
        e.code = clip(bare_code(v), 100);
      if (doc["message"].get(v) == simdjson::SUCCESS || doc["Message"].get(v) == simdjson::SUCCESS)
        e.message = clip(v);
    }
  }
  if (e.code.empty())
    if (auto t = r.header("x-amzn-errortype")) e.code = clip(bare_code(*t), 100);
  if (e.code.empty()) e.code = code_for_status(r.status);
  if (e.request_id.empty()) {
    if (auto id = r.header("x-amz-request-id"))
      e.request_id = clip(*id, 100);
    else if (auto id2 = r.header("x-amzn-requestid"))
      e.request_id = clip(*id2, 100);
  }
  return e;
}

bool retryable(const AwsError& e) {
  if (e.status == 0) return true;  // connection refused/reset, timeout
  static constexpr std::string_view kCodes[] = {"SlowDown",
                                                "Throttling",
                                                "ThrottlingException",
                                                "ThrottledException",
                                                "RequestLimitExceeded",
                                                "TooManyRequestsException",
                                                "RequestThrottled",
                                                "RequestThrottledException",
                                                "ProvisionedThroughputExceededException",
                                                "InternalError",
                                                "InternalFailure",
                                                "ServiceUnavailable",
                                                "RequestTimeout",
                                                "RequestTimeoutException",
                                                "KMSInternalException",
                                                "EC2ThrottledException"};
  for (std::string_view c : kCodes)
    if (e.code == c) return true;
  return e.status == 429 || e.status == 500 || e.status == 502 || e.status == 503 ||
         e.status == 504;
}

AwsClient::AwsClient(HttpClient& http, CredentialProvider& creds,
                     std::function<std::chrono::system_clock::time_point()> now)
    : http_(http), creds_(creds), now_(std::move(now)), rng_(std::random_device{}()) {}

std::chrono::system_clock::time_point AwsClient::now() const {
  return now_ ? now_() : Clock::now();
}

std::chrono::milliseconds AwsClient::backoff(const SendOptions& o, int retry) {
  int64_t cap = o.max_backoff.count();
  int64_t ceiling = o.base_backoff.count();
  for (int i = 1; i < retry && ceiling < cap; ++i) ceiling *= 2;
  ceiling = std::clamp<int64_t>(ceiling, 0, cap);
  std::lock_guard lk(rng_mu_);
  return std::chrono::milliseconds(std::uniform_int_distribution<int64_t>(0, ceiling)(rng_));
}

awaitable<HttpResponse> AwsClient::send(HttpRequest req, const SendOptions& opts) {
  const std::string* body = req.body_ref ? req.body_ref : &req.body;
  int failures = 0;
  bool skew_retried = false, token_retried = false;
  HttpResponse last;
  for (;;) {
    HttpRequest r;
    r.method = req.method;
    r.url = req.url;
    r.headers = req.headers;
    r.body_ref = body;  // no copy per attempt: `req` lives in this frame
    r.timeout = req.timeout;
    Credentials c = co_await creds_.get();
    SigningParams p;
    p.region = opts.region;
    p.service = opts.service;
    p.unsigned_payload = opts.unsigned_payload;
    p.time = now() + clock_offset();
    sign_request(r, c, p);
    attempts_.fetch_add(1, std::memory_order_relaxed);
    last = co_await http_.send(std::move(r));
    if (!last.transport_error() && last.status < 400) co_return last;

    AwsError err = *parse_aws_error(last);
    std::optional<Clock::time_point> server = server_time(last);
    bool skew = is_skew_error(err);
    if (!skew && server && err.status == 403 && trim(last.body).empty()) {
      auto diff = *server - p.time;
      skew = diff > kSkewSuspicion || diff < -kSkewSuspicion;
    }
    if (skew && !skew_retried && server) {
      skew_retried = true;
      auto offset = std::chrono::duration_cast<std::chrono::seconds>(*server - now());
      clock_offset_s_.store(offset.count(), std::memory_order_relaxed);
      spdlog::warn("AWS {} rejected the request time ({}); local clock is {} s off, corrected",
                   opts.service, err.code, -offset.count());
      continue;
    }
    if (is_expired_token(err) && !token_retried) {
      token_retried = true;
      creds_.invalidate();
      spdlog::info("AWS {} answered {}; refreshing credentials", opts.service, err.code);
      continue;
    }
    if (!retryable(err)) co_return last;
    if (++failures >= opts.max_attempts) co_return last;
    if (opts.cancelled && opts.cancelled()) co_return last;
    auto delay = backoff(opts, failures);
    uint64_t suppressed = 0;
    if (log_allowed("aws-retry:" + opts.service, std::chrono::seconds(10), &suppressed))
      spdlog::warn("{} failed: {}, retry {} in {:.1f} s{}", where(req), err.to_string(), failures,
                   static_cast<double>(delay.count()) / 1000.0,
                   suppressed ? fmt::format(" ({} similar suppressed)", suppressed) : "");
    if (opts.lifecycle) {
      if (co_await opts.lifecycle->sleep(delay)) co_return last;
    } else {
      asio::steady_timer t(co_await asio::this_coro::executor);
      t.expires_after(delay);
      co_await t.async_wait(asio::use_awaitable);
    }
    if (opts.cancelled && opts.cancelled()) co_return last;
  }
}

awaitable<HttpResponse> send_or_fail(AwsClient& client, HttpRequest req, const SendOptions& opts) {
  try {
    co_return co_await client.send(std::move(req), opts);
  } catch (const std::exception& e) {
    HttpResponse r;
    r.error = std::string("no AWS credentials: ") + e.what();
    co_return r;
  }
}

}  // namespace logship::aws
