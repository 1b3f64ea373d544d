// Verifies the per-channel ackId state of the splunk_hec source.
#include <doctest/doctest.h>

#include "plugins/sources/splunk_hec/acks.h"

using namespace logship;
using namespace logship::hec_receiver;

namespace {
using Clock = HecAckRegistry::Clock;
const std::string kA = "FE0ECFAD-13D5-401B-847D-77833BD77131";
const std::string kB = "0E0ECFAD-13D5-401B-847D-77833BD77132";
}  // namespace

TEST_CASE("ackIds count from 0 per channel") {
  auto reg = std::make_shared<HecAckRegistry>(HecAckRegistry::Limits{});
  auto t = Clock::now();
  CHECK(reg->reserve(kA, t).id == 0);
  CHECK(reg->reserve(kA, t).id == 1);
  CHECK(reg->reserve(kB, t).id == 0);
  CHECK(reg->channel_count() == 2);
}

TEST_CASE("an ack is true once after a final status, then forgotten") {
  auto reg = std::make_shared<HecAckRegistry>(HecAckRegistry::Limits{});
  auto t = Clock::now();
  auto r0 = reg->reserve(kA, t);
  auto r1 = reg->reserve(kA, t);
  {
    AckHandle h0 = reg->make_handle(kA, r0);
    AckHandle h1 = reg->make_handle(kA, r1);
    auto q = reg->query(kA, {0, 1}, t);
    CHECK(q == std::vector<std::pair<uint64_t, bool>>{{0, false}, {1, false}});
    h0.finish(DeliveryStatus::kDelivered);
    AckHandle share = h1.share();
    h1.finish(DeliveryStatus::kDelivered);  // one share still outstanding
  }  // `share` destroyed without a report: kErrored -> id 1 forgotten
  CHECK(reg->query(kA, {0, 1}, t) == std::vector<std::pair<uint64_t, bool>>{{0, true}, {1, false}});
  CHECK(reg->query(kA, {0, 1}, t) ==
        std::vector<std::pair<uint64_t, bool>>{{0, false}, {1, false}});
  CHECK(reg->held(kA) == 0);
}

TEST_CASE("dead-lettered and dropped batches are final: their ack turns true") {
  auto reg = std::make_shared<HecAckRegistry>(HecAckRegistry::Limits{});
  auto t = Clock::now();
  auto r = reg->reserve(kA, t);
  reg->make_handle(kA, r).finish(DeliveryStatus::kDeadLettered);
  CHECK(reg->query(kA, {r.id}, t)[0].second);
}

TEST_CASE("unknown channels and ids answer false") {
  auto reg = std::make_shared<HecAckRegistry>(HecAckRegistry::Limits{});
  auto q = reg->query(kB, {5}, Clock::now());
  CHECK(q == std::vector<std::pair<uint64_t, bool>>{{5, false}});
}

TEST_CASE("pending ackIds per channel and channels are bounded") {
  HecAckRegistry::Limits lim;
  lim.max_pending_per_channel = 2;
  lim.max_channels = 1;
  lim.idle_timeout = std::chrono::seconds(600);
  auto reg = std::make_shared<HecAckRegistry>(lim);
  auto t = Clock::now();
  auto r0 = reg->reserve(kA, t);
  CHECK(reg->reserve(kA, t).status == HecAckRegistry::Reserve::kOk);
  CHECK(reg->reserve(kA, t).status == HecAckRegistry::Reserve::kChannelFull);
  CHECK(reg->reserve(kB, t).status == HecAckRegistry::Reserve::kTooManyChannels);
  // A true answered frees its slot.
  reg->complete(kA, r0.generation, r0.id, DeliveryStatus::kDelivered);
  reg->query(kA, {0}, t);
  CHECK(reg->reserve(kA, t).status == HecAckRegistry::Reserve::kOk);
  // An idle channel makes room for a new one.
  auto later = t + std::chrono::seconds(601);
  CHECK(reg->reserve(kB, later).status == HecAckRegistry::Reserve::kOk);
  CHECK(reg->channel_count() == 1);
}

TEST_CASE("a completion for a dropped channel does not touch its successor") {
  HecAckRegistry::Limits lim;
  lim.max_channels = 1;
  lim.idle_timeout = std::chrono::seconds(1);
  auto reg = std::make_shared<HecAckRegistry>(lim);
  auto t = Clock::now();
  auto old = reg->reserve(kA, t);
  reg->reserve(kB, t + std::chrono::seconds(2));               // drops kA
  auto fresh = reg->reserve(kA, t + std::chrono::seconds(4));  // drops kB, new kA generation
  CHECK(fresh.id == 0);
  reg->complete(kA, old.generation, old.id, DeliveryStatus::kDelivered);
  CHECK_FALSE(reg->query(kA, {0}, t + std::chrono::seconds(4))[0].second);
}

TEST_CASE("a handle outliving the registry is harmless") {
  AckHandle h;
  {
    auto reg = std::make_shared<HecAckRegistry>(HecAckRegistry::Limits{});
    h = reg->make_handle(kA, reg->reserve(kA, Clock::now()));
  }
  h.finish(DeliveryStatus::kDelivered);
}
