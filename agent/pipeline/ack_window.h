#pragma once
// AckWindow: the ordered window a source keeps so its checkpoint only moves past fully
// acknowledged ranges. Positions are added in order; completions may arrive in any order; the
// committed position advances over the longest prefix whose statuses are all final
// (delivered, dropped or dead-lettered). A kErrored slot holds the window until restart.
#include <deque>
#include <functional>
#include <memory>
#include <mutex>

#include "agent/pipeline/ack.h"

namespace logship {

template <class Pos>
class AckWindow {
 public:
  /// `on_advance` runs (under the window's lock, on the completing thread) with each new
  /// committed position, in order.
  AckWindow(Pos start, std::function<void(const Pos&)> on_advance)
      : impl_(std::make_shared<Impl>()) {
    impl_->committed = std::move(start);
    impl_->on_advance = std::move(on_advance);
  }

  /// Registers the batch ending at `end` and returns its completion handle.
  AckHandle add(Pos end) {
    uint64_t seq;
    {
      std::lock_guard lk(impl_->mu);
      seq = impl_->base + impl_->slots.size();
      impl_->slots.push_back({std::move(end), kPending});
    }
    std::weak_ptr<Impl> w = impl_;
    return AckHandle::make([w, seq](DeliveryStatus s) {
      if (auto impl = w.lock()) impl->complete(seq, s);
    });
  }

  Pos committed() const {
    std::lock_guard lk(impl_->mu);
    return impl_->committed;
  }
  /// Batches not yet committed (pending, or stuck behind a pending/errored one).
  size_t pending() const {
    std::lock_guard lk(impl_->mu);
    return impl_->slots.size();
  }
  /// True when a batch reported kErrored (the window is stalled until restart).
  bool stalled() const {
    std::lock_guard lk(impl_->mu);
    return !impl_->slots.empty() && impl_->slots.front().state == kFailed;
  }

 private:
  enum State : uint8_t { kPending, kDone, kFailed };
  struct Slot {
    Pos end;
    State state;
  };
  struct Impl {
    std::mutex mu;
    std::deque<Slot> slots;
    uint64_t base = 0;  // sequence number of slots.front()
    Pos committed{};
    std::function<void(const Pos&)> on_advance;
    void complete(uint64_t seq, DeliveryStatus s) {
      std::lock_guard lk(mu);
      if (seq < base || seq - base >= slots.size()) return;
      slots[seq - base].state = is_final(s) ? kDone : kFailed;
      bool moved = false;
      while (!slots.empty() && slots.front().state == kDone) {
        committed = std::move(slots.front().end);
        slots.pop_front();
        ++base;
        moved = true;
      }
      if (moved && on_advance) on_advance(committed);
    }
  };
  std::shared_ptr<Impl> impl_;
};

}  // namespace logship
