#pragma once
// Process lifecycle: the stop request that sources watch, and interruptible sleeps.
#include <atomic>
#include <chrono>
#include <mutex>

#include "agent/pipeline/wait_queue.h"

namespace logship {

class Lifecycle {
 public:
  bool stopping() const { return stopping_.load(std::memory_order_acquire); }
  /// Sources stop reading; every sleep() returns at once.
  void request_stop() {
    std::lock_guard lk(mu_);
    stopping_.store(true, std::memory_order_release);
    wq_.notify_all();
  }
  /// Sleeps for `d`; returns true when a stop was requested (before or during the sleep).
  awaitable<bool> sleep(std::chrono::steady_clock::duration d) {
    if (stopping()) co_return true;
    co_await wq_.wait(mu_, [this] { return stopping(); }, d);
    co_return stopping();
  }

 private:
  std::atomic<bool> stopping_{false};
  std::mutex mu_;
  WaitQueue wq_;
};

}  // namespace logship
