// Bounded channel: backpressure, close/abort semantics, timed receive.
#include <doctest/doctest.h>

#include <atomic>
#include <thread>

#include "agent/pipeline/channel.h"
#include "agent/pipeline/lifecycle.h"

using namespace logship;

namespace {
template <class F>
void run_io(F&& f, int threads = 2) {
  asio::io_context io;
  asio::co_spawn(io, f(io), [](std::exception_ptr e) {
    if (e) std::rethrow_exception(e);
  });
  std::vector<std::thread> ts;
  for (int i = 1; i < threads; ++i) ts.emplace_back([&] { io.run(); });
  io.run();
  for (auto& t : ts) t.join();
}
}  // namespace

TEST_CASE("a slow consumer bounds the producer: bytes in the channel never exceed the limit") {
  constexpr size_t kLimit = 10000, kItem = 1000, kItems = 500;
  Channel<int> ch(kLimit, 1000);
  std::atomic<size_t> max_seen{0};
  std::atomic<int> received{0};
  run_io([&](asio::io_context& io) -> awaitable<void> {
    asio::co_spawn(
        io,
        [&]() -> awaitable<void> {
          for (size_t i = 0; i < kItems; ++i) {
            bool ok = co_await ch.send(static_cast<int>(i), kItem);
            REQUIRE(ok);
            size_t b = ch.bytes();
            size_t cur = max_seen.load();
            while (b > cur && !max_seen.compare_exchange_weak(cur, b)) {
            }
          }
          ch.close();
        },
        asio::detached);
    asio::steady_timer t(io);
    int expect = 0;
    for (;;) {
      auto v = co_await ch.receive();
      if (!v) break;
      CHECK(*v == expect++);  // FIFO
      ++received;
      if (received % 50 == 0) {  // slow consumer
        t.expires_after(std::chrono::milliseconds(1));
        co_await t.async_wait(asio::use_awaitable);
      }
    }
  });
  CHECK(received == static_cast<int>(kItems));
  CHECK(max_seen <= kLimit);
  CHECK(max_seen >= kLimit - kItem);  // the producer really was held at the limit
}

TEST_CASE("one item larger than the limit is admitted into an empty channel") {
  Channel<int> ch(100, 10);
  int v = 1;
  CHECK(ch.try_send(v, 1000));
  int w = 2;
  CHECK_FALSE(ch.try_send(w, 1));  // full now
  CHECK(ch.try_receive().value() == 1);
  CHECK(ch.try_send(w, 1));
}

TEST_CASE("the channel closes when its last producer is done, after draining") {
  Channel<int> ch(100, 10);
  ch.add_producer();
  ch.add_producer();
  int a = 1;
  REQUIRE(ch.try_send(a, 1));
  ch.producer_done();
  CHECK_FALSE(ch.closed());
  ch.producer_done();
  CHECK(ch.closed());
  int b = 2;
  CHECK_FALSE(ch.try_send(b, 1));
  std::optional<int> first, second;
  run_io([&](asio::io_context&) -> awaitable<void> {
    first = co_await ch.receive();
    second = co_await ch.receive();
  });
  CHECK(first == 1);
  CHECK_FALSE(second.has_value());
}

TEST_CASE("abort wakes a sender blocked on a full channel") {
  Channel<int> ch(1, 1);
  int a = 1;
  REQUIRE(ch.try_send(a, 1));
  bool sent = true;
  run_io([&](asio::io_context& io) -> awaitable<void> {
    asio::co_spawn(
        io, [&]() -> awaitable<void> { sent = co_await ch.send(2, 1); }, asio::detached);
    asio::steady_timer t(io, std::chrono::milliseconds(20));
    co_await t.async_wait(asio::use_awaitable);
    ch.abort();
  });
  CHECK_FALSE(sent);
}

TEST_CASE("receive_for times out on an idle channel and returns items that arrive in time") {
  Channel<int> ch(100, 10);
  bool timed_out = false;
  std::optional<int> got;
  run_io([&](asio::io_context& io) -> awaitable<void> {
    got = co_await ch.receive_for(std::chrono::milliseconds(20), timed_out);
    CHECK(timed_out);
    CHECK_FALSE(got.has_value());
    asio::co_spawn(
        io,
        [&]() -> awaitable<void> {
          asio::steady_timer t(io, std::chrono::milliseconds(5));
          co_await t.async_wait(asio::use_awaitable);
          co_await ch.send(7, 1);
        },
        asio::detached);
    got = co_await ch.receive_for(std::chrono::seconds(5), timed_out);
  });
  CHECK_FALSE(timed_out);
  CHECK(got == 7);
}

TEST_CASE("lifecycle sleep returns early when a stop is requested") {
  Lifecycle lc;
  bool stopped = false;
  auto t0 = std::chrono::steady_clock::now();
  run_io([&](asio::io_context& io) -> awaitable<void> {
    asio::co_spawn(
        io, [&]() -> awaitable<void> { stopped = co_await lc.sleep(std::chrono::hours(1)); },
        asio::detached);
    asio::steady_timer t(io, std::chrono::milliseconds(10));
    co_await t.async_wait(asio::use_awaitable);
    lc.request_stop();
  });
  CHECK(stopped);
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(30));
}

TEST_CASE("deferred release: received items stay counted until their lease ends") {
  Channel<int> ch(3000, 100);
  ch.defer_release();
  int v = 1;
  CHECK(ch.try_send(v, 1000));
  v = 2;
  CHECK(ch.try_send(v, 1000));
  auto a = ch.try_receive();
  REQUIRE(a);
  CHECK(ch.bytes() == 2000);  // received, not yet finished: still counted
  auto lease = ch.lease(1000);
  auto copy = lease;          // e.g. a request split in two
  v = 3;
  CHECK(ch.try_send(v, 1000));
  v = 4;
  CHECK_FALSE(ch.try_send(v, 1000));  // 3000 held or queued: full
  lease.reset();
  CHECK(ch.bytes() == 3000);  // one copy still alive
  copy.reset();
  CHECK(ch.bytes() == 2000);
  CHECK(ch.try_send(v, 1000));
  // A lease outliving its channel is harmless.
  std::shared_ptr<void> late;
  {
    Channel<int> gone(100, 10);
    gone.defer_release();
    late = gone.lease(10);
  }
  late.reset();
}
