// HttpClient: one CURLM per client, driven by the Asio loop.
//
// Threading: every curl call (and every curl callback, which curl only makes from inside those
// calls) runs on `strand_`. The io_context may run on several threads; the strand serialises.
//
// Sockets: curl owns them. CURLMOPT_SOCKETFUNCTION wraps each fd in a posix::stream_descriptor
// (assign) to wait for readiness with async_wait; on CURL_POLL_REMOVE the descriptor is
// release()d (never closed: curl closes its own sockets, and curl reports REMOVE before it
// closes). Asio's epoll reactor is edge-triggered, but every wait that finds an empty op queue
// re-arms the fd with EPOLL_CTL_MOD, which reports the current level, so a wait started while
// data is already buffered completes at once (no lost wake-ups).
//
// Lifetime: Impl is shared. Posted work that must run (a new request, shutdown) holds a strong
// reference; long-lived waits (socket readiness, the curl timer) hold a weak one, so destroying
// the HttpClient destroys Impl as soon as no strand handler is running. ~Impl completes every
// pending request with a transport error (posted to the requester's executor), so no handler is
// ever invoked on freed state and no coroutine is left suspended forever.
#include "agent/net/http_client.h"

#include <curl/curl.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstring>
#include <unordered_map>

#include <spdlog/spdlog.h>
#include <boost/asio/posix/stream_descriptor.hpp>

namespace logship {
namespace {

void curl_global_once() {
  static const bool ok = [] { return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK; }();
  if (!ok) spdlog::error("curl_global_init failed");
}

struct EasyDeleter {
  void operator()(CURL* e) const { curl_easy_cleanup(e); }
};
using CurlEasy = std::unique_ptr<CURL, EasyDeleter>;

struct SlistDeleter {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};
using CurlSlist = std::unique_ptr<curl_slist, SlistDeleter>;

struct UrlDeleter {
  void operator()(CURLU* u) const { curl_url_cleanup(u); }
};
using CurlUrl = std::unique_ptr<CURLU, UrlDeleter>;

struct CurlStr {
  char* p = nullptr;
  ~CurlStr() { curl_free(p); }
};

/// A move-only completion handler behind a virtual call (the handler type of an awaitable
/// initiation is not nameable here).
struct CompletionBase {
  virtual ~CompletionBase() = default;
  virtual void complete(HttpResponse r) = 0;
};

template <class H>
struct Completion final : CompletionBase {
  explicit Completion(H&& handler) : h(std::move(handler)) {}
  void complete(HttpResponse r) override {
    auto ex = asio::get_associated_executor(h);
    asio::post(ex, [hh = std::move(h), r = std::move(r)]() mutable { hh(std::move(r)); });
  }
  H h;
};

std::string to_lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() &&
         (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n'))
    s.remove_suffix(1);
  return s;
}

bool has_crlf(std::string_view s) {
  return s.find_first_of("\r\n") != std::string_view::npos;
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

constexpr size_t kMaxResponseHeaders = 256;
constexpr size_t kMaxIdleEasyHandles = 64;

}  // namespace

std::optional<std::string> HttpResponse::header(std::string_view name) const {
  for (auto& [k, v] : headers)
    if (k == name) return v;
  return std::nullopt;
}

struct HttpClient::Impl : std::enable_shared_from_this<Impl> {
  struct Transfer {
    CurlEasy easy;
    HttpRequest req;
    std::string url;
    CurlSlist headers;
    CurlSlist connect_to;
    HttpResponse resp;
    std::unique_ptr<CompletionBase> done;
    char errbuf[CURL_ERROR_SIZE] = {0};
  };

  /// One socket curl asked us to watch.
  struct Socket {
    std::unique_ptr<asio::posix::stream_descriptor> sd;
    int want = 0;  ///< CURL_POLL_IN / OUT / INOUT
    bool reading = false;
    bool writing = false;
    uint64_t id = 0;  ///< tells a reused fd number from the socket a stale wait was for
    Socket() = default;
    Socket(Socket&&) = default;
    Socket& operator=(Socket&&) = default;
    ~Socket() {
      if (sd && sd->is_open()) sd->release();  // curl closes its sockets, never us
    }
  };

  Impl(Executor ex, TlsOptions tls, int max_connections)
      : strand_(asio::make_strand(ex)),
        tls_(std::move(tls)),
        timer_(strand_),
        max_connections_(std::max(1, max_connections)) {
    curl_global_once();
    multi_ = curl_multi_init();
    if (!multi_) {
      spdlog::error("curl_multi_init failed; HTTP requests will fail");
      return;
    }
    curl_multi_setopt(multi_, CURLMOPT_SOCKETFUNCTION, &Impl::socket_cb);
    curl_multi_setopt(multi_, CURLMOPT_SOCKETDATA, this);
    curl_multi_setopt(multi_, CURLMOPT_TIMERFUNCTION, &Impl::timer_cb);
    curl_multi_setopt(multi_, CURLMOPT_TIMERDATA, this);
    curl_multi_setopt(multi_, CURLMOPT_MAX_HOST_CONNECTIONS, static_cast<long>(max_connections_));
    curl_multi_setopt(multi_, CURLMOPT_MAXCONNECTS, static_cast<long>(max_connections_ * 2));
  }

  ~Impl() {
    closed_ = true;
    abort_all("HTTP client destroyed");
    if (multi_) curl_multi_cleanup(multi_);  // may call socket_cb(REMOVE): sockets_ still alive
    multi_ = nullptr;
    sockets_.clear();
    idle_.clear();
  }

  // ---- requests --------------------------------------------------------------------------

  void start(std::unique_ptr<Transfer> t) {
    if (closed_ || !multi_) {
      fail(*t, CURLE_ABORTED_BY_CALLBACK, closed_ ? "HTTP client shut down" : "no curl handle");
      return;
    }
    if (!idle_.empty()) {
      t->easy = std::move(idle_.back());
      idle_.pop_back();
    } else {
      t->easy.reset(curl_easy_init());
    }
    if (!t->easy) {
      fail(*t, CURLE_FAILED_INIT, "curl_easy_init failed");
      return;
    }
    std::string why;
    CURLcode rc = setup(*t, why);
    if (rc != CURLE_OK) {
      fail(*t, rc, why.empty() ? curl_easy_strerror(rc) : why);
      return;
    }
    CURL* e = t->easy.get();
    CURLMcode mc = curl_multi_add_handle(multi_, e);
    if (mc != CURLM_OK) {
      fail(*t, CURLE_FAILED_INIT, std::string("curl_multi_add_handle: ") + curl_multi_strerror(mc));
      return;
    }
    transfers_.emplace(e, std::move(t));
  }

  /// Sets every option of one request. Returns the first failing CURLcode.
  CURLcode setup(Transfer& t, std::string& why) {
    CURL* e = t.easy.get();
    HttpRequest& r = t.req;
    t.url = r.url;

    bool has_content_type = false;
    auto append = [&](const std::string& line) {
      curl_slist* n = curl_slist_append(t.headers.get(), line.c_str());
      if (!n) return false;
      if (!t.headers) t.headers.reset(n);  // later appends return the same head
      return true;
    };
    for (auto& [k, v] : r.headers) {
      if (k.empty() || has_crlf(k) || has_crlf(v) || k.find(':') != std::string::npos) {
        why = "invalid request header name or value";  // no value echoed: it may be a secret
        return CURLE_BAD_FUNCTION_ARGUMENT;
      }
      if (iequals(k, "content-type")) has_content_type = true;
      // "Name;" sends an empty header; "Name:" would remove it.
      if (!append(v.empty() ? k + ";" : k + ": " + v)) return CURLE_OUT_OF_MEMORY;
    }
    if (!append("Expect:")) return CURLE_OUT_OF_MEMORY;  // no 100-continue round trip
    if (!has_content_type && !append("Content-Type:")) return CURLE_OUT_OF_MEMORY;

    if (!tls_.server_name.empty()) {
      // Connect to the URL's host, but send SNI / verify the certificate for server_name (and
      // use it as Host): rewrite the URL to server_name, and map server_name:port back to the
      // real host with CURLOPT_CONNECT_TO.
      CurlUrl u(curl_url());
      CurlStr host, port, url;
      if (!u || curl_url_set(u.get(), CURLUPART_URL, r.url.c_str(), 0) != CURLUE_OK ||
          curl_url_get(u.get(), CURLUPART_HOST, &host.p, 0) != CURLUE_OK ||
          curl_url_get(u.get(), CURLUPART_PORT, &port.p, CURLU_DEFAULT_PORT) != CURLUE_OK ||
          curl_url_set(u.get(), CURLUPART_HOST, tls_.server_name.c_str(), 0) != CURLUE_OK ||
          curl_url_get(u.get(), CURLUPART_URL, &url.p, 0) != CURLUE_OK) {
        why = "cannot apply tls.server_name to the URL";
        return CURLE_URL_MALFORMAT;
      }
      t.url = url.p;
      std::string map = tls_.server_name + ":" + port.p + ":" + host.p + ":" + port.p;
      t.connect_to.reset(curl_slist_append(nullptr, map.c_str()));
      if (!t.connect_to) return CURLE_OUT_OF_MEMORY;
    }

    CURLcode rc = CURLE_OK;
    auto set = [&](CURLoption o, auto v) {
      if (rc == CURLE_OK) rc = curl_easy_setopt(e, o, v);
    };
    set(CURLOPT_URL, t.url.c_str());
    set(CURLOPT_PRIVATE, static_cast<void*>(&t));
    set(CURLOPT_NOSIGNAL, 1L);
    set(CURLOPT_HTTP_VERSION, static_cast<long>(CURL_HTTP_VERSION_1_1));
    set(CURLOPT_PROTOCOLS_STR, "http,https");
    set(CURLOPT_TIMEOUT_MS, static_cast<long>(std::max<int64_t>(1, r.timeout.count())));
    set(CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(std::max<int64_t>(0, r.connect_timeout.count())));
    set(CURLOPT_NOPROXY, r.no_proxy ? "*" : static_cast<const char*>(nullptr));
    set(CURLOPT_PATH_AS_IS, r.path_as_is ? 1L : 0L);
    set(CURLOPT_TCP_KEEPALIVE, 1L);
    set(CURLOPT_HTTPHEADER, t.headers.get());
    set(CURLOPT_HEADERFUNCTION, &Impl::header_cb);
    set(CURLOPT_HEADERDATA, static_cast<void*>(&t));
    set(CURLOPT_WRITEFUNCTION, &Impl::write_cb);
    set(CURLOPT_WRITEDATA, static_cast<void*>(&t));
    set(CURLOPT_ERRORBUFFER, t.errbuf);
    if (t.connect_to) set(CURLOPT_CONNECT_TO, t.connect_to.get());

    if (r.method == "GET") {
      set(CURLOPT_HTTPGET, 1L);
    } else if (r.method == "HEAD") {
      set(CURLOPT_NOBODY, 1L);
    } else {
      if (r.method != "POST") set(CURLOPT_CUSTOMREQUEST, r.method.c_str());
      const std::string& body = r.body_ref ? *r.body_ref : r.body;
      if (r.method == "POST" || !body.empty()) {
        set(CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
        set(CURLOPT_POSTFIELDS, body.data());
      }
    }

    set(CURLOPT_SSL_VERIFYPEER, tls_.verify ? 1L : 0L);
    set(CURLOPT_SSL_VERIFYHOST, tls_.verify ? 2L : 0L);
    set(CURLOPT_SSLVERSION, static_cast<long>(tls_.min_version == "1.3" ? CURL_SSLVERSION_TLSv1_3
                                                                        : CURL_SSLVERSION_TLSv1_2));
    if (!tls_.ca_file.empty()) set(CURLOPT_CAINFO, tls_.ca_file.c_str());
    if (!tls_.ca_dir.empty()) set(CURLOPT_CAPATH, tls_.ca_dir.c_str());
    if (!tls_.cert_file.empty()) set(CURLOPT_SSLCERT, tls_.cert_file.c_str());
    if (!tls_.key_file.empty()) set(CURLOPT_SSLKEY, tls_.key_file.c_str());
    return rc;
  }

  /// Completes a request that never reached curl (or was aborted).
  void fail(Transfer& t, CURLcode code, std::string msg) {
    t.resp.status = 0;
    t.resp.curl_code = static_cast<int>(code);
    t.resp.error = std::move(msg);
    if (t.done) std::exchange(t.done, nullptr)->complete(std::move(t.resp));
  }

  void recycle(CurlEasy easy) {
    if (!easy) return;
    curl_easy_reset(easy.get());  // keeps the TLS session cache of the handle
    if (idle_.size() < kMaxIdleEasyHandles) idle_.push_back(std::move(easy));
  }

  void check_completed() {
    if (!multi_) return;
    int left = 0;
    while (CURLMsg* msg = curl_multi_info_read(multi_, &left)) {
      if (msg->msg != CURLMSG_DONE) continue;
      CURL* e = msg->easy_handle;
      CURLcode rc = msg->data.result;
      auto it = transfers_.find(e);
      if (it == transfers_.end()) {
        curl_multi_remove_handle(multi_, e);
        continue;
      }
      std::unique_ptr<Transfer> t = std::move(it->second);
      transfers_.erase(it);
      curl_multi_remove_handle(multi_, e);
      double total = 0;
      curl_easy_getinfo(e, CURLINFO_TOTAL_TIME, &total);
      t->resp.total_seconds = total;
      t->resp.curl_code = static_cast<int>(rc);
      if (rc == CURLE_OK) {
        long status = 0;
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
        t->resp.status = status;
        if (status == 0) t->resp.error = "no HTTP status in the response";
      } else {
        t->resp.status = 0;
        t->resp.error = curl_easy_strerror(rc);
        if (t->errbuf[0]) {
          t->resp.error += ": ";
          t->resp.error += t->errbuf;
        }
        t->resp.headers.clear();
        t->resp.body.clear();
      }
      std::exchange(t->done, nullptr)->complete(std::move(t->resp));
      recycle(std::move(t->easy));
    }
  }

  /// Removes every transfer from the multi handle and completes it with a transport error.
  void abort_all(const char* why) {
    auto transfers = std::move(transfers_);
    transfers_.clear();
    for (auto& [e, t] : transfers) {
      if (multi_) curl_multi_remove_handle(multi_, e);
      fail(*t, CURLE_ABORTED_BY_CALLBACK, why);
    }
  }

  void shutdown() {
    closed_ = true;
    abort_all("request aborted: HTTP client shut down");
    timer_.cancel();
  }

  // ---- curl → asio -----------------------------------------------------------------------

  void socket_action(curl_socket_t s, int mask) {
    if (!multi_) return;
    int running = 0;
    CURLMcode mc = curl_multi_socket_action(multi_, s, mask, &running);
    if (mc != CURLM_OK) spdlog::error("curl_multi_socket_action: {}", curl_multi_strerror(mc));
    check_completed();
  }

  void arm(curl_socket_t s, Socket& so) {
    std::weak_ptr<Impl> w = weak_from_this();
    if ((so.want & CURL_POLL_IN) && !so.reading) {
      so.reading = true;
      so.sd->async_wait(asio::posix::stream_descriptor::wait_read,
                        [w, s, id = so.id](const boost::system::error_code& ec) {
                          if (auto self = w.lock()) self->on_ready(s, id, CURL_CSELECT_IN, ec);
                        });
    }
    if ((so.want & CURL_POLL_OUT) && !so.writing) {
      so.writing = true;
      so.sd->async_wait(asio::posix::stream_descriptor::wait_write,
                        [w, s, id = so.id](const boost::system::error_code& ec) {
                          if (auto self = w.lock()) self->on_ready(s, id, CURL_CSELECT_OUT, ec);
                        });
    }
  }

  void on_ready(curl_socket_t s, uint64_t id, int dir, const boost::system::error_code& ec) {
    auto it = sockets_.find(s);
    if (it == sockets_.end() || it->second.id != id) return;  // released or fd reused
    if (dir == CURL_CSELECT_IN)
      it->second.reading = false;
    else
      it->second.writing = false;
    if (ec != asio::error::operation_aborted) {
      socket_action(s, ec ? (dir | CURL_CSELECT_ERR) : dir);
      it = sockets_.find(s);
      if (it == sockets_.end() || it->second.id != id) return;
    }
    arm(s, it->second);
  }

  static int socket_cb(CURL*, curl_socket_t s, int what, void* userp, void*) {
    auto* self = static_cast<Impl*>(userp);
    if (what == CURL_POLL_REMOVE) {
      self->sockets_.erase(s);
      return 0;
    }
    auto it = self->sockets_.find(s);
    if (it == self->sockets_.end()) {
      Socket so;
      so.id = ++self->next_socket_id_;
      so.sd = std::make_unique<asio::posix::stream_descriptor>(self->strand_);
      boost::system::error_code ec;
      so.sd->assign(s, ec);
      if (ec) {
        spdlog::error("cannot watch a curl socket: {}", ec.message());
        so.sd.reset();
        return -1;
      }
      it = self->sockets_.emplace(s, std::move(so)).first;
    }
    it->second.want = what;
    self->arm(s, it->second);
    return 0;
  }

  static int timer_cb(CURLM*, long timeout_ms, void* userp) {
    auto* self = static_cast<Impl*>(userp);
    if (timeout_ms < 0) {
      self->timer_.cancel();
      return 0;
    }
    self->timer_.expires_after(std::chrono::milliseconds(timeout_ms));
    std::weak_ptr<Impl> w = self->weak_from_this();
    self->timer_.async_wait([w](const boost::system::error_code& ec) {
      if (ec) return;  // cancelled or re-armed
      if (auto s = w.lock()) s->socket_action(CURL_SOCKET_TIMEOUT, 0);
    });
    return 0;
  }

  static size_t header_cb(char* buf, size_t size, size_t n, void* userp) {
    auto* t = static_cast<Transfer*>(userp);
    size_t len = size * n;
    std::string_view line(buf, len);
    if (line.substr(0, 5) == "HTTP/") {  // a new response (after 100 Continue, redirects)
      t->resp.headers.clear();
      return len;
    }
    size_t colon = line.find(':');
    if (colon == std::string_view::npos || t->resp.headers.size() >= kMaxResponseHeaders)
      return len;
    t->resp.headers.emplace_back(to_lower(trim(line.substr(0, colon))),
                                 std::string(trim(line.substr(colon + 1))));
    return len;
  }

  static size_t write_cb(char* buf, size_t size, size_t n, void* userp) {
    auto* t = static_cast<Transfer*>(userp);
    t->resp.body.append(buf, size * n);
    return size * n;
  }

  asio::strand<Executor> strand_;
  TlsOptions tls_;
  asio::steady_timer timer_;
  int max_connections_;
  CURLM* multi_ = nullptr;
  bool closed_ = false;
  uint64_t next_socket_id_ = 0;
  std::unordered_map<curl_socket_t, Socket> sockets_;
  std::unordered_map<CURL*, std::unique_ptr<Transfer>> transfers_;
  std::vector<CurlEasy> idle_;
};

HttpClient::HttpClient(Executor ex, TlsOptions tls, int max_connections)
    : impl_(std::make_shared<Impl>(std::move(ex), std::move(tls), max_connections)) {}

// Waits only hold weak references to Impl, so Impl (and curl) go away here, or at the end of a
// strand handler that is running right now; ~Impl aborts whatever is still in flight.
HttpClient::~HttpClient() = default;

awaitable<HttpResponse> HttpClient::send(HttpRequest req) {
  auto t = std::make_unique<Impl::Transfer>();
  t->req = std::move(req);
  // A named initiation object: g++ 12 mis-handles non-trivial temporaries captured by a lambda
  // written inside the co_await expression itself.
  auto init = [impl = impl_, t = std::move(t)](auto handler) mutable {
    t->done = std::make_unique<Completion<decltype(handler)>>(std::move(handler));
    // Move the reference out: the suspended coroutine keeps `init` alive, and a strong reference
    // held there would keep Impl alive after ~HttpClient.
    std::shared_ptr<Impl> self = std::move(impl);
    auto strand = self->strand_;
    asio::post(strand,
               [self = std::move(self), t = std::move(t)]() mutable { self->start(std::move(t)); });
  };
  co_return co_await asio::async_initiate<decltype(asio::use_awaitable), void(HttpResponse)>(
      std::move(init), asio::use_awaitable);
}

void HttpClient::shutdown() {
  asio::post(impl_->strand_, [impl = impl_] { impl->shutdown(); });
}

}  // namespace logship
