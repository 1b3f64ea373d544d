// Acknowledgements and the source-side window (checkpoint contract).
#include <doctest/doctest.h>

#include <thread>
#include <vector>

#include "agent/pipeline/ack.h"
#include "agent/pipeline/ack_window.h"

using namespace logship;

TEST_CASE("an ack fires once with the worst status after every share reported") {
  std::vector<DeliveryStatus> seen;
  {
    AckHandle a = AckHandle::make([&](DeliveryStatus s) { seen.push_back(s); });
    AckHandle b = a.share();
    AckHandle c = a.share();
    a.finish(DeliveryStatus::kDelivered);
    CHECK(seen.empty());
    b.finish(DeliveryStatus::kDeadLettered);
    CHECK(seen.empty());
    c.finish(DeliveryStatus::kDelivered);
  }
  REQUIRE(seen.size() == 1);
  CHECK(seen[0] == DeliveryStatus::kDeadLettered);
}

TEST_CASE("an ack share destroyed without a report counts as errored") {
  DeliveryStatus got = DeliveryStatus::kDelivered;
  {
    AckHandle a = AckHandle::make([&](DeliveryStatus s) { got = s; });
    AckHandle b = a.share();
    a.finish(DeliveryStatus::kDelivered);
  }
  CHECK(got == DeliveryStatus::kErrored);
  CHECK_FALSE(is_final(got));
  CHECK(is_final(DeliveryStatus::kDeadLettered));
  CHECK(is_final(DeliveryStatus::kDropped));
}

TEST_CASE("out-of-order completions advance the window only over contiguous finished ranges") {
  std::vector<uint64_t> advances;
  AckWindow<uint64_t> w(0, [&](const uint64_t& p) { advances.push_back(p); });
  AckHandle a = w.add(100), b = w.add(200), c = w.add(300), d = w.add(400);
  c.finish(DeliveryStatus::kDelivered);
  b.finish(DeliveryStatus::kDelivered);
  CHECK(w.committed() == 0);  // batch a still pending: nothing may be checkpointed
  CHECK(advances.empty());
  a.finish(DeliveryStatus::kDelivered);
  CHECK(w.committed() == 300);  // a, b, c all final
  REQUIRE(advances.size() == 1);
  CHECK(advances.back() == 300);
  d.finish(DeliveryStatus::kDelivered);
  CHECK(w.committed() == 400);
  CHECK(w.pending() == 0);
}

TEST_CASE("dead-lettered and dropped batches count as finished for the checkpoint") {
  AckWindow<uint64_t> w(10, nullptr);
  AckHandle a = w.add(20), b = w.add(30), c = w.add(40);
  b.finish(DeliveryStatus::kDeadLettered);
  a.finish(DeliveryStatus::kDelivered);
  c.finish(DeliveryStatus::kDropped);
  CHECK(w.committed() == 40);
}

TEST_CASE("an errored batch holds the window so its data is read again after a restart") {
  AckWindow<uint64_t> w(0, nullptr);
  AckHandle a = w.add(1), b = w.add(2);
  { AckHandle dropped = std::move(a); }  // abandoned: reports kErrored
  b.finish(DeliveryStatus::kDelivered);
  CHECK(w.committed() == 0);
  CHECK(w.stalled());
}

TEST_CASE("completions from many threads commit the last position exactly") {
  AckWindow<uint64_t> w(0, nullptr);
  std::vector<AckHandle> hs;
  for (uint64_t i = 1; i <= 1000; ++i) hs.push_back(w.add(i));
  std::vector<std::thread> ts;
  for (int t = 0; t < 4; ++t)
    ts.emplace_back([&, t] {
      for (size_t i = static_cast<size_t>(t); i < hs.size(); i += 4)
        hs[i].finish(DeliveryStatus::kDelivered);
    });
  for (auto& t : ts) t.join();
  CHECK(w.committed() == 1000);
}

TEST_CASE("an ack outliving its window is harmless") {
  AckHandle h;
  {
    AckWindow<uint64_t> w(0, nullptr);
    h = w.add(5);
  }
  h.finish(DeliveryStatus::kDelivered);
}
