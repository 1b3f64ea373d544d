#pragma once
// WaitQueue: lets coroutines wait for a condition guarded by an external mutex, with an optional
// timeout. Asio 1.18 has no channels nor per-operation cancellation, so the bounded Channel,
// timed waits and shutdown wake-ups are built on this.
#include <chrono>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <optional>

#include "agent/core/asio.h"

namespace logship {

class WaitQueue {
 public:
  using Duration = std::chrono::steady_clock::duration;

  /// Suspends until notify_*() or the timeout. `pred` is evaluated under `mu` when the wait is
  /// registered; if it already holds, the wait completes at once. Returns true when woken or
  /// pred held, false on timeout. The caller re-checks its condition after waking.
  template <class Pred>
  awaitable<bool> wait(std::mutex& mu, Pred pred, std::optional<Duration> timeout = std::nullopt) {
    auto init = [this, &mu, pred = std::move(pred), timeout](auto handler) mutable {
      std::unique_lock lk(mu);
      if (pred()) {
        auto ex = asio::get_associated_executor(handler);
        asio::post(ex, [h = std::move(handler)]() mutable { h(true); });
        return;
      }
      auto w = std::make_unique<Waiter<decltype(handler)>>(std::move(handler));
      Waiter<decltype(handler)>* raw = w.get();
      uint64_t id = ++next_id_;
      w->id = id;
      if (timeout) {
        w->timer = std::make_unique<asio::steady_timer>(asio::get_associated_executor(raw->h));
        w->timer->expires_after(*timeout);
        w->timer->async_wait([this, &mu, id](const boost::system::error_code& ec) {
          if (ec) return;
          std::unique_lock lk2(mu);
          for (auto it = waiters_.begin(); it != waiters_.end(); ++it) {
            if ((*it)->id == id) {
              auto node = std::move(*it);
              waiters_.erase(it);
              node->complete(false);
              return;
            }
          }
        });
      }
      waiters_.push_back(std::move(w));
    };
    co_return co_await asio::async_initiate<decltype(asio::use_awaitable), void(bool)>(
        std::move(init), asio::use_awaitable);
  }

  /// Suspends until `pred` holds (checked under `mu`), however many wake-ups that takes: the
  /// loop every caller of wait() without a timeout needs.
  template <class Pred>
  awaitable<void> wait_until(std::mutex& mu, Pred pred) {
    for (;;) {
      {
        std::lock_guard lk(mu);
        if (pred()) co_return;
      }
      co_await wait(mu, pred);
    }
  }

  /// Wakes one / all waiters. Call with the mutex held.
  void notify_one() {
    if (waiters_.empty()) return;
    auto w = std::move(waiters_.front());
    waiters_.pop_front();
    w->complete(true);
  }
  void notify_all() {
    while (!waiters_.empty()) notify_one();
  }
  bool empty() const { return waiters_.empty(); }

 private:
  struct WaiterBase {
    virtual ~WaiterBase() = default;
    virtual void complete(bool v) = 0;
    uint64_t id = 0;
    std::unique_ptr<asio::steady_timer> timer;
  };
  template <class H>
  struct Waiter : WaiterBase {
    explicit Waiter(H&& handler) : h(std::move(handler)) {}
    void complete(bool v) override {
      if (timer) timer->cancel();
      auto ex = asio::get_associated_executor(h);
      asio::post(ex, [hh = std::move(h), v]() mutable { hh(v); });
    }
    H h;
  };
  std::list<std::unique_ptr<WaiterBase>> waiters_;
  uint64_t next_id_ = 0;
};

}  // namespace logship
