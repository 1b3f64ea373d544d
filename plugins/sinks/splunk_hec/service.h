#pragma once
// HecService: turns a HecRequest into an HTTP POST to one HEC endpoint and maps the response to
// an outcome (delivered / retry / auth problem / rejected), following HEC.md §1.7–1.8.
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <vector>
#include <optional>
#include <string>

#include "agent/core/asio.h"
#include "agent/net/http_client.h"
#include "plugins/sinks/splunk_hec/config.h"
#include "plugins/sinks/splunk_hec/request_builder.h"

namespace logship {

enum class HecOutcome : uint8_t {
  kDelivered,  ///< 2xx
  kRetry,      ///< transport error, timeout, 408, 429, 5xx: resend the same body later
  kAuth,       ///< 401 / 403 (and 404: wrong path or HEC disabled): keep the data, retry slowly
  kReject,     ///< other 4xx: the data is refused, dead-letter it
};

struct HecResult {
  HecOutcome outcome = HecOutcome::kRetry;
  long status = 0;
  int code = -1;      ///< HEC `code`, -1 when absent
  std::string text;   ///< HEC `text`, or the transport error
  std::string error;  ///< metric label: http_503, connection, timeout, tls, ...
  std::optional<std::chrono::seconds> retry_after;
  std::optional<uint64_t> ack_id;
  std::optional<int64_t> invalid_event_number;
  double seconds = 0;
  /// "HTTP 503, code 9: Server is busy" / "connection: Couldn't connect to server: ...".
  std::string describe() const;
};

/// Maps an HTTP response to an outcome (pure).
HecResult classify_hec_response(const HttpResponse& resp);

/// A random version-4 GUID (upper case), the sink's HEC channel.
std::string make_hec_channel();

/// Answer to one `/services/collector/ack` poll.
struct HecAckPoll {
  long status = 0;  ///< 0: transport error
  int code = -1;    ///< HEC code of an error answer (14 = acks disabled for the token)
  std::vector<uint64_t> acked;  ///< ids reported true (Splunk reports each true once)
  std::string error;            ///< describes a failed poll
};

/// Answer to `/services/collector/health`.
struct HecHealth {
  long status = 0;  ///< 0: transport error
  int code = -1;
  std::string text;
};

class HecService {
 public:
  HecService(Executor ex, const HecSinkConfig& cfg, std::string endpoint, std::string channel);

  /// Sends `req` once. Never throws for transport or HTTP errors.
  awaitable<HecResult> send(const HecRequest& req);
  /// POST /services/collector/ack?channel=<channel> {"acks":[ids]} on the same connections and
  /// cookies as the data (load balancers keep ack state on the node that took the request).
  awaitable<HecAckPoll> poll_acks(const std::vector<uint64_t>& ids);
  /// GET /services/collector/health.
  awaitable<HecHealth> health();
  /// Aborts requests in flight (they complete as kRetry transport errors).
  void shutdown() { client_.shutdown(); }
  const std::string& endpoint() const { return endpoint_; }
  const std::string& channel() const { return channel_; }

 private:
  std::string url_for(const HecRequest& req) const;
  /// Cookies the server set (`Set-Cookie`, e.g. AWS ALB stickiness or Splunk's channel_cookie),
  /// sent back on every request of this endpoint.
  void remember_cookies(const HttpResponse& resp);
  void add_common_headers(HttpRequest& r);
  std::mutex cookie_mu_;
  std::map<std::string, std::string> cookies_;
  HttpClient client_;
  std::string endpoint_;
  std::string channel_;
  std::shared_ptr<Secret> token_;
  bool raw_;
  std::chrono::milliseconds timeout_;
};

}  // namespace logship
