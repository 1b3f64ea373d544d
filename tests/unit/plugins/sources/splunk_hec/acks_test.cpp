// Verifies the per-channel ackId state of the splunk_hec source.
#include <doctest/doctest.h>

#include <fmt/format.h>

#include "plugins/sources/splunk_hec/acks.h"

using namespace logship;
using namespace logship::hec_receiver;

namespace {
using Clock = HecAckRegistry::Clock;
const std::string kA = "FE0ECFAD-13D5-401B-847D-77833BD77131";
const std::string kB = "0E0ECFAD-13D5-401B-847D-77833BD77132";
const HecAckRegistry::Owner kMe{1, "127.0.0.1"};
}  // namespace

TEST_CASE("ackIds count from 0 per channel") {
  auto reg = std::make_shared<HecAckRegistry>(HecAckRegistry::Limits{});
  auto t = Clock::now();
  CHECK(reg->reserve(kMe, kA, t).id == 0);
  CHECK(reg->reserve(kMe, kA, t).id == 1);
  CHECK(reg->reserve(kMe, kB, t).id == 0);
  CHECK(reg->channel_count() == 2);
}

TEST_CASE("an ack is true once after a final status, then forgotten") {
  auto reg = std::make_shared<HecAckRegistry>(HecAckRegistry::Limits{});
  auto t = Clock::now();
  auto r0 = reg->reserve(kMe, kA, t);
  auto r1 = reg->reserve(kMe, kA, t);
  {
    AckHandle h0 = reg->make_handle(kMe, kA, r0);
    AckHandle h1 = reg->make_handle(kMe, kA, r1);
    auto q = reg->query(kMe, kA, {0, 1}, t);
    CHECK(q == std::vector<std::pair<uint64_t, bool>>{{0, false}, {1, false}});
    h0.finish(DeliveryStatus::kDelivered);
    AckHandle share = h1.share();
    h1.finish(DeliveryStatus::kDelivered);  // one share still outstanding
  }  // `share` destroyed without a report: kErrored -> id 1 forgotten
  CHECK(reg->query(kMe, kA, {0, 1}, t) ==
        std::vector<std::pair<uint64_t, bool>>{{0, true}, {1, false}});
  CHECK(reg->query(kMe, kA, {0, 1}, t) ==
        std::vector<std::pair<uint64_t, bool>>{{0, false}, {1, false}});
  CHECK(reg->held(kMe.token, kA) == 0);
}

TEST_CASE("dead-lettered and dropped batches are final: their ack turns true") {
  auto reg = std::make_shared<HecAckRegistry>(HecAckRegistry::Limits{});
  auto t = Clock::now();
  auto r = reg->reserve(kMe, kA, t);
  reg->make_handle(kMe, kA, r).finish(DeliveryStatus::kDeadLettered);
  CHECK(reg->query(kMe, kA, {r.id}, t)[0].second);
}

TEST_CASE("unknown channels and ids answer false") {
  auto reg = std::make_shared<HecAckRegistry>(HecAckRegistry::Limits{});
  auto q = reg->query(kMe, kB, {5}, Clock::now());
  CHECK(q == std::vector<std::pair<uint64_t, bool>>{{5, false}});
}

TEST_CASE("pending ackIds per channel and channels are bounded") {
  HecAckRegistry::Limits lim;
  lim.max_pending_per_channel = 2;
  lim.max_channels = 1;
  lim.idle_timeout = std::chrono::seconds(600);
  auto reg = std::make_shared<HecAckRegistry>(lim);
  auto t = Clock::now();
  auto r0 = reg->reserve(kMe, kA, t);
  CHECK(reg->reserve(kMe, kA, t).status == HecAckRegistry::Reserve::kOk);
  CHECK(reg->reserve(kMe, kA, t).status == HecAckRegistry::Reserve::kChannelFull);
  CHECK(reg->reserve(kMe, kB, t).status == HecAckRegistry::Reserve::kTooManyChannels);
  // A true answered frees its slot.
  reg->make_handle(kMe, kA, r0).finish(DeliveryStatus::kDelivered);
  reg->query(kMe, kA, {0}, t);
  CHECK(reg->reserve(kMe, kA, t).status == HecAckRegistry::Reserve::kOk);
  // An idle channel makes room for a new one.
  auto later = t + std::chrono::seconds(601);
  CHECK(reg->reserve(kMe, kB, later).status == HecAckRegistry::Reserve::kOk);
  CHECK(reg->channel_count() == 1);
}

TEST_CASE("a completion for a dropped channel does not touch its successor") {
  HecAckRegistry::Limits lim;
  lim.max_channels = 1;
  lim.idle_timeout = std::chrono::seconds(1);
  auto reg = std::make_shared<HecAckRegistry>(lim);
  auto t = Clock::now();
  auto old = reg->reserve(kMe, kA, t);
  reg->reserve(kMe, kB, t + std::chrono::seconds(2));               // drops kA
  auto fresh = reg->reserve(kMe, kA, t + std::chrono::seconds(4));  // drops kB, new kA generation
  CHECK(fresh.id == 0);
  reg->make_handle(kMe, kA, old).finish(DeliveryStatus::kDelivered);
  CHECK_FALSE(reg->query(kMe, kA, {0}, t + std::chrono::seconds(4))[0].second);
}

TEST_CASE("a handle outliving the registry is harmless") {
  AckHandle h;
  {
    auto reg = std::make_shared<HecAckRegistry>(HecAckRegistry::Limits{});
    h = reg->make_handle(kMe, kA, reg->reserve(kMe, kA, Clock::now()));
  }
  h.finish(DeliveryStatus::kDelivered);
}

TEST_CASE("channels are per token: another token neither reads nor consumes them") {
  auto reg = std::make_shared<HecAckRegistry>(HecAckRegistry::Limits{});
  auto t = Clock::now();
  HecAckRegistry::Owner other{2, "127.0.0.1"};
  auto r = reg->reserve(kMe, kA, t);
  reg->make_handle(kMe, kA, r).finish(DeliveryStatus::kDelivered);
  CHECK_FALSE(reg->query(other, kA, {0}, t)[0].second);
  CHECK(reg->reserve(other, kA, t).id == 0);  // its own channel of that name
  CHECK(reg->query(kMe, kA, {0}, t)[0].second);
}

TEST_CASE("one token or one client cannot take every channel") {
  HecAckRegistry::Limits lim;
  lim.max_channels = 100;
  lim.max_channels_per_token = 3;
  lim.max_channels_per_client = 5;
  auto reg = std::make_shared<HecAckRegistry>(lim);
  auto t = Clock::now();
  auto ch = [](int i) { return fmt::format("{:08d}-13D5-401B-847D-77833BD77131", i); };
  HecAckRegistry::Owner a{10, "10.0.0.1"}, b{11, "10.0.0.1"}, c{12, "10.0.0.2"};
  for (int i = 0; i < 3; ++i)
    CHECK(reg->reserve(a, ch(i), t).status == HecAckRegistry::Reserve::kOk);
  CHECK(reg->reserve(a, ch(3), t).status == HecAckRegistry::Reserve::kTokenChannels);
  // Another token from the same client: up to the client's limit.
  CHECK(reg->reserve(b, ch(0), t).status == HecAckRegistry::Reserve::kOk);
  CHECK(reg->reserve(b, ch(1), t).status == HecAckRegistry::Reserve::kOk);
  CHECK(reg->reserve(b, ch(2), t).status == HecAckRegistry::Reserve::kClientChannels);
  // Another client is served.
  CHECK(reg->reserve(c, ch(0), t).status == HecAckRegistry::Reserve::kOk);
  // A channel whose ackIds were all reported makes room for the same token's next channel.
  auto r = reg->reserve(a, ch(0), t);  // id 1 on a's ch(0)
  reg->make_handle(a, ch(0), HecAckRegistry::Reservation{r.status, 0, r.generation})
      .finish(DeliveryStatus::kDelivered);
  reg->make_handle(a, ch(0), r).finish(DeliveryStatus::kDelivered);
  CHECK(reg->query(a, ch(0), {0, 1}, t) ==
        std::vector<std::pair<uint64_t, bool>>{{0, true}, {1, true}});
  CHECK(reg->held(a.token, ch(0)) == 0);
  CHECK(reg->reserve(a, ch(7), t + std::chrono::milliseconds(1)).status ==
        HecAckRegistry::Reserve::kOk);
  CHECK(reg->dropped() == 1);
}

TEST_CASE("idle channels are dropped after idle_timeout even without pressure") {
  HecAckRegistry::Limits lim;
  lim.idle_timeout = std::chrono::seconds(5);
  auto reg = std::make_shared<HecAckRegistry>(lim);
  auto t = Clock::now();
  reg->reserve(kMe, kA, t);
  reg->reserve(kMe, kB, t + std::chrono::seconds(3));
  CHECK(reg->channel_count() == 2);
  reg->reserve(kMe, kB, t + std::chrono::seconds(6));
  CHECK(reg->channel_count() == 1);
  CHECK(reg->held(kMe.token, kA) == 0);
}
