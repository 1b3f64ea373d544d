#include "agent/pipeline/ack.h"

namespace logship {

const char* to_string(DeliveryStatus s) {
  switch (s) {
    case DeliveryStatus::kDelivered: return "delivered";
    case DeliveryStatus::kDropped: return "dropped";
    case DeliveryStatus::kDeadLettered: return "dead_lettered";
    case DeliveryStatus::kErrored: return "errored";
  }
  return "unknown";
}

AckHandle::State::~State() {
  if (cb) cb(static_cast<DeliveryStatus>(status.load()));
}

AckHandle AckHandle::make(Callback cb) {
  AckHandle h;
  h.st_ = std::make_shared<State>();
  h.st_->cb = std::move(cb);
  return h;
}

AckHandle& AckHandle::operator=(AckHandle&& o) noexcept {
  if (this != &o) {
    if (st_) finish(DeliveryStatus::kErrored);
    st_ = std::move(o.st_);
  }
  return *this;
}

AckHandle::~AckHandle() {
  if (st_) finish(DeliveryStatus::kErrored);
}

AckHandle AckHandle::share() const {
  AckHandle h;
  h.st_ = st_;
  return h;
}

void AckHandle::finish(DeliveryStatus s) {
  if (!st_) return;
  uint8_t v = static_cast<uint8_t>(s);
  uint8_t cur = st_->status.load();
  while (cur < v && !st_->status.compare_exchange_weak(cur, v)) {
  }
  st_.reset();  // the last reset runs State::~State and the callback
}

}  // namespace logship
