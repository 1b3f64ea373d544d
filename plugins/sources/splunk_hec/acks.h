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
    /// Channels held at once, all tokens and clients together.
    size_t max_channels = 10000;
    /// Channels one token may hold, and one client address: a single token holder (or host)
    /// cannot take every channel from the others.
    size_t max_channels_per_token = 1000;
    size_t max_channels_per_client = 1000;
    /// A channel without requests or queries for this long is dropped with its ids (Splunk's
    /// maxIdleTime).
    Clock::duration idle_timeout = std::chrono::seconds(600);
  };

  enum class Reserve { kOk, kChannelFull, kTooManyChannels, kTokenChannels, kClientChannels };
  struct Reservation {
    Reserve status = Reserve::kOk;
    uint64_t id = 0;
    uint64_t generation = 0;  ///< tells a dropped-and-recreated channel from the old one
  };
  /// Who opens or uses a channel: a hash of the token (channels are per token: a token cannot
  /// read or consume another token's ackIds) and the client address.
  struct Owner {
    uint64_t token = 0;
    std::string client;
  };

  explicit HecAckRegistry(Limits limits) : limits_(limits) {}

  /// Allocates the next ackId of `channel` (pending). A new channel needs room under the three
  /// channel limits: idle channels are dropped first, then the least recently used channel that
  /// holds no ackId (nothing pending, nothing to report) of the same token, client or anyone.
  Reservation reserve(const Owner& who, std::string_view channel, Clock::time_point now);
  /// Reports the delivery status of a reserved id: a final status makes it true; kErrored
  /// forgets it (polls answer false; the client resends after its timeout).
  void complete(const std::string& key, uint64_t generation, uint64_t id, DeliveryStatus s);
  /// An AckHandle whose completion calls complete() (safe after the registry is gone).
  AckHandle make_handle(const Owner& who, std::string_view channel, const Reservation& r);
  /// For each id: true when done (reported once, then forgotten), else false.
  std::vector<std::pair<uint64_t, bool>> query(const Owner& who, std::string_view channel,
                                               const std::vector<uint64_t>& ids,
                                               Clock::time_point now);

  size_t channel_count() const;
  /// ids held by `channel` of `token` (pending or done).
  size_t held(uint64_t token, std::string_view channel) const;
  /// Channels dropped: idle for idle_timeout, or evicted (empty) to make room.
  uint64_t dropped() const;

 private:
  struct Channel {
    uint64_t generation = 0;
    uint64_t next_id = 0;
    uint64_t token = 0;
    std::string client;
    std::unordered_map<uint64_t, bool> ids;  // id -> done
    Clock::time_point last_used;
  };
  using Map = std::unordered_map<std::string, Channel>;
  static std::string key_of(uint64_t token, std::string_view channel);
  void drop_idle(Clock::time_point now);
  void erase(Map::iterator it);
  /// Evicts the least recently used channel without ids among those `pick` accepts.
  template <class Pick>
  bool evict_empty(Pick pick);

  const Limits limits_;
  mutable std::mutex mu_;
  Map channels_;  // key: token hash + channel
  std::unordered_map<uint64_t, size_t> per_token_;
  std::unordered_map<std::string, size_t> per_client_;
  Clock::time_point last_sweep_{};
  uint64_t next_generation_ = 1;
  uint64_t dropped_ = 0;
};

}  // namespace logship::hec_receiver
