#pragma once
// Bounded asynchronous channel measured in bytes and items. A full channel suspends its senders:
// that is backpressure. One item is always admitted into an empty channel, so an item larger than
// the byte limit cannot deadlock. Multi-producer, multi-consumer.
#include <cstddef>
#include <algorithm>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>

#include "agent/pipeline/wait_queue.h"

namespace logship {

template <class T>
class Channel {
 public:
  Channel(size_t max_bytes, size_t max_items) : max_bytes_(max_bytes), max_items_(max_items) {}
  ~Channel() {
    std::lock_guard lk(hub_->mu);
    hub_->ch = nullptr;
  }
  Channel(const Channel&) = delete;
  Channel& operator=(const Channel&) = delete;

  /// Deferred release: a consumer that keeps items after receiving them (a sink batching and
  /// retrying) calls this before its first receive; received items then stay counted in bytes()
  /// until their lease ends, so `max_bytes` bounds everything the consumer has not finished.
  void defer_release() {
    std::lock_guard lk(mu_);
    deferred_ = true;
  }
  /// A lease on `bytes` of a received item (with defer_release): the bytes are released when the
  /// last copy of the returned pointer is destroyed, even after the channel is gone.
  std::shared_ptr<void> lease(size_t bytes) {
    auto hub = hub_;
    return std::shared_ptr<void>(nullptr, [hub, bytes](void*) {
      std::lock_guard lk(hub->mu);
      if (hub->ch) hub->ch->release(bytes);
    });
  }

  /// Suspends while full. Returns false (item dropped by the caller) when aborted or closed.
  awaitable<bool> send(T item, size_t bytes) {
    for (;;) {
      {
        std::lock_guard lk(mu_);
        if (closed_ || aborted_) co_return false;
        if (admits(bytes)) {
          push(std::move(item), bytes);
          co_return true;
        }
      }
      co_await not_full_.wait(mu_, [&] { return closed_ || aborted_ || admits(bytes); });
    }
  }

  /// Never suspends. Returns false when full or closed; the item is left in `item`.
  bool try_send(T& item, size_t bytes) {
    std::lock_guard lk(mu_);
    if (closed_ || aborted_ || !admits(bytes)) return false;
    push(std::move(item), bytes);
    return true;
  }

  /// Next item; nullopt when closed and drained, or aborted.
  awaitable<std::optional<T>> receive() {
    for (;;) {
      {
        std::lock_guard lk(mu_);
        if (auto v = pop()) co_return v;
        if (closed_ || aborted_) co_return std::nullopt;
      }
      co_await not_empty_.wait(mu_, [&] { return !items_.empty() || closed_ || aborted_; });
    }
  }

  /// Like receive() but gives up after `timeout`: `timed_out` tells the two nullopts apart.
  awaitable<std::optional<T>> receive_for(WaitQueue::Duration timeout, bool& timed_out) {
    timed_out = false;
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      {
        std::lock_guard lk(mu_);
        if (auto v = pop()) co_return v;
        if (closed_ || aborted_) co_return std::nullopt;
      }
      auto left = deadline - std::chrono::steady_clock::now();
      if (left <= WaitQueue::Duration::zero()) {
        timed_out = true;
        co_return std::nullopt;
      }
      co_await not_empty_.wait(
          mu_, [&] { return !items_.empty() || closed_ || aborted_; }, left);
    }
  }

  std::optional<T> try_receive() {
    std::lock_guard lk(mu_);
    return pop();
  }

  /// Producers register so the channel closes when the last one is done.
  void add_producer() {
    std::lock_guard lk(mu_);
    ++producers_;
  }
  void producer_done() {
    std::lock_guard lk(mu_);
    if (producers_ > 0 && --producers_ == 0) close_locked();
  }
  /// No more sends; receivers drain what is queued.
  void close() {
    std::lock_guard lk(mu_);
    close_locked();
  }
  /// Wakes everybody; queued items stay until the channel is destroyed (their acks then report
  /// kErrored, so checkpoints do not advance over them).
  void abort() {
    std::lock_guard lk(mu_);
    aborted_ = true;
    not_full_.notify_all();
    not_empty_.notify_all();
  }

  size_t bytes() const {
    std::lock_guard lk(mu_);
    return bytes_;
  }
  size_t size() const {
    std::lock_guard lk(mu_);
    return items_.size();
  }
  bool closed() const {
    std::lock_guard lk(mu_);
    return closed_;
  }
  size_t max_bytes() const { return max_bytes_; }

 private:
  bool admits(size_t bytes) const {
    if (items_.empty()) return true;
    return bytes_ + bytes <= max_bytes_ && items_.size() < max_items_;
  }
  void push(T&& item, size_t bytes) {
    items_.push_back({std::move(item), bytes});
    bytes_ += bytes;
    not_empty_.notify_one();
  }
  std::optional<T> pop() {
    if (items_.empty()) return std::nullopt;
    auto e = std::move(items_.front());
    items_.pop_front();
    if (!deferred_) {
      bytes_ -= e.bytes;
      not_full_.notify_all();
    }
    return std::optional<T>(std::move(e.item));
  }
  void release(size_t bytes) {
    std::lock_guard lk(mu_);
    bytes_ -= std::min(bytes, bytes_);
    not_full_.notify_all();
  }
  void close_locked() {
    closed_ = true;
    not_full_.notify_all();
    not_empty_.notify_all();
  }
  struct Entry {
    T item;
    size_t bytes;
  };
  const size_t max_bytes_;
  const size_t max_items_;
  mutable std::mutex mu_;
  std::deque<Entry> items_;
  size_t bytes_ = 0;
  int producers_ = 0;
  bool closed_ = false;
  bool aborted_ = false;
  bool deferred_ = false;
  struct Hub {
    explicit Hub(Channel* c) : ch(c) {}
    std::mutex mu;
    Channel* ch;
  };
  std::shared_ptr<Hub> hub_ = std::make_shared<Hub>(this);
  WaitQueue not_full_;
  WaitQueue not_empty_;
};

}  // namespace logship
