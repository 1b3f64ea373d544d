// Admin HTTP endpoint: GET /metrics, /health, /ready (Boost.Beast, plain HTTP, loopback by
// default). One coroutine per connection, each on its own strand.
#include "agent/observe/admin_server.h"

#include <list>
#include <mutex>
#include <stdexcept>

#include <spdlog/spdlog.h>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "agent/net/listen_address.h"
#include "agent/observe/metrics.h"

namespace logship {

namespace {

namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using asio::redirect_error;
using asio::use_awaitable;

constexpr auto kIdleTimeout = std::chrono::seconds(30);
constexpr uint32_t kMaxHeaderBytes = 16 * 1024;
constexpr uint64_t kMaxBodyBytes = 64 * 1024;

struct AdminConn {
  explicit AdminConn(tcp::socket s) : ex(s.get_executor()), stream(std::move(s)) {}
  Executor ex;
  beast::tcp_stream stream;
};

struct AdminState {
  AdminState(Executor e, std::string a, std::function<bool()> r)
      : ex(std::move(e)),
        address(std::move(a)),
        ready(std::move(r)),
        strand(asio::make_strand(ex)),
        acceptor(strand) {}

  Executor ex;
  std::string address;
  std::function<bool()> ready;
  Executor strand;
  tcp::acceptor acceptor;
  unsigned short port = 0;
  std::mutex mu;
  bool stopped = false;
  std::list<std::weak_ptr<AdminConn>> conns;
};

}  // namespace

struct AdminServer::Impl : AdminState {
  using AdminState::AdminState;
};

namespace {

http::response<http::string_body> admin_response(const http::request<http::string_body>& req,
                                                 const std::function<bool()>& ready) {
  std::string_view target(req.target().data(), req.target().size());
  std::string_view path = target.substr(0, target.find('?'));
  http::status status = http::status::ok;
  std::string content_type = "application/json";
  std::string body;
  const bool known = path == "/metrics" || path == "/health" || path == "/ready";
  if (!known) {
    status = http::status::not_found;
    body = R"({"error":"not found"})";
  } else if (req.method() != http::verb::get && req.method() != http::verb::head) {
    status = http::status::method_not_allowed;
    body = R"({"error":"method not allowed"})";
  } else if (path == "/metrics") {
    content_type = "text/plain; version=0.0.4; charset=utf-8";
    body = metrics().render_prometheus();
  } else if (path == "/health") {
    body = R"({"status":"ok"})";
  } else {
    bool ok = !ready || ready();
    status = ok ? http::status::ok : http::status::service_unavailable;
    body = ok ? R"({"status":"ready"})" : R"({"status":"not ready"})";
  }
  http::response<http::string_body> res{status, req.version()};
  res.set(http::field::server, "logship");
  res.set(http::field::content_type, content_type);
  if (status == http::status::method_not_allowed) res.set(http::field::allow, "GET, HEAD");
  res.keep_alive(req.keep_alive());
  res.body() = std::move(body);
  res.prepare_payload();
  if (req.method() == http::verb::head) res.body().clear();  // Content-Length stays
  return res;
}

awaitable<void> admin_session(std::shared_ptr<AdminState> self, std::shared_ptr<AdminConn> conn) {
  auto& stream = conn->stream;
  beast::flat_buffer buf;
  boost::system::error_code ec;
  for (;;) {
    http::request_parser<http::string_body> parser;
    parser.header_limit(kMaxHeaderBytes);
    parser.body_limit(kMaxBodyBytes);
    stream.expires_after(kIdleTimeout);
    co_await http::async_read(stream, buf, parser, redirect_error(use_awaitable, ec));
    if (ec) break;
    auto res = admin_response(parser.get(), self->ready);
    const bool keep = res.keep_alive();
    stream.expires_after(kIdleTimeout);
    co_await http::async_write(stream, res, redirect_error(use_awaitable, ec));
    if (ec || !keep) break;
  }
  stream.socket().shutdown(tcp::socket::shutdown_send, ec);
  stream.close();
}

awaitable<void> admin_accept_loop(std::shared_ptr<AdminState> self) {
  for (;;) {
    boost::system::error_code ec;
    tcp::socket sock = co_await self->acceptor.async_accept(Executor(asio::make_strand(self->ex)),
                                                            redirect_error(use_awaitable, ec));
    if (ec) {
      if (!self->acceptor.is_open() || ec == asio::error::operation_aborted) break;
      spdlog::warn("admin: accept failed: {}", ec.message());
      asio::steady_timer t(self->strand, std::chrono::milliseconds(100));
      co_await t.async_wait(redirect_error(use_awaitable, ec));
      continue;
    }
    auto conn = std::make_shared<AdminConn>(std::move(sock));
    {
      std::lock_guard lk(self->mu);
      if (self->stopped) break;
      self->conns.remove_if([](const std::weak_ptr<AdminConn>& w) { return w.expired(); });
      self->conns.push_back(conn);
    }
    Executor ex = conn->ex;
    asio::co_spawn(ex, admin_session(self, std::move(conn)), asio::detached);
  }
}

}  // namespace

AdminServer::AdminServer(Executor ex, std::string address, std::function<bool()> ready)
    : impl_(std::make_shared<Impl>(std::move(ex), std::move(address), std::move(ready))) {}

AdminServer::~AdminServer() {
  stop();
}

void AdminServer::start() {
  auto ep = parse_listen_address(impl_->address, impl_->ex);
  auto& acc = impl_->acceptor;
  boost::system::error_code ec;
  acc.open(ep.protocol(), ec);
  if (!ec) acc.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acc.bind(ep, ec);
  if (!ec) acc.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    boost::system::error_code ignored;
    acc.close(ignored);
    throw std::runtime_error("admin: cannot listen on " + impl_->address + ": " + ec.message());
  }
  impl_->port = acc.local_endpoint(ec).port();
  spdlog::info("admin endpoint listening on {}:{}", ep.address().to_string(), impl_->port);
  asio::co_spawn(impl_->strand, admin_accept_loop(impl_), asio::detached);
}

void AdminServer::stop() {
  auto self = impl_;
  if (!self) return;
  {
    std::lock_guard lk(self->mu);
    if (self->stopped) return;
    self->stopped = true;
  }
  asio::post(self->strand, [self] {
    boost::system::error_code ec;
    self->acceptor.close(ec);
    std::lock_guard lk(self->mu);
    for (auto& w : self->conns)
      if (auto c = w.lock()) asio::post(c->ex, [c] { c->stream.cancel(); });
  });
}

unsigned short AdminServer::port() const {
  return impl_->port;
}

}  // namespace logship
