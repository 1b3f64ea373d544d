#include "plugins/sources/splunk_hec/acks.h"

#include <cstring>

namespace logship::hec_receiver {

std::string HecAckRegistry::key_of(uint64_t token, std::string_view channel) {
  std::string k(sizeof token, '\0');
  std::memcpy(k.data(), &token, sizeof token);
  k.append(channel);
  return k;
}

void HecAckRegistry::erase(Map::iterator it) {
  if (auto t = per_token_.find(it->second.token); t != per_token_.end() && --t->second == 0)
    per_token_.erase(t);
  if (auto c = per_client_.find(it->second.client); c != per_client_.end() && --c->second == 0)
    per_client_.erase(c);
  channels_.erase(it);
  ++dropped_;
}

template <class Pick>
bool HecAckRegistry::evict_empty(Pick pick) {
  auto victim = channels_.end();
  for (auto it = channels_.begin(); it != channels_.end(); ++it) {
    if (!it->second.ids.empty() || !pick(it->second)) continue;
    if (victim == channels_.end() || it->second.last_used < victim->second.last_used) victim = it;
  }
  if (victim == channels_.end()) return false;
  erase(victim);
  return true;
}

HecAckRegistry::Reservation HecAckRegistry::reserve(const Owner& who, std::string_view channel,
                                                    Clock::time_point now) {
  std::lock_guard lk(mu_);
  // Idle channels go at least once a second (a scan of at most max_channels entries).
  if (now - last_sweep_ >= std::chrono::seconds(1)) {
    drop_idle(now);
    last_sweep_ = now;
  }
  std::string key = key_of(who.token, channel);
  auto it = channels_.find(key);
  if (it == channels_.end()) {
    auto count = [](const auto& m, const auto& k) {
      auto i = m.find(k);
      return i == m.end() ? size_t{0} : i->second;
    };
    // Room under each limit: an idle channel first, then an empty one (least recently used) of
    // the same token, the same client, or anyone's.
    if (count(per_token_, who.token) >= limits_.max_channels_per_token &&
        !evict_empty([&](const Channel& c) { return c.token == who.token; }))
      return {Reserve::kTokenChannels, 0, 0};
    if (count(per_client_, who.client) >= limits_.max_channels_per_client &&
        !evict_empty([&](const Channel& c) { return c.client == who.client; }))
      return {Reserve::kClientChannels, 0, 0};
    if (channels_.size() >= limits_.max_channels &&
        !evict_empty([](const Channel&) { return true; }))
      return {Reserve::kTooManyChannels, 0, 0};
    it = channels_.emplace(std::move(key), Channel{}).first;
    it->second.generation = next_generation_++;
    it->second.token = who.token;
    it->second.client = who.client;
    ++per_token_[who.token];
    ++per_client_[who.client];
  }
  Channel& c = it->second;
  c.last_used = now;
  if (c.ids.size() >= limits_.max_pending_per_channel) return {Reserve::kChannelFull, 0, 0};
  uint64_t id = c.next_id++;
  c.ids.emplace(id, false);
  return {Reserve::kOk, id, c.generation};
}

void HecAckRegistry::complete(const std::string& key, uint64_t generation, uint64_t id,
                              DeliveryStatus s) {
  std::lock_guard lk(mu_);
  auto it = channels_.find(key);
  if (it == channels_.end() || it->second.generation != generation) return;
  auto idit = it->second.ids.find(id);
  if (idit == it->second.ids.end()) return;
  if (is_final(s))
    idit->second = true;
  else
    it->second.ids.erase(idit);
}

AckHandle HecAckRegistry::make_handle(const Owner& who, std::string_view channel,
                                      const Reservation& r) {
  std::weak_ptr<HecAckRegistry> self = weak_from_this();
  return AckHandle::make(
      [self, key = key_of(who.token, channel), gen = r.generation, id = r.id](DeliveryStatus s) {
        if (auto reg = self.lock()) reg->complete(key, gen, id, s);
      });
}

std::vector<std::pair<uint64_t, bool>> HecAckRegistry::query(const Owner& who,
                                                             std::string_view channel,
                                                             const std::vector<uint64_t>& ids,
                                                             Clock::time_point now) {
  std::vector<std::pair<uint64_t, bool>> out;
  out.reserve(ids.size());
  std::lock_guard lk(mu_);
  auto it = channels_.find(key_of(who.token, channel));
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

size_t HecAckRegistry::held(uint64_t token, std::string_view channel) const {
  std::lock_guard lk(mu_);
  auto it = channels_.find(key_of(token, channel));
  return it == channels_.end() ? 0 : it->second.ids.size();
}

uint64_t HecAckRegistry::dropped() const {
  std::lock_guard lk(mu_);
  return dropped_;
}

void HecAckRegistry::drop_idle(Clock::time_point now) {
  for (auto it = channels_.begin(); it != channels_.end();) {
    auto next = std::next(it);
    if (now - it->second.last_used >= limits_.idle_timeout) erase(it);
    it = next;
  }
}

}  // namespace logship::hec_receiver
