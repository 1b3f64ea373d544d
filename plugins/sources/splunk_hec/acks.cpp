#include "plugins/sources/splunk_hec/acks.h"

namespace logship::hec_receiver {

HecAckRegistry::Reservation HecAckRegistry::reserve(std::string_view channel,
                                                    Clock::time_point now) {
  std::lock_guard lk(mu_);
  auto it = channels_.find(channel);
  if (it == channels_.end()) {
    if (channels_.size() >= limits_.max_channels) drop_idle(now);
    if (channels_.size() >= limits_.max_channels) return {Reserve::kTooManyChannels, 0, 0};
    it = channels_.emplace(std::string(channel), Channel{}).first;
    it->second.generation = next_generation_++;
  }
  Channel& c = it->second;
  c.last_used = now;
  if (c.ids.size() >= limits_.max_pending_per_channel) return {Reserve::kChannelFull, 0, 0};
  uint64_t id = c.next_id++;
  c.ids.emplace(id, false);
  return {Reserve::kOk, id, c.generation};
}

void HecAckRegistry::complete(std::string_view channel, uint64_t generation, uint64_t id,
                              DeliveryStatus s) {
  std::lock_guard lk(mu_);
  auto it = channels_.find(channel);
  if (it == channels_.end() || it->second.generation != generation) return;
  auto idit = it->second.ids.find(id);
  if (idit == it->second.ids.end()) return;
  if (is_final(s))
    idit->second = true;
  else
    it->second.ids.erase(idit);
}

AckHandle HecAckRegistry::make_handle(std::string channel, const Reservation& r) {
  std::weak_ptr<HecAckRegistry> self = weak_from_this();
  return AckHandle::make(
      [self, channel = std::move(channel), gen = r.generation, id = r.id](DeliveryStatus s) {
        if (auto reg = self.lock()) reg->complete(channel, gen, id, s);
      });
}

std::vector<std::pair<uint64_t, bool>> HecAckRegistry::query(std::string_view channel,
                                                             const std::vector<uint64_t>& ids,
                                                             Clock::time_point now) {
  std::vector<std::pair<uint64_t, bool>> out;
  out.reserve(ids.size());
  std::lock_guard lk(mu_);
  auto it = channels_.find(channel);
  if (it == channels_.end()) {
    for (uint64_t id : ids) out.emplace_back(id, false);
    return out;
  }
  Channel& c = it->second;
  c.last_used = now;
  for (uint64_t id : ids) {
    auto idit = c.ids.find(id);
    bool done = idit != c.ids.end() && idit->second;
    if (done) c.ids.erase(idit);  // a true is reported once
    out.emplace_back(id, done);
  }
  return out;
}

size_t HecAckRegistry::channel_count() const {
  std::lock_guard lk(mu_);
  return channels_.size();
}

size_t HecAckRegistry::held(std::string_view channel) const {
  std::lock_guard lk(mu_);
  auto it = channels_.find(channel);
  return it == channels_.end() ? 0 : it->second.ids.size();
}

void HecAckRegistry::drop_idle(Clock::time_point now) {
  for (auto it = channels_.begin(); it != channels_.end();) {
    if (now - it->second.last_used >= limits_.idle_timeout)
      it = channels_.erase(it);
    else
      ++it;
  }
}

}  // namespace logship::hec_receiver
