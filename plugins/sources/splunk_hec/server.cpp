// The splunk_hec source's HTTP(S) server: Boost.Beast, one coroutine per connection, each on its
// own strand. The only translation unit of the plugin that includes Beast; parsing is in
// parser.cpp, ackId state in acks.cpp.
#include "agent/core/asio.h"
#include "agent/net/listen_address.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <xxhash.h>

#include <array>
#include <atomic>
#include <list>
#include <mutex>
#include <optional>
#include <stdexcept>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include "agent/pipeline/wait_queue.h"
#include "plugins/sources/splunk_hec/acks.h"
#include "plugins/sources/splunk_hec/parser.h"
#include "plugins/sources/splunk_hec/source.h"

namespace logship::hec_receiver {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using asio::redirect_error;
using asio::use_awaitable;

constexpr auto kLingerTime = std::chrono::seconds(5);
constexpr size_t kLingerBytes = 64u << 20;
constexpr std::string_view kNotFoundText = "The requested URL was not found on this server.";

enum class Route { kNotFound, kEvent, kRaw, kAck, kHealth };

Route route_of(std::string_view path) {
  constexpr std::string_view kBase = "/services/collector";
  if (path.size() > kBase.size() && path.back() == '/') path.remove_suffix(1);
  if (path.substr(0, kBase.size()) != kBase) return Route::kNotFound;
  std::string_view rest = path.substr(kBase.size());
  if (rest.empty() || rest == "/event" || rest == "/event/1.0") return Route::kEvent;
  if (rest == "/raw" || rest == "/raw/1.0") return Route::kRaw;
  if (rest == "/ack") return Route::kAck;
  if (rest == "/health" || rest == "/health/1.0") return Route::kHealth;
  return Route::kNotFound;
}

std::string_view sv(beast::string_view s) {
  return {s.data(), s.size()};
}

std::string trim_lower(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  std::string out(s);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

/// An answer to a request.
struct Reply {
  int status = 200;
  std::string body;
  bool close = false;        ///< Connection: close after it
  bool retry_after = false;  ///< Retry-After: 1 (busy answers)
  bool allow_post = false;   ///< Allow: POST (405)
};

Reply hec_reply(HecCode code, int64_t invalid_event_number = -1,
                std::optional<uint64_t> ack_id = std::nullopt) {
  Reply r;
  r.status = hec_http_status(code);
  r.body = hec_reply_json(code, invalid_event_number, ack_id);
  r.retry_after = r.status == 503 || r.status == 429;
  return r;
}

Reply plain_reply(int status, std::string_view text) {
  Reply r;
  r.status = status;
  r.body = hec_plain_reply_json(text, status);
  return r;
}

std::string client_ip(const tcp::endpoint& ep) {
  auto a = ep.address();
  if (a.is_v6() && a.to_v6().is_v4_mapped())
    return asio::ip::make_address_v4(asio::ip::v4_mapped, a.to_v6()).to_string();
  return a.to_string();
}

uint64_t random_seed() {
  uint64_t v = 0;
  if (RAND_bytes(reinterpret_cast<unsigned char*>(&v), sizeof v) != 1)
    v = static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
  return v;
}

ssl::context make_ssl_context(const HecSourceConfig& c) {
  ssl::context ctx(ssl::context::tls_server);
  ctx.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                  ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 |
                  ssl::context::single_dh_use);
  SSL_CTX_set_min_proto_version(ctx.native_handle(), TLS1_2_VERSION);
  boost::system::error_code ec;
  ctx.use_certificate_chain_file(c.tls_cert_file, ec);
  if (ec)
    throw std::runtime_error("cannot load TLS certificate " + c.tls_cert_file + ": " +
                             ec.message());
  ctx.use_private_key_file(c.tls_key_file, ssl::context::pem, ec);
  if (ec)
    throw std::runtime_error("cannot load TLS private key " + c.tls_key_file + ": " + ec.message());
  if (SSL_CTX_check_private_key(ctx.native_handle()) != 1)
    throw std::runtime_error("TLS private key " + c.tls_key_file +
                             " does not match the certificate " + c.tls_cert_file);
  if (!c.tls_ca_file.empty()) {
    ctx.load_verify_file(c.tls_ca_file, ec);
    if (ec)
      throw std::runtime_error("cannot load TLS CA file " + c.tls_ca_file + ": " + ec.message());
    if (STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(c.tls_ca_file.c_str()))
      SSL_CTX_set_client_CA_list(ctx.native_handle(), names);
    ctx.set_verify_mode(ssl::verify_peer | ssl::verify_fail_if_no_peer_cert);
  }
  return ctx;
}

/// What the stop watcher needs to close an idle connection. Touched only on the connection's
/// strand.
struct Conn {
  Executor ex;
  beast::tcp_stream* tcp = nullptr;
  bool idle = false;  ///< waiting for a request (or a handshake): closable at shutdown
};

/// Per-request facts taken from the header.
struct RequestInfo {
  Route route = Route::kNotFound;
  std::string channel;
  uint64_t token = 0;  // seeded hash of the request's token (its channels are its own)
  std::string host, source, sourcetype, index;  // query parameters
  bool gzip = false;
};

class HecSource final : public Source {
 public:
  HecSource(HecSourceConfig cfg, const ComponentContext& ctx)
      : cfg_(std::move(cfg)),
        ctx_(ctx),
        metrics_(ctx.id, ctx.type, "source"),
        acks_(std::make_shared<HecAckRegistry>(HecAckRegistry::Limits{
            cfg_.max_acks_per_channel, cfg_.max_ack_channels, cfg_.max_ack_channels_per_token,
            cfg_.max_ack_channels_per_client, cfg_.ack_channel_idle_timeout})),
        token_seed_(random_seed()) {}

  awaitable<void> run(Fanout& out) override;
  bool ready() const override { return ready_.load(std::memory_order_acquire); }

 private:
  awaitable<void> accept_loop(Fanout& out);
  awaitable<void> watch_stop();
  awaitable<void> session(tcp::socket sock, Fanout& out, std::shared_ptr<Conn> conn);
  template <class Stream>
  awaitable<bool> serve_requests(Stream& stream, Conn& conn, Fanout& out, const std::string& ip);
  template <class Stream>
  awaitable<bool> write_reply(Stream& stream, const Reply& r, unsigned version, bool keep_alive);
  awaitable<void> linger(beast::tcp_stream& tcp, Conn& conn);
  std::optional<Reply> check_request(const http::request<http::string_body>& req,
                                     std::string_view query, RequestInfo& info,
                                     const std::string& ip);
  awaitable<Reply> handle(RequestInfo& info, std::string& body, const std::string& ip, Fanout& out);
  bool token_known(std::string_view token) const;
  Reply reject(HecCode code, const std::string& ip, std::string_view detail = {},
               int64_t invalid_event_number = -1);
  Reply reject_plain(int status, std::string_view text, std::string_view error,
                     const std::string& ip);
  bool stopping() const { return ctx_.lifecycle && ctx_.lifecycle->stopping(); }

  HecSourceConfig cfg_;
  ComponentContext ctx_;
  ComponentMetrics metrics_;
  std::shared_ptr<HecAckRegistry> acks_;
  const uint64_t token_seed_;  // acknowledgement channels are per token, known by a seeded hash
  std::atomic<bool> ready_{false};
  std::atomic<uint64_t> pending_body_bytes_{0};
  std::optional<ssl::context> ssl_;
  std::optional<Executor> strand_;
  std::unique_ptr<tcp::acceptor> acceptor_;

  std::mutex mu_;  // guards sessions_, conns_, watcher_running_
  WaitQueue done_wq_;
  size_t sessions_ = 0;
  bool watcher_running_ = false;
  std::list<std::shared_ptr<Conn>> conns_;
};

awaitable<void> HecSource::run(Fanout& out) {
  if (cfg_.tls_enabled()) ssl_.emplace(make_ssl_context(cfg_));
  if (!ctx_.lifecycle) throw std::runtime_error("splunk_hec source needs a lifecycle");
  tcp::endpoint ep;
  try {
    ep = parse_listen_address(cfg_.address, ctx_.executor);
  } catch (const std::exception& e) {
    throw std::runtime_error(fmt::format("source {}: {}", ctx_.id, e.what()));
  }
  strand_ = Executor(asio::make_strand(ctx_.executor));
  acceptor_ = std::make_unique<tcp::acceptor>(*strand_);
  boost::system::error_code ec;
  acceptor_->open(ep.protocol(), ec);
  if (!ec) acceptor_->set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_->bind(ep, ec);
  if (!ec) acceptor_->listen(asio::socket_base::max_listen_connections, ec);
  if (ec)
    throw std::runtime_error(
        fmt::format("source {}: cannot listen on {}: {}", ctx_.id, cfg_.address, ec.message()));
  spdlog::info("[{}] HEC receiver listening on {}://{}:{}{}", ctx_.id, ssl_ ? "https" : "http",
               ep.address().to_string(), acceptor_->local_endpoint(ec).port(),
               cfg_.acks_enabled ? " (acknowledgements on)" : "");
  co_await asio::co_spawn(*strand_, accept_loop(out), use_awaitable);
  spdlog::info("[{}] HEC receiver stopped", ctx_.id);
}

awaitable<void> HecSource::accept_loop(Fanout& out) {
  {
    std::lock_guard lk(mu_);
    watcher_running_ = true;
  }
  asio::co_spawn(*strand_, watch_stop(), asio::detached);
  ready_.store(true, std::memory_order_release);
  while (!stopping()) {
    boost::system::error_code ec;
    tcp::socket sock = co_await acceptor_->async_accept(Executor(asio::make_strand(ctx_.executor)),
                                                        redirect_error(use_awaitable, ec));
    if (ec) {
      if (stopping() || !acceptor_->is_open()) break;
      report_error(metrics_, "receive", "accept", "accept failed: " + ec.message());
      co_await ctx_.lifecycle->sleep(std::chrono::milliseconds(100));
      continue;
    }
    auto conn = std::make_shared<Conn>();
    conn->ex = sock.get_executor();
    bool admitted = false;
    {
      std::lock_guard lk(mu_);
      if (sessions_ < cfg_.max_connections) {
        ++sessions_;
        conns_.push_back(conn);
        admitted = true;
      }
    }
    if (!admitted) {
      report_error(
          metrics_, "receive", "too_many_connections",
          fmt::format("closed a new connection: {} connections open", cfg_.max_connections));
      sock.close(ec);
      continue;
    }
    Executor ex = sock.get_executor();
    asio::co_spawn(ex, session(std::move(sock), out, conn), asio::detached);
  }
  ready_.store(false, std::memory_order_release);
  boost::system::error_code ec;
  if (acceptor_->is_open()) acceptor_->close(ec);
  for (;;) {
    {
      std::lock_guard lk(mu_);
      if (sessions_ == 0 && !watcher_running_) break;
    }
    co_await done_wq_.wait(mu_, [this] { return sessions_ == 0 && !watcher_running_; });
  }
}

awaitable<void> HecSource::watch_stop() {
  // Asio 1.18 cannot cancel one operation: on stop, close the acceptor (its pending accept
  // completes with an error) and cancel the reads of idle keep-alive connections.
  co_await ctx_.lifecycle->sleep(std::chrono::hours(24 * 365 * 10));
  boost::system::error_code ec;
  acceptor_->close(ec);
  std::vector<std::shared_ptr<Conn>> conns;
  {
    std::lock_guard lk(mu_);
    conns.assign(conns_.begin(), conns_.end());
  }
  for (auto& c : conns)
    asio::post(c->ex, [c] {
      if (c->idle && c->tcp) c->tcp->cancel();
    });
  std::lock_guard lk(mu_);
  watcher_running_ = false;
  done_wq_.notify_all();
}

awaitable<void> HecSource::session(tcp::socket sock, Fanout& out, std::shared_ptr<Conn> conn) {
  struct Done {
    HecSource* self;
    std::shared_ptr<Conn> conn;
    ~Done() {
      conn->tcp = nullptr;
      std::lock_guard lk(self->mu_);
      self->conns_.remove(conn);
      --self->sessions_;
      self->done_wq_.notify_all();
    }
  } done{this, conn};
  boost::system::error_code ec;
  auto ep = sock.remote_endpoint(ec);
  const std::string ip = ec ? std::string() : client_ip(ep);
  sock.set_option(tcp::no_delay(true), ec);

  if (ssl_) {
    beast::ssl_stream<beast::tcp_stream> stream(beast::tcp_stream(std::move(sock)), *ssl_);
    struct Detach {
      Conn& c;
      ~Detach() { c.tcp = nullptr; }
    } detach{*conn};
    auto& tcp = beast::get_lowest_layer(stream);
    conn->tcp = &tcp;
    conn->idle = true;
    if (stopping()) co_return;
    tcp.expires_after(cfg_.handshake_timeout);
    co_await stream.async_handshake(ssl::stream_base::server, redirect_error(use_awaitable, ec));
    conn->idle = false;
    if (ec) {
      report_error(metrics_, "receive", "tls_handshake",
                   fmt::format("TLS handshake with {} failed: {}", ip, ec.message()));
      co_return;
    }
    bool graceful = co_await serve_requests(stream, *conn, out, ip);
    if (graceful) {
      conn->idle = true;
      tcp.expires_after(std::chrono::seconds(2));
      co_await stream.async_shutdown(redirect_error(use_awaitable, ec));
    }
    tcp.close();
  } else {
    beast::tcp_stream stream(std::move(sock));
    struct Detach {
      Conn& c;
      ~Detach() { c.tcp = nullptr; }
    } detach{*conn};
    conn->tcp = &stream;
    if (co_await serve_requests(stream, *conn, out, ip))
      stream.socket().shutdown(tcp::socket::shutdown_send, ec);
    stream.close();
  }
}

template <class Stream>
awaitable<bool> HecSource::serve_requests(Stream& stream, Conn& conn, Fanout& out,
                                          const std::string& ip) {
  auto& tcp = beast::get_lowest_layer(stream);
  beast::flat_buffer buf;
  boost::system::error_code ec;
  for (;;) {
    if (stopping()) co_return true;
    http::request_parser<http::string_body> parser;
    parser.header_limit(static_cast<std::uint32_t>(cfg_.max_header_bytes));
    parser.body_limit(cfg_.max_body_bytes);
    conn.idle = true;
    tcp.expires_after(cfg_.idle_timeout);
    co_await http::async_read_header(stream, buf, parser, redirect_error(use_awaitable, ec));
    conn.idle = false;
    if (ec) {
      if (ec == http::error::header_limit) {
        Reply r = reject_plain(431, "Request header fields too large", "header_too_large", ip);
        if (co_await write_reply(stream, r, 11, false)) co_await linger(tcp, conn);
        co_return false;
      }
      if (ec == http::error::body_limit) {  // Content-Length over max_body_bytes
        Reply r = reject_plain(413, "Content too large", "body_too_large", ip);
        if (co_await write_reply(stream, r, 11, false)) co_await linger(tcp, conn);
        co_return false;
      }
      if (ec.category() == http::make_error_code(http::error::end_of_stream).category() &&
          ec != http::error::end_of_stream && ec != http::error::partial_message) {
        Reply r = reject_plain(400, "Bad request", "bad_request", ip);
        if (co_await write_reply(stream, r, 11, false)) co_await linger(tcp, conn);
      }
      co_return false;  // closed by the peer, idle timeout, shutdown, or a broken request
    }
    auto& req = parser.get();
    const unsigned version = req.version();
    const bool keep_alive = req.keep_alive();
    std::string_view target = sv(req.target());
    size_t qpos = target.find('?');
    std::string_view path = target.substr(0, qpos);
    std::string_view query =
        qpos == std::string_view::npos ? std::string_view{} : target.substr(qpos + 1);
    RequestInfo info;
    info.route = route_of(path);
    std::optional<Reply> early = check_request(req, query, info, ip);
    auto content_length = parser.content_length();
    const bool has_body = (content_length && *content_length > 0) || parser.chunked();
    const bool expect_continue = beast::iequals(req[http::field::expect], "100-continue");
    if (!early && content_length && *content_length > cfg_.max_body_bytes)
      early = reject_plain(413, "Content too large", "body_too_large", ip);

    // Memory of the bodies in flight, all connections together: reserved before the body is
    // read (its Content-Length, or max_body_bytes when chunked; max_body_bytes more for a gzip
    // body, inflated later), released once the request is answered.
    uint64_t reserve = 0;
    if (!early && has_body) {
      reserve = content_length ? *content_length : cfg_.max_body_bytes;
      if (info.gzip) reserve += cfg_.max_body_bytes;
      uint64_t now = pending_body_bytes_.fetch_add(reserve, std::memory_order_acq_rel);
      if (now + reserve > cfg_.max_pending_body_bytes) {
        pending_body_bytes_.fetch_sub(reserve, std::memory_order_acq_rel);
        reserve = 0;
        early =
            reject(HecCode::kServerBusy, ip, "request bodies in memory at max_pending_body_bytes");
      }
    }
    struct Release {
      std::atomic<uint64_t>& pending;
      uint64_t& n;
      ~Release() {
        if (n) pending.fetch_sub(n, std::memory_order_acq_rel);
      }
    } release{pending_body_bytes_, reserve};

    if (early) {
      // Rejected before its body is read (wrong token, unknown path, 413, busy): the body is
      // never buffered. A body of known length within max_body_bytes is read and discarded
      // 64 KiB at a time, and the connection stays open. Otherwise (chunked, too large,
      // 100-continue) the answer goes out and the connection closes gracefully: lingering
      // discards what the client still sends, so it sees the answer rather than a reset.
      if (has_body &&
          (expect_continue || !content_length || *content_length > cfg_.max_body_bytes)) {
        if (co_await write_reply(stream, *early, version, false)) co_await linger(tcp, conn);
        co_return false;
      }
      if (has_body) {
        uint64_t left = *content_length;
        uint64_t from_buf = std::min<uint64_t>(left, buf.size());
        buf.consume(static_cast<size_t>(from_buf));
        left -= from_buf;
        tcp.expires_after(cfg_.idle_timeout);
        while (left > 0) {
          // Never past this body: bytes of a pipelined next request stay in `buf`.
          auto space = buf.prepare(static_cast<size_t>(std::min<uint64_t>(left, 64 * 1024)));
          size_t n = co_await stream.async_read_some(space, redirect_error(use_awaitable, ec));
          if (ec) co_return false;
          buf.commit(n);
          buf.consume(n);
          left -= n;
        }
      }
      const bool again = keep_alive && !early->close && !stopping();
      if (!co_await write_reply(stream, *early, version, again)) co_return false;
      if (!again) co_return true;
      continue;
    }

    if (expect_continue) {
      http::response<http::empty_body> cont{http::status::continue_, version};
      tcp.expires_after(cfg_.idle_timeout);
      co_await http::async_write(stream, cont, redirect_error(use_awaitable, ec));
      if (ec) co_return false;
    }
    tcp.expires_after(cfg_.idle_timeout);
    co_await http::async_read(stream, buf, parser, redirect_error(use_awaitable, ec));
    if (ec) {
      if (ec == http::error::body_limit) {
        Reply r = reject_plain(413, "Content too large", "body_too_large", ip);
        if (co_await write_reply(stream, r, version, false)) co_await linger(tcp, conn);
      } else if (ec.category() == http::make_error_code(http::error::end_of_stream).category() &&
                 ec != http::error::end_of_stream && ec != http::error::partial_message) {
        // Broken framing (a chunk size that is not hex, or too long): answered, then closed.
        Reply r = reject_plain(400, "Bad request", "bad_request", ip);
        if (co_await write_reply(stream, r, version, false)) co_await linger(tcp, conn);
      }
      co_return false;
    }
    std::string body = std::move(parser.get().body());
    tcp.expires_never();  // sending into the pipeline may wait (backpressure)
    Reply r = co_await handle(info, body, ip, out);
    const bool again = keep_alive && !r.close && !stopping();
    if (!co_await write_reply(stream, r, version, again)) co_return false;
    if (!again) co_return true;
  }
}

template <class Stream>
awaitable<bool> HecSource::write_reply(Stream& stream, const Reply& r, unsigned version,
                                       bool keep_alive) {
  http::response<http::string_body> res{static_cast<http::status>(r.status), version};
  res.set(http::field::server, "logship");
  res.set(http::field::content_type, "application/json; charset=UTF-8");
  if (r.retry_after) res.set(http::field::retry_after, "1");
  if (r.allow_post) res.set(http::field::allow, "POST");
  res.keep_alive(keep_alive);
  res.body() = r.body;
  res.prepare_payload();
  beast::get_lowest_layer(stream).expires_after(cfg_.idle_timeout);
  boost::system::error_code ec;
  co_await http::async_write(stream, res, redirect_error(use_awaitable, ec));
  co_return !ec;
}

awaitable<void> HecSource::linger(beast::tcp_stream& tcp, Conn& conn) {
  boost::system::error_code ec;
  tcp.socket().shutdown(tcp::socket::shutdown_send, ec);
  std::array<char, 16384> scratch;
  size_t total = 0;
  conn.idle = true;
  tcp.expires_after(kLingerTime);
  while (total < kLingerBytes) {
    size_t n =
        co_await tcp.async_read_some(asio::buffer(scratch), redirect_error(use_awaitable, ec));
    if (ec) break;
    total += n;
  }
}

bool HecSource::token_known(std::string_view token) const {
  bool found = false;
  for (const auto& s : cfg_.tokens) {
    std::string v = s->value();  // a tokens_file holds one token per line (re-read on SIGHUP)
    for (std::string_view t : secret_lines(v))
      if (t.size() == token.size() && CRYPTO_memcmp(t.data(), token.data(), t.size()) == 0)
        found = true;
  }
  return found;
}

Reply HecSource::reject(HecCode code, const std::string& ip, std::string_view detail,
                        int64_t invalid_event_number) {
  report_error(metrics_, "receive", hec_error_name(code),
               fmt::format("rejected a request from {}: {} (HTTP {}, code {}){}{}", ip,
                           hec_text(code), hec_http_status(code), static_cast<int>(code),
                           detail.empty() ? "" : ": ", detail));
  return hec_reply(code, invalid_event_number);
}

Reply HecSource::reject_plain(int status, std::string_view text, std::string_view error,
                              const std::string& ip) {
  report_error(metrics_, "receive", error,
               fmt::format("rejected a request from {}: {} (HTTP {})", ip, text, status));
  return plain_reply(status, text);
}

std::optional<Reply> HecSource::check_request(const http::request<http::string_body>& req,
                                              std::string_view query, RequestInfo& info,
                                              const std::string& ip) {
  switch (info.route) {
    case Route::kNotFound:
      return reject_plain(404, kNotFoundText, "not_found", ip);
    case Route::kHealth:
      if (stopping()) return hec_reply(HecCode::kShuttingDown);
      return hec_reply(HecCode::kHealthy);
    default:
      break;
  }
  if (req.method() != http::verb::post) {
    Reply r = reject_plain(405, "Method not allowed", "method_not_allowed", ip);
    r.allow_post = true;
    return r;
  }
  if (query_param(query, "token")) return reject(HecCode::kQueryStringAuth, ip);
  auto it = req.find(http::field::authorization);
  if (it == req.end()) return reject(HecCode::kTokenRequired, ip);
  std::string_view auth = sv(it->value());
  constexpr std::string_view kPrefix = "Splunk ";
  if (auth.size() < kPrefix.size() ||
      !beast::iequals(beast::string_view(auth.data(), kPrefix.size()), "Splunk "))
    return reject(HecCode::kInvalidAuthorization, ip);
  std::string_view token = auth.substr(kPrefix.size());
  while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
  while (!token.empty() && token.back() == ' ') token.remove_suffix(1);
  if (!token_known(token)) return reject(HecCode::kInvalidToken, ip);
  info.token = XXH3_64bits_withSeed(token.data(), token.size(), token_seed_);

  std::string enc = trim_lower(sv(req[http::field::content_encoding]));
  if (enc == "gzip" || enc == "x-gzip") {
    info.gzip = true;
  } else if (!enc.empty() && enc != "identity") {
    return reject_plain(415, "Unsupported content encoding (gzip only)", "unsupported_encoding",
                        ip);
  }

  if (info.route == Route::kAck && !cfg_.acks_enabled) return reject(HecCode::kAckDisabled, ip);
  if (cfg_.acks_enabled) {
    auto ch = req.find("X-Splunk-Request-Channel");
    if (ch != req.end()) {
      info.channel = std::string(sv(ch->value()));
    } else if (auto q = query_param(query, "channel")) {
      info.channel = std::move(*q);
    }
    if (info.channel.empty()) return reject(HecCode::kChannelMissing, ip);
    if (!is_guid(info.channel)) return reject(HecCode::kInvalidChannel, ip);
  }
  if (!query.empty()) {
    info.host = query_param(query, "host").value_or("");
    info.source = query_param(query, "source").value_or("");
    info.sourcetype = query_param(query, "sourcetype").value_or("");
    info.index = query_param(query, "index").value_or("");
  }
  return std::nullopt;
}

awaitable<Reply> HecSource::handle(RequestInfo& info, std::string& body, const std::string& ip,
                                   Fanout& out) {
  const size_t wire_bytes = body.size();
  std::string inflated;
  std::string* data = &body;
  if (info.gzip && !body.empty()) {
    switch (gunzip(body, cfg_.max_body_bytes, inflated)) {
      case InflateStatus::kOk:
        break;
      case InflateStatus::kTooLarge:
        co_return reject_plain(413, "Content too large", "body_too_large", ip);
      case InflateStatus::kCorrupt:
        co_return reject(HecCode::kInvalidDataFormat, ip, "invalid gzip body");
    }
    std::string().swap(body);
    data = &inflated;
  }

  if (info.route == Route::kAck) {
    std::vector<uint64_t> ids;
    if (!parse_ack_query(*data, ids))
      co_return reject(HecCode::kInvalidDataFormat, ip, "invalid ack query body");
    Reply r;
    r.body = hec_ack_reply_json(
        acks_->query({info.token, ip}, info.channel, ids, std::chrono::steady_clock::now()));
    co_return r;
  }

  HecDefaults d;
  d.host = !info.host.empty()   ? std::string_view(info.host)
           : !cfg_.host.empty() ? std::string_view(cfg_.host)
                                : std::string_view(ip);
  d.source = !info.source.empty() ? info.source : cfg_.source;
  d.sourcetype = !info.sourcetype.empty() ? info.sourcetype : cfg_.sourcetype;
  d.index = !info.index.empty() ? info.index : cfg_.index;
  const int64_t now_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count();
  EventBatch batch;
  HecParseResult pr = info.route == Route::kEvent ? parse_event_body(*data, d, now_ns, batch)
                                                  : parse_raw_body(*data, d, now_ns, batch);
  std::optional<Reply> failure;
  if (pr.code != HecCode::kSuccess) {
    failure = reject(pr.code, ip, pr.detail, pr.invalid_event_number);
    if (pr.events == 0) co_return *failure;
  }
  std::string().swap(inflated);
  std::string().swap(body);

  // With acknowledgements on, a fully accepted request gets an ackId; the events before a bad
  // one (a 400 reply, no ackId) travel with a plain handle.
  std::optional<uint64_t> ack_id;
  AckHandle ack;
  if (cfg_.acks_enabled && !failure) {
    HecAckRegistry::Owner who{info.token, ip};
    auto res = acks_->reserve(who, info.channel, std::chrono::steady_clock::now());
    switch (res.status) {
      case HecAckRegistry::Reserve::kOk:
        break;
      case HecAckRegistry::Reserve::kChannelFull:
        co_return reject(HecCode::kAckChannelAtCapacity, ip, "too many pending ackIds on channel");
      case HecAckRegistry::Reserve::kTokenChannels:
        co_return reject(HecCode::kServerBusy, ip, "too many ack channels for this token");
      case HecAckRegistry::Reserve::kClientChannels:
        co_return reject(HecCode::kServerBusy, ip, "too many ack channels for this client");
      case HecAckRegistry::Reserve::kTooManyChannels:
        co_return reject(HecCode::kServerBusy, ip, "too many ack channels");
    }
    ack = acks_->make_handle(who, info.channel, res);
    ack_id = res.id;
  } else {
    ack = AckHandle::make({});
  }
  const size_t events = batch.size();
  if (!co_await out.send(std::move(batch), std::move(ack))) {
    // Not in the pipeline: the ackId (if any) never turns true; its handle reported kErrored.
    Reply r = reject(HecCode::kShuttingDown, ip);
    r.close = true;
    co_return r;
  }
  metrics_.received_events.inc(events);
  metrics_.received_bytes.inc(wire_bytes);
  if (failure) co_return *failure;
  co_return hec_reply(HecCode::kSuccess, -1, ack_id);
}

}  // namespace

std::unique_ptr<Source> make_hec_source(HecSourceConfig cfg, const ComponentContext& ctx) {
  return std::make_unique<HecSource>(std::move(cfg), ctx);
}

}  // namespace logship::hec_receiver
