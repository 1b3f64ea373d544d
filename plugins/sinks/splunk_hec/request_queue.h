#pragma once
// HecRequestQueue: the requests waiting for a sender. Fresh requests from the batcher are bounded
// (the batcher waits: backpressure up to the sink's buffer and the sources); requests to resend
// (failed attempts, halves after a 413, the tail after an invalid event, ack timeouts) go first
// and never wait. The queue also counts requests still alive anywhere in the sink (queued, in
// flight or waiting for an ack), so senders only stop once the input is closed and every request
// reached a final status.
#include <cstddef>
#include <deque>
#include <mutex>
#include <optional>

#include "agent/pipeline/wait_queue.h"
#include "plugins/sinks/splunk_hec/request_builder.h"

namespace logship {

class HecRequestQueue {
 public:
  explicit HecRequestQueue(size_t max_fresh) : max_fresh_(max_fresh) {}

  /// Batcher: suspends while `max_fresh` requests are queued. False when aborted.
  awaitable<bool> push(HecRequest r) {
    for (;;) {
      {
        std::lock_guard lk(mu_);
        if (aborted_) co_return false;
        if (fresh_.size() < max_fresh_) {
          fresh_.push_back(std::move(r));
          ++alive_;
          wq_.notify_all();
          co_return true;
        }
      }
      co_await wq_.wait(mu_, [&] { return aborted_ || fresh_.size() < max_fresh_; });
    }
  }
  /// A request to send again; it stays counted as alive.
  void push_retry(HecRequest r) {
    std::lock_guard lk(mu_);
    retry_.push_back(std::move(r));
    wq_.notify_all();
  }
  /// A new request derived from a live one (a split): counted as alive.
  void push_derived(HecRequest r) {
    std::lock_guard lk(mu_);
    retry_.push_back(std::move(r));
    ++alive_;
    wq_.notify_all();
  }
  /// A request reached a final status (delivered, dead-lettered, errored).
  void finished() {
    std::lock_guard lk(mu_);
    if (alive_ > 0) --alive_;
    wq_.notify_all();
  }
  /// Next request (resends first). nullopt when aborted, or when the input is closed and no
  /// request is alive any more.
  awaitable<std::optional<HecRequest>> pop() {
    for (;;) {
      {
        std::lock_guard lk(mu_);
        if (aborted_) co_return std::nullopt;
        if (!retry_.empty()) {
          HecRequest r = std::move(retry_.front());
          retry_.pop_front();
          co_return std::optional<HecRequest>(std::move(r));
        }
        if (!fresh_.empty()) {
          HecRequest r = std::move(fresh_.front());
          fresh_.pop_front();
          wq_.notify_all();  // room for the batcher
          co_return std::optional<HecRequest>(std::move(r));
        }
        if (closed_ && alive_ == 0) co_return std::nullopt;
      }
      co_await wq_.wait(mu_, [&] {
        return aborted_ || !retry_.empty() || !fresh_.empty() || (closed_ && alive_ == 0);
      });
    }
  }
  /// Waits (up to `timeout`) for any change; used by senders that wait for room or health.
  awaitable<void> wait_change(WaitQueue::Duration timeout) {
    co_await wq_.wait(mu_, [] { return false; }, timeout);
  }
  void notify() {
    std::lock_guard lk(mu_);
    wq_.notify_all();
  }
  /// The batcher is done: no more fresh requests.
  void close() {
    std::lock_guard lk(mu_);
    closed_ = true;
    wq_.notify_all();
  }
  /// Drain deadline passed: everybody stops; queued requests error out when destroyed.
  void abort() {
    std::lock_guard lk(mu_);
    aborted_ = true;
    wq_.notify_all();
  }
  bool aborted() const {
    std::lock_guard lk(mu_);
    return aborted_;
  }
  size_t alive() const {
    std::lock_guard lk(mu_);
    return alive_;
  }

 private:
  const size_t max_fresh_;
  mutable std::mutex mu_;
  std::deque<HecRequest> fresh_, retry_;
  size_t alive_ = 0;
  bool closed_ = false;
  bool aborted_ = false;
  WaitQueue wq_;
};

}  // namespace logship
