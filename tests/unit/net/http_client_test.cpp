#include "agent/core/asio.h"

#include <doctest/doctest.h>
#include <boost/asio/use_future.hpp>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <future>

#include "agent/net/http_client.h"
#include "tests/unit/net/test_http_server.h"

using namespace logship;
using namespace std::chrono_literals;
using test::TestHttpServer;
using test::TestLoop;

namespace {

template <class T>
T run_sync(TestLoop& loop, awaitable<T> a, std::chrono::seconds limit = 10s) {
  auto fut = asio::co_spawn(loop.executor(), std::move(a), asio::use_future);
  REQUIRE(fut.wait_for(limit) == std::future_status::ready);
  return fut.get();
}

HttpRequest post(const std::string& url, std::string body) {
  HttpRequest r;
  r.url = url;
  r.body = std::move(body);
  r.headers = {{"Content-Type", "application/json"}, {"Authorization", "Splunk secret-token"}};
  return r;
}

int closed_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

}  // namespace

TEST_CASE("HttpClient returns the status, body and lower-cased headers of a response") {
  // Verifies the request line, body and headers reach the server and the response comes back.
  TestHttpServer server([](const TestHttpServer::Request& r) {
    return TestHttpServer::response(201, "echo:" + r.body, {{"X-Custom-Header", "Value 1"}});
  });
  TestLoop loop(2);
  HttpClient client(loop.executor(), TlsOptions{}, 4);
  HttpResponse resp = run_sync(loop, client.send(post(server.url() + "/path?q=1", "hello")));
  CHECK(resp.status == 201);
  CHECK(resp.body == "echo:hello");
  CHECK(resp.error.empty());
  CHECK_FALSE(resp.transport_error());
  CHECK(resp.header("x-custom-header") == std::optional<std::string>("Value 1"));
  CHECK(resp.header("content-length") == std::optional<std::string>("10"));
  auto got = server.received();
  REQUIRE(got.size() == 1);
  CHECK(got[0].method == "POST");
  CHECK(got[0].target == "/path?q=1");
  CHECK(got[0].header("content-type") == "application/json");
  CHECK(got[0].header("expect").empty());
  CHECK(got[0].body == "hello");
}

TEST_CASE("HttpClient sends GET without a body and without a default content type") {
  // Verifies the method switch and that libcurl's form content type is suppressed.
  TestHttpServer server(
      [](const TestHttpServer::Request& r) { return TestHttpServer::response(200, r.method); });
  TestLoop loop(2);
  HttpClient client(loop.executor(), TlsOptions{}, 2);
  HttpRequest r;
  r.method = "GET";
  r.url = server.url() + "/";
  HttpResponse resp = run_sync(loop, client.send(std::move(r)));
  CHECK(resp.status == 200);
  CHECK(resp.body == "GET");
  HttpRequest p;
  p.method = "PUT";
  p.url = server.url() + "/";
  p.body = "x";
  CHECK(run_sync(loop, client.send(std::move(p))).body == "PUT");
  auto got = server.received();
  REQUIRE(got.size() == 2);
  CHECK(got[1].header("content-type").empty());
  CHECK(got[1].body == "x");
}

TEST_CASE("HttpClient reuses one keep-alive connection for sequential requests") {
  // Verifies the multi handle's connection cache: two requests, one accepted connection.
  TestHttpServer server(
      [](const TestHttpServer::Request&) { return TestHttpServer::response(200, "{}"); });
  TestLoop loop(2);
  HttpClient client(loop.executor(), TlsOptions{}, 4);
  CHECK(run_sync(loop, client.send(post(server.url() + "/a", "1"))).status == 200);
  CHECK(run_sync(loop, client.send(post(server.url() + "/b", "2"))).status == 200);
  CHECK(server.requests() == 2);
  CHECK(server.connections() == 1);
}

TEST_CASE("HttpClient fails a request with a transport error when the server never answers") {
  // Verifies CURLOPT_TIMEOUT_MS: a hung server yields status 0 within the timeout.
  TestHttpServer server([](const TestHttpServer::Request&) { return std::nullopt; });
  TestLoop loop(2);
  HttpClient client(loop.executor(), TlsOptions{}, 4);
  HttpRequest r = post(server.url() + "/", "x");
  r.timeout = 300ms;
  auto t0 = std::chrono::steady_clock::now();
  HttpResponse resp = run_sync(loop, client.send(std::move(r)));
  auto took = std::chrono::steady_clock::now() - t0;
  CHECK(resp.transport_error());
  CHECK(resp.curl_code == 28);  // CURLE_OPERATION_TIMEDOUT
  CHECK_FALSE(resp.error.empty());
  CHECK(took >= 250ms);
  CHECK(took < 5s);
  server.stop();
}

TEST_CASE("HttpClient reports connection refused as a transport error") {
  // Verifies a closed port completes the request with status 0 and a message.
  TestLoop loop(2);
  HttpClient client(loop.executor(), TlsOptions{}, 4);
  HttpResponse resp = run_sync(
      loop, client.send(post("http://127.0.0.1:" + std::to_string(closed_port()) + "/", "x")));
  CHECK(resp.transport_error());
  CHECK(resp.curl_code == 7);  // CURLE_COULDNT_CONNECT
  CHECK(resp.error.find("secret-token") == std::string::npos);
}

TEST_CASE("HttpClient completes 20 concurrent requests") {
  // Verifies many transfers multiplexed on one multi handle from several coroutines.
  TestHttpServer server(
      [](const TestHttpServer::Request& r) { return TestHttpServer::response(200, r.body); });
  TestLoop loop(2);
  HttpClient client(loop.executor(), TlsOptions{}, 4);
  std::vector<std::future<HttpResponse>> futs;
  for (int i = 0; i < 20; ++i)
    futs.push_back(asio::co_spawn(loop.executor(),
                                  client.send(post(server.url() + "/", "req" + std::to_string(i))),
                                  asio::use_future));
  for (int i = 0; i < 20; ++i) {
    REQUIRE(futs[i].wait_for(10s) == std::future_status::ready);
    HttpResponse r = futs[i].get();
    CHECK(r.status == 200);
    CHECK(r.body == "req" + std::to_string(i));
  }
  CHECK(server.requests() == 20);
  CHECK(server.connections() <= 4);
}

TEST_CASE("HttpClient shutdown aborts requests in flight with a transport error") {
  // Verifies shutdown() completes a hung request at once instead of waiting for its timeout.
  TestHttpServer server([](const TestHttpServer::Request&) { return std::nullopt; });
  TestLoop loop(2);
  HttpClient client(loop.executor(), TlsOptions{}, 4);
  HttpRequest r = post(server.url() + "/", "x");
  r.timeout = 30s;
  auto fut = asio::co_spawn(loop.executor(), client.send(std::move(r)), asio::use_future);
  for (int i = 0; i < 500 && server.requests() == 0; ++i) std::this_thread::sleep_for(10ms);
  REQUIRE(server.requests() == 1);
  client.shutdown();
  REQUIRE(fut.wait_for(5s) == std::future_status::ready);
  HttpResponse resp = fut.get();
  CHECK(resp.transport_error());
  CHECK_FALSE(resp.error.empty());
  // After shutdown new requests fail at once.
  CHECK(run_sync(loop, client.send(post(server.url() + "/", "y"))).transport_error());
  server.stop();
}

TEST_CASE("HttpClient destroyed with a request in flight completes it with an error") {
  // Verifies destruction is safe: the pending coroutine resumes with a transport error.
  TestHttpServer server([](const TestHttpServer::Request&) { return std::nullopt; });
  TestLoop loop(2);
  auto client = std::make_unique<HttpClient>(loop.executor(), TlsOptions{}, 4);
  HttpRequest r = post(server.url() + "/", "x");
  auto fut = asio::co_spawn(loop.executor(), client->send(std::move(r)), asio::use_future);
  for (int i = 0; i < 500 && server.requests() == 0; ++i) std::this_thread::sleep_for(10ms);
  REQUIRE(server.requests() == 1);
  client.reset();
  REQUIRE(fut.wait_for(5s) == std::future_status::ready);
  CHECK(fut.get().transport_error());
  server.stop();
}

TEST_CASE("HttpClient connects to the URL host but names tls.server_name in the request") {
  // Verifies the CURLOPT_CONNECT_TO mapping used for SNI / certificate names.
  TestHttpServer server([](const TestHttpServer::Request& r) {
    return TestHttpServer::response(200, r.header("host"));
  });
  TestLoop loop(2);
  TlsOptions tls;
  tls.server_name = "hec.example.internal";
  HttpClient client(loop.executor(), tls, 2);
  HttpResponse resp = run_sync(loop, client.send(post(server.url() + "/x", "1")));
  CHECK(resp.status == 200);
  CHECK(resp.body == "hec.example.internal:" + std::to_string(server.port()));
}
