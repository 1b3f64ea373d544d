#pragma once
// Acknowledgements: a reference-counted completion per source batch. Every holder of an
// AckHandle must report a DeliveryStatus exactly once (a handle destroyed without a report
// reports kErrored). When the last holder has reported, the callback fires once with the merged
// (worst) status. Final statuses (kDelivered, kDropped, kDeadLettered) let a checkpoint advance;
// kErrored holds it.
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>

namespace logship {

enum class DeliveryStatus : uint8_t {
  kDelivered = 0,     ///< sink accepted it (ack true, 2xx without acks, synced to disk buffer)
  kDropped = 1,       ///< dropped on purpose by configuration (when_full: drop_newest), counted
  kDeadLettered = 2,  ///< permanently rejected, written to the dead-letter file
  kErrored = 3,       ///< not delivered (shutdown, abandoned): the checkpoint must not advance
};
inline bool is_final(DeliveryStatus s) { return s != DeliveryStatus::kErrored; }
const char* to_string(DeliveryStatus s);

class AckHandle {
 public:
  using Callback = std::function<void(DeliveryStatus)>;
  AckHandle() = default;
  /// A new completion; `cb` runs (on the thread of the last report) with the merged status.
  static AckHandle make(Callback cb);
  AckHandle(AckHandle&& o) noexcept : st_(std::move(o.st_)) {}
  AckHandle& operator=(AckHandle&& o) noexcept;
  AckHandle(const AckHandle&) = delete;
  AckHandle& operator=(const AckHandle&) = delete;
  ~AckHandle();

  /// Another obligation on the same completion (fan-out to several sinks, or a batch split over
  /// several requests). Both must report.
  AckHandle share() const;
  /// Reports this holder's status and releases it.
  void finish(DeliveryStatus s);
  explicit operator bool() const { return st_ != nullptr; }

 private:
  struct State {
    std::atomic<uint8_t> status{0};
    Callback cb;
    ~State();
  };
  std::shared_ptr<State> st_;
};

}  // namespace logship
