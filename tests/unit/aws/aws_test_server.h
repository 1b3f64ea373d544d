#pragma once
// A copy of tests/unit/net/test_http_server.h for the AWS tests (own namespace, so the two may
// diverge without an ODR clash). A tiny in-process HTTP/1.1 server for unit tests: binds 127.0.0.1
// port 0, one thread per connection, keep-alive, Content-Length bodies. The handler returns the
// whole response text, or nullopt to never answer (the connection stays open until the server
// stops).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <chrono>
#include <cstring>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace logship::aws_test {

class TestHttpServer {
 public:
  struct Request {
    std::string method;
    std::string target;
    std::vector<std::pair<std::string, std::string>> headers;  ///< names lower-cased
    std::string body;
    std::string header(const std::string& name) const {
      for (auto& [k, v] : headers)
        if (k == name) return v;
      return {};
    }
  };
  using Handler = std::function<std::optional<std::string>(const Request&)>;

  explicit TestHttpServer(Handler h) : handler_(std::move(h)) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
    ::listen(listen_fd_, 64);
    socklen_t len = sizeof a;
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    acceptor_ = std::thread([this] { accept_loop(); });
  }

  ~TestHttpServer() { stop(); }

  void stop() {
    if (stop_.exchange(true)) return;
    acceptor_.join();
    ::close(listen_fd_);
    std::vector<std::thread> threads;
    {
      std::lock_guard lk(mu_);
      for (int fd : fds_) ::shutdown(fd, SHUT_RDWR);
      threads = std::move(threads_);
    }
    for (auto& t : threads) t.join();
  }

  int port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  int connections() const { return connections_.load(); }
  int requests() const { return requests_.load(); }
  std::vector<Request> received() const {
    std::lock_guard lk(mu_);
    return received_;
  }

  /// A complete response with Content-Length.
  static std::string response(
      int status, const std::string& body,
      const std::vector<std::pair<std::string, std::string>>& headers = {}) {
    std::string r = "HTTP/1.1 " + std::to_string(status) + " X\r\n";
    for (auto& [k, v] : headers) r += k + ": " + v + "\r\n";
    r += "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
    return r;
  }

 private:
  void accept_loop() {
    while (!stop_) {
      pollfd p{listen_fd_, POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0) continue;
      int fd = ::accept(listen_fd_, nullptr, nullptr);
      if (fd < 0) continue;
      ++connections_;
      std::lock_guard lk(mu_);
      fds_.push_back(fd);
      threads_.emplace_back([this, fd] { serve(fd); });
    }
  }

  void serve(int fd) {
    std::string buf;
    char tmp[65536];
    bool hold = false;  // a request that is never answered
    while (!stop_) {
      pollfd p{fd, POLLIN, 0};
      int pr = ::poll(&p, 1, 20);
      if (pr <= 0) continue;
      ssize_t n = ::read(fd, tmp, sizeof tmp);
      if (n <= 0) break;
      if (hold) continue;
      buf.append(tmp, static_cast<size_t>(n));
      for (;;) {
        size_t end = buf.find("\r\n\r\n");
        if (end == std::string::npos) break;
        Request r;
        size_t line_end = buf.find("\r\n");
        std::string first = buf.substr(0, line_end);
        size_t sp1 = first.find(' ');
        size_t sp2 = first.find(' ', sp1 + 1);
        r.method = first.substr(0, sp1);
        r.target = first.substr(sp1 + 1, sp2 - sp1 - 1);
        size_t pos = line_end + 2;
        size_t content_length = 0;
        while (pos < end) {
          size_t e = buf.find("\r\n", pos);
          std::string line = buf.substr(pos, e - pos);
          pos = e + 2;
          size_t c = line.find(':');
          if (c == std::string::npos) continue;
          std::string k = line.substr(0, c);
          for (char& ch : k) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
          std::string v = line.substr(c + 1);
          while (!v.empty() && v.front() == ' ') v.erase(0, 1);
          if (k == "content-length") content_length = std::stoul(v);
          r.headers.emplace_back(k, v);
        }
        if (buf.size() < end + 4 + content_length) break;
        r.body = buf.substr(end + 4, content_length);
        buf.erase(0, end + 4 + content_length);
        ++requests_;
        {
          std::lock_guard lk(mu_);
          received_.push_back(r);
        }
        std::optional<std::string> resp = handler_(r);
        if (!resp) {
          hold = true;
          break;
        }
        size_t off = 0;
        while (off < resp->size()) {
          ssize_t w = ::send(fd, resp->data() + off, resp->size() - off, MSG_NOSIGNAL);
          if (w <= 0) break;
          off += static_cast<size_t>(w);
        }
      }
    }
    std::lock_guard lk(mu_);
    for (auto it = fds_.begin(); it != fds_.end(); ++it)
      if (*it == fd) {
        fds_.erase(it);
        break;
      }
    ::close(fd);
  }

  Handler handler_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> connections_{0};
  std::atomic<int> requests_{0};
  std::thread acceptor_;
  mutable std::mutex mu_;
  std::vector<int> fds_;
  std::vector<std::thread> threads_;
  std::vector<Request> received_;
};

/// Runs an io_context on `threads` threads for the lifetime of the object.
class TestLoop {
 public:
  explicit TestLoop(int threads = 2) : work_(asio::make_work_guard(ioc_)) {
    for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { ioc_.run(); });
  }
  ~TestLoop() {
    work_.reset();
    ioc_.stop();
    for (auto& t : threads_) t.join();
  }
  asio::io_context& ioc() { return ioc_; }
  Executor executor() { return ioc_.get_executor(); }

 private:
  asio::io_context ioc_;
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  std::vector<std::thread> threads_;
};

}  // namespace logship::aws_test
