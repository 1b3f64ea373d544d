#pragma once
// Per-channel HEC ackId state (HEC.md §2.1): ackIds count up from 0 per channel, turn true when
// the request's batch reached a final delivery status, are reported true once and then
// forgotten. Thread-safe: completions arrive from any thread (AckHandle callbacks).
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "agent/pipeline/ack.h"

namespace logship::hec_receiver {

class HecAckRegistry : public std::enable_shared_from_this<HecAckRegistry> {
 public:
  using Clock = std::chrono::steady_clock;

  struct Limits {
    /// ackIds held per channel (pending or true-but-not-yet-queried).
    size_t max_pending_per_channel = 100000;
    /// Channels held at once.
    size_t max_channels = 10000;
    /// A channel without requests or queries for this long may be dropped (with its ids) when
    /// room is needed for a new channel (Splunk's maxIdleTime).
    Clock::duration idle_timeout = std::chrono::seconds(600);
  };

  enum class Reserve { kOk, kChannelFull, kTooManyChannels };
  struct Reservation {
    Reserve status = Reserve::kOk;
    uint64_t id = 0;
    uint64_t generation = 0;  ///< tells a dropped-and-recreated channel from the old one
  };

  explicit HecAckRegistry(Limits limits) : limits_(limits) {}

  /// Allocates the next ackId of `channel` (pending).
  Reservation reserve(std::string_view channel, Clock::time_point now);
  /// Reports the delivery status of a reserved id: a final status makes it true; kErrored
  /// forgets it (polls answer false; the client resends after its timeout).
  void complete(std::string_view channel, uint64_t generation, uint64_t id, DeliveryStatus s);
  /// An AckHandle whose completion calls complete() (safe after the registry is gone).
  AckHandle make_handle(std::string channel, const Reservation& r);
  /// For each id: true when done (reported once, then forgotten), else false.
  std::vector<std::pair<uint64_t, bool>> query(std::string_view channel,
                                               const std::vector<uint64_t>& ids,
                                               Clock::time_point now);

  size_t channel_count() const;
  /// ids held by `channel` (pending or done).
  size_t held(std::string_view channel) const;

 private:
  struct Channel {
    uint64_t generation = 0;
    uint64_t next_id = 0;
    std::unordered_map<uint64_t, bool> ids;  // id -> done
    Clock::time_point last_used;
  };
  struct SvHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  void drop_idle(Clock::time_point now);

  const Limits limits_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, Channel, SvHash, std::equal_to<>> channels_;
  uint64_t next_generation_ = 1;
};

}  // namespace logship::hec_receiver
