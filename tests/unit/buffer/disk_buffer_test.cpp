#include <doctest/doctest.h>

#include <cstring>

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
