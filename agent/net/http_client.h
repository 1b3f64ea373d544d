#pragma once
// HttpClient: libcurl multi driven by the Boost.Asio loop (CURLMOPT_SOCKETFUNCTION /
// CURLMOPT_TIMERFUNCTION), with keep-alive connection reuse, TLS through OpenSSL with
// verification on by default, per-request timeouts, HTTPS_PROXY / NO_PROXY honoured (libcurl's
// environment handling), and an awaitable API. Base of the HEC sink and the AWS clients.
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "agent/core/asio.h"

namespace logship {

struct TlsOptions {
  bool verify = true;               ///< verify peer certificate and host name
  std::string ca_file;              ///< PEM bundle; empty = system default
  std::string ca_dir;               ///< hashed CA directory
  std::string cert_file;            ///< client certificate (mTLS)
  std::string key_file;             ///< client key (mTLS)
  std::string server_name;          ///< SNI / name to verify instead of the URL host
  std::string min_version = "1.2";  ///< "1.2" | "1.3"
};

struct HttpRequest {
  std::string method = "POST";
  std::string url;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;  ///< sent as is (already compressed when Content-Encoding is set)
  /// When set, sent instead of `body` without a copy; it must stay valid until send() completes
  /// (the HEC sink keeps each request body for retries anyway).
  const std::string* body_ref = nullptr;
  std::chrono::milliseconds timeout{30000};
  /// 0 = libcurl's default. Short for metadata endpoints, so a host without them falls through.
  std::chrono::milliseconds connect_timeout{0};
  /// Never through a proxy (instance metadata and container credentials: link-local addresses).
  bool no_proxy = false;
  /// Send the path exactly as given: no collapsing of `/./` and `/../` (S3 keys may hold them,
  /// and the SigV4 signature covers the path as written).
  bool path_as_is = false;
};

struct HttpResponse {
  long status = 0;  ///< 0 when the transport failed
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  ///< names lower-cased
  std::string error;  ///< transport error text ("" when status != 0), never containing secrets
  int curl_code = 0;  ///< CURLcode
  double total_seconds = 0;
  /// First header with this lower-case name.
  std::optional<std::string> header(std::string_view name) const;
  bool transport_error() const { return status == 0; }
};

class HttpClient {
 public:
  /// `max_connections`: keep-alive pool size (CURLMOPT_MAX_HOST_CONNECTIONS).
  HttpClient(Executor ex, TlsOptions tls, int max_connections = 8);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  /// Performs the request; never throws for transport or HTTP errors (see HttpResponse).
  awaitable<HttpResponse> send(HttpRequest req);

  /// Aborts every request in flight (they complete with a transport error).
  void shutdown();

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace logship
