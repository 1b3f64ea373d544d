#include "agent/pipeline/registry.h"

namespace logship {

std::vector<std::string> Registry::source_types() const {
  std::vector<std::string> v;
  for (auto& [k, _] : sources_) v.push_back(k);
  return v;
}
std::vector<std::string> Registry::sink_types() const {
  std::vector<std::string> v;
  for (auto& [k, _] : sinks_) v.push_back(k);
  return v;
}

std::vector<std::string> Registry::transform_types() const {
  std::vector<std::string> v;
  for (auto& [k, _] : transforms_) v.push_back(k);
  return v;
}

const Registry& builtin_registry() {
  static const Registry r = [] {
    Registry x;
    register_builtin_plugins(x);
    return x;
  }();
  return r;
}

awaitable<bool> Fanout::send(EventBatch&& batch, AckHandle ack) {
  BatchPtr shared = std::make_shared<const EventBatch>(std::move(batch));
  co_return co_await send(std::move(shared), std::move(ack));
}

awaitable<bool> Fanout::send(BatchPtr shared, AckHandle ack) {
  size_t bytes = shared->byte_size();
  size_t events = shared->size();
  bool ok = true;
  for (size_t i = 0; i < outs_.size(); ++i) {
    BatchRef ref{shared, i + 1 == outs_.size() ? std::move(ack) : ack.share()};
    if (outs_[i].drop) {
      if (!outs_[i].ch->try_send(ref, bytes)) {
        if (outs_[i].dropped) outs_[i].dropped->inc(events);
        ref.ack.finish(DeliveryStatus::kDropped);
      }
      continue;
    }
    if (!co_await outs_[i].ch->send(std::move(ref), bytes)) ok = false;
  }
  co_return ok;
}

}  // namespace logship
