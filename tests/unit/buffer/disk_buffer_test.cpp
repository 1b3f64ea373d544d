#include <doctest/doctest.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "agent/buffer/disk_buffer.h"
#include "agent/crypto/at_rest.h"

using namespace logship;

namespace {
std::shared_ptr<crypto::KeyRing> ring_of(char fill) {
  auto r = std::make_shared<crypto::KeyRing>();
  r->set_current(std::make_shared<crypto::MasterKey>(std::string(32, fill)));
  return r;
}
EventBatch sample() {
  EventBatch b;
  for (int i = 0; i < 100; ++i) {
    Event& e = b.add("event number " + std::to_string(i), 1700000000000000000 + i);
    e.host = b.intern("host-a");
    e.sourcetype = b.intern(i % 2 ? "st1" : "st2");
    e.flags = Event::kJsonValue;
    if (i == 7) b.set_fields(b.events().back(), "{\"k\":\"v\"}");
  }
  return b;
}
}  // namespace

TEST_CASE("disk buffer: a batch survives encode and decode unchanged") {
  EventBatch b = sample();
  std::string enc;
  encode_batch(b, enc);
  EventBatch d;
  REQUIRE(decode_batch(enc, d));
  REQUIRE(d.size() == b.size());
  for (size_t i = 0; i < b.size(); ++i) {
    const Event& x = b.events()[i];
    const Event& y = d.events()[i];
    CHECK(b.text(x) == d.text(y));
    CHECK(x.time_ns == y.time_ns);
    CHECK(b.meta(x.host) == d.meta(y.host));
    CHECK(b.meta(x.sourcetype) == d.meta(y.sourcetype));
    CHECK(b.fields(x) == d.fields(y));
    CHECK(x.flags == y.flags);
  }
}

TEST_CASE("disk buffer: a damaged payload is refused, never read out of bounds") {
  EventBatch b = sample();
  std::string enc;
  encode_batch(b, enc);
  EventBatch d;
  CHECK_FALSE(decode_batch(std::string_view(enc).substr(0, enc.size() - 1), d));
  CHECK_FALSE(decode_batch("", d));
  std::string bad = enc;
  bad[0] = '\xff';  // event count
  CHECK_FALSE(decode_batch(bad, d));
  for (size_t i = 0; i < enc.size(); i += 7) {
    std::string x = enc;
    x[i] = static_cast<char>(x[i] ^ 0x5a);
    EventBatch y;
    if (decode_batch(x, y))
      for (const Event& e : y.events()) CHECK(e.offset + e.length <= y.arena().size());
  }
}

TEST_CASE("at-rest blocks: seal, open, and every altered byte is refused") {
  auto ring = ring_of('a');
  crypto::BlockSealer sealer(*ring->current(), true, std::string("\x01\x02\x03\x04", 4));
  std::string block, err;
  std::string plain(100000, 'x');
  REQUIRE(sealer.seal(crypto::BlockKind::kBatch, 42, 123, 7, plain, block, &err));
  CHECK(block.find("xxxxxxxx") == std::string::npos);
  crypto::BlockHeader h;
  REQUIRE(crypto::BlockHeader::decode(reinterpret_cast<const uint8_t*>(block.data()), h));
  CHECK(h.sequence == 42);
  CHECK(h.events == 7);
  CHECK(h.block_bytes() == block.size());
  CHECK(h.key_id_hex() == ring->current()->id_hex());
  crypto::BlockOpener opener(ring);
  std::string out;
  auto open = [&](const std::string& b) {
    crypto::BlockHeader hh;
    if (!crypto::BlockHeader::decode(reinterpret_cast<const uint8_t*>(b.data()), hh))
      return std::string("bad header");
    return opener.open(hh, reinterpret_cast<const uint8_t*>(b.data()),
                       std::string_view(b).substr(crypto::kBlockHeaderBytes), out);
  };
  CHECK(open(block) == "");
  CHECK(out == plain);
  for (size_t i : {size_t(20), size_t(70), block.size() / 2, block.size() - 1}) {
    std::string x = block;
    x[i] = static_cast<char>(x[i] ^ 1);
    CHECK(open(x) != "");
  }
  // Another key cannot open it, and says which key id it needs.
  crypto::BlockOpener other(ring_of('b'));
  std::string e = other.open(h, reinterpret_cast<const uint8_t*>(block.data()),
                             std::string_view(block).substr(crypto::kBlockHeaderBytes), out);
  CHECK(e.find(ring->current()->id_hex()) != std::string::npos);
}

TEST_CASE("at-rest blocks: nonces are the prefix and the sequence, distinct per block") {
  auto ring = ring_of('c');
  crypto::BlockSealer sealer(*ring->current(), false, std::string("\xaa\xbb\xcc\xdd", 4));
  std::string b1, b2, err;
  REQUIRE(sealer.seal(crypto::BlockKind::kBatch, 1, 0, 1, "same", b1, &err));
  REQUIRE(sealer.seal(crypto::BlockKind::kBatch, 2, 0, 1, "same", b2, &err));
  crypto::BlockHeader h1, h2;
  REQUIRE(crypto::BlockHeader::decode(reinterpret_cast<const uint8_t*>(b1.data()), h1));
  REQUIRE(crypto::BlockHeader::decode(reinterpret_cast<const uint8_t*>(b2.data()), h2));
  CHECK(h1.nonce != h2.nonce);
  CHECK(std::memcmp(h1.nonce.data(), "\xaa\xbb\xcc\xdd", 4) == 0);
  CHECK(b1.substr(crypto::kBlockHeaderBytes) != b2.substr(crypto::kBlockHeaderBytes));
}

TEST_CASE("at-rest keys: the id is the documented HMAC, distinct per key") {
  crypto::MasterKey a(std::string(32, 'a')), b(std::string(32, 'b'));
  CHECK(a.id_hex().size() == 16);
  CHECK(a.id_hex() != b.id_hex());
  CHECK(crypto::key_id_hex(std::string(32, 'a')) == a.id_hex());
  CHECK(a.block_key() != a.index_key());
}

namespace {
struct TempDir {
  std::string path;
  TempDir() {
    char t[] = "/tmp/logship-dbuf-XXXXXX";
    path = ::mkdtemp(t);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
};

DiskBufferConfig small_cfg(const std::string& dir) {
  DiskBufferConfig c;
  c.path = dir + "/buf";
  c.segment_bytes = 1 << 20;
  c.max_bytes = 64 << 20;
  c.sync_interval = std::chrono::milliseconds(5);
  return c;
}

/// Writes `batches` batches of 100 events (numbered from `first`) through a buffer and stops.
void write_batches(const DiskBufferConfig& cfg, std::shared_ptr<crypto::KeyRing> ring, int batches,
                   int first, int& acked) {
  asio::io_context ioc;
  DiskBuffer buf(cfg, ring, "t", "blackhole");
  buf.open();
  BatchChannel in(8u << 20, 1024), out(8u << 20, 1024);
  Lifecycle abort;
  asio::co_spawn(ioc, buf.run_writer(in, out, abort), asio::detached);
  asio::co_spawn(
      ioc,
      [&]() -> awaitable<void> {
        for (int b = 0; b < batches; ++b) {
          auto batch = std::make_shared<EventBatch>();
          for (int i = 0; i < 100; ++i) {
            // Incompressible padding: several segments of 1 MiB.
            std::string text = "event " + std::to_string(first + b * 100 + i) + " ";
            uint64_t x = static_cast<uint64_t>(first + b * 100 + i) * 2654435761u + 1;
            for (int k = 0; k < 2000; ++k) {
              x = x * 6364136223846793005ull + 1442695040888963407ull;
              text.push_back(static_cast<char>('a' + (x >> 59)));
            }
            batch->add(text, 1);
          }
          BatchRef ref;
          ref.batch = batch;
          ref.ack = AckHandle::make([&](DeliveryStatus s) {
            if (s == DeliveryStatus::kDelivered) ++acked;
          });
          size_t sz = batch->byte_size();
          co_await in.send(std::move(ref), sz);
        }
        in.close();
      },
      asio::detached);
  ioc.run();
  buf.close();
}

/// Reads everything back; returns the event numbers seen (each batch acknowledged).
std::vector<int> read_all(const DiskBufferConfig& cfg, std::shared_ptr<crypto::KeyRing> ring,
                          uint64_t expect_events, uint64_t* corrupt = nullptr) {
  asio::io_context ioc;
  DiskBuffer buf(cfg, ring, "t", "blackhole");
  buf.open();
  BatchChannel in(8u << 20, 1024), out(8u << 20, 1024);
  Lifecycle abort;
  std::vector<int> seen;
  asio::co_spawn(ioc, buf.run_writer(in, out, abort), asio::detached);
  asio::co_spawn(ioc, buf.run_reader(out), asio::detached);
  asio::co_spawn(
      ioc,
      [&]() -> awaitable<void> {
        while (buf.pending_events() > 0 || seen.size() < expect_events) {
          bool timed_out = false;
          auto item = co_await out.receive_for(std::chrono::milliseconds(300), timed_out);
          if (!item) {
            if (timed_out && buf.pending_events() == 0) break;
            if (!timed_out) break;
            continue;
          }
          for (const Event& e : item->batch->events())
            seen.push_back(std::stoi(std::string(item->batch->text(e).substr(6, 8))));
          item->ack.finish(DeliveryStatus::kDelivered);
        }
        in.close();
      },
      asio::detached);
  ioc.run();
  buf.close();
  if (corrupt)
    *corrupt = metrics()
                   .counter("logship_buffer_corrupt_blocks_total", "", {{"component_id", "t"}})
                   .value();
  return seen;
}

std::vector<std::string> segments(const std::string& dir) {
  std::vector<std::string> v;
  for (auto& de : std::filesystem::directory_iterator(dir))
    if (de.path().extension() == ".seg") v.push_back(de.path().string());
  std::sort(v.begin(), v.end());
  return v;
}
}  // namespace

TEST_CASE("disk buffer: what is written is read back once, and a drained buffer is removed") {
  TempDir t;
  auto cfg = small_cfg(t.path);
  auto ring = ring_of('k');
  int acked = 0;
  write_batches(cfg, ring, 30, 0, acked);
  CHECK(acked == 30);
  CHECK(segments(cfg.path).size() >= 2);  // small segments: several files
  auto seen = read_all(cfg, ring, 3000);
  std::sort(seen.begin(), seen.end());
  REQUIRE(seen.size() == 3000);
  for (int i = 0; i < 3000; ++i) CHECK(seen[i] == i);
  // Everything released: a new open has nothing to deliver.
  auto again = read_all(cfg, ring, 0);
  CHECK(again.empty());
}

TEST_CASE("disk buffer: a flipped bit costs one block; a torn tail is cut; a lost index resends") {
  TempDir t;
  auto cfg = small_cfg(t.path);
  auto ring = ring_of('m');
  int acked = 0;
  write_batches(cfg, ring, 10, 0, acked);
  auto segs = segments(cfg.path);
  REQUIRE(!segs.empty());
  {
    // A bit in the middle of the first segment's data.
    std::fstream f(segs[0], std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(std::filesystem::file_size(segs[0]) / 2));
    char c = 0;
    f.read(&c, 1);
    f.seekp(static_cast<std::streamoff>(std::filesystem::file_size(segs[0]) / 2));
    c = static_cast<char>(c ^ 0x10);
    f.write(&c, 1);
  }
  {
    // The last segment loses its last 100 bytes (a torn write).
    auto last = segs.back();
    std::filesystem::resize_file(last, std::filesystem::file_size(last) - 100);
  }
  std::filesystem::remove(cfg.path + "/index");
  uint64_t corrupt = 0;
  auto seen = read_all(cfg, ring, 800, &corrupt);
  std::sort(seen.begin(), seen.end());
  seen.erase(std::unique(seen.begin(), seen.end()), seen.end());
  // 10 batches: one lost to the flipped bit, one to the cut; the rest delivered.
  CHECK(seen.size() == 800);
  CHECK(corrupt >= 1);
}

TEST_CASE("disk buffer: a block under an unknown key stops the open and changes nothing") {
  TempDir t;
  auto cfg = small_cfg(t.path);
  int acked = 0;
  write_batches(cfg, ring_of('a'), 3, 0, acked);
  auto before = segments(cfg.path);
  std::vector<uintmax_t> sizes;
  for (auto& s : before) sizes.push_back(std::filesystem::file_size(s));
  DiskBuffer buf(cfg, ring_of('b'), "t", "blackhole");
  std::string msg;
  try {
    buf.open();
  } catch (const std::exception& e) {
    msg = e.what();
  }
  CHECK(msg.find(crypto::key_id_hex(std::string(32, 'a'))) != std::string::npos);
  CHECK(segments(cfg.path) == before);
  for (size_t i = 0; i < before.size(); ++i)
    CHECK(std::filesystem::file_size(before[i]) == sizes[i]);
  // With the old key as a previous one, everything drains.
  auto ring = ring_of('b');
  ring->add_previous(std::make_shared<crypto::MasterKey>(std::string(32, 'a')));
  auto seen = read_all(cfg, ring, 300);
  CHECK(seen.size() == 300);
}
