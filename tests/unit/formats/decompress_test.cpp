#include <doctest/doctest.h>

#include <random>

#include "formats_test_util.h"
#include "plugins/formats/decompress.h"

using namespace logship::formats;
using namespace logship::formats::test;

namespace {

std::string sample(size_t n, unsigned seed = 7) {
  std::mt19937 rng(seed);
  std::string s;
  s.reserve(n);
  static constexpr std::string_view kWords[] = {"alpha ",     "beta ",     "gamma\n",
                                                "{\"k\":1} ", "eni-0123 ", "10.0.0.1 "};
  while (s.size() < n) {
    s.append(kWords[rng() % 6]);
    if (rng() % 7 == 0) s.push_back(static_cast<char>(rng()));  // some binary noise
  }
  s.resize(n);
  return s;
}

bool throws_with(const std::function<void()>& f, std::string_view needle) {
  try {
    f();
  } catch (const DecompressError& e) {
    if (std::string_view(e.what()).find(needle) != std::string_view::npos) return true;
    MESSAGE("unexpected message: " << std::string(e.what()));
    return false;
  }
  return false;
}

}  // namespace

TEST_CASE("gzip: a single member decompresses whatever the piece sizes") {
  // Verifies that output is identical for 1-byte, random and whole-object feeds.
  std::string data = sample(300'000);
  std::string gz = gzip(data);
  CHECK(decompress(Compression::kGzip, gz, 1) == data);
  CHECK(decompress(Compression::kGzip, gz, 0) == data);
  CHECK(decompress(Compression::kGzip, gz, gz.size()) == data);
  Decompressor d(Compression::kGzip);
  size_t pieces_seen = 0;
  d.feed(gz, [&](std::string_view s) {
    CHECK(s.size() <= Decompressor::kPieceBytes);
    ++pieces_seen;
  });
  d.finish([](std::string_view) {});
  CHECK(pieces_seen >= 2);
  CHECK(d.total_out() == data.size());
  CHECK(d.total_in() == gz.size());
  CHECK(d.members() == 1);
}

TEST_CASE("gzip: concatenated members (cat a.gz b.gz) decompress to the concatenation") {
  std::string a = sample(100'000, 1), b = sample(70'000, 2), c = "tiny";
  std::string gz = gzip(a) + gzip(b, 1) + gzip(c) + gzip("");
  std::string want = a + b + c;
  for (size_t step : {size_t{1}, size_t{0}, size_t{7}, size_t{4096}, gz.size()}) {
    CAPTURE(step);
    CHECK(decompress(Compression::kGzip, gz, step) == want);
  }
  for (unsigned seed = 1; seed < 20; ++seed)
    CHECK(decompress(Compression::kGzip, gz, 0, {}, 0, seed) == want);
  Decompressor d(Compression::kGzip);
  d.feed(gz, [](std::string_view) {});
  d.finish([](std::string_view) {});
  CHECK(d.members() == 4);
}

TEST_CASE("gzip: a truncated stream fails at finish") {
  std::string gz = gzip(sample(50'000));
  for (size_t cut :
       {size_t{1}, size_t{5}, size_t{20}, gz.size() / 2, gz.size() - 4, gz.size() - 1}) {
    CAPTURE(cut);
    CHECK(
        throws_with([&] { decompress(Compression::kGzip, std::string_view(gz).substr(0, cut), 0); },
                    "gzip: truncated"));
  }
  // A complete first member followed by a partial second one.
  std::string two = gzip("first") + gzip("second").substr(0, 12);
  CHECK(throws_with([&] { decompress(Compression::kGzip, two, 1); }, "truncated"));
}

TEST_CASE("gzip: corrupt data fails with the compressed offset") {
  std::string gz = gzip(sample(200'000));
  std::string bad = gz;
  for (size_t i = 100; i < 400; ++i) bad[i] = static_cast<char>(bad[i] ^ 0x5a);
  CHECK(throws_with([&] { decompress(Compression::kGzip, bad, 0); },
                    "gzip: invalid data at compressed offset"));
  // A flipped CRC32 in the trailer.
  std::string crc = gz;
  crc[crc.size() - 6] = static_cast<char>(crc[crc.size() - 6] ^ 1);
  CHECK(throws_with([&] { decompress(Compression::kGzip, crc, 0); }, "CRC32"));
  // Not gzip at all.
  CHECK(throws_with([&] { decompress(Compression::kGzip, "hello world, not gzip", 0); },
                    "gzip: invalid data at compressed offset"));
}

TEST_CASE("gzip: trailing garbage after the last member is an error") {
  std::string gz = gzip("payload") + "garbage!";
  CHECK(throws_with([&] { decompress(Compression::kGzip, gz, 0); },
                    "trailing garbage after member 1"));
  CHECK(throws_with([&] { decompress(Compression::kGzip, gz, 1); }, "trailing garbage"));
  std::string zeros = gzip("payload") + std::string(16, '\0');
  CHECK_THROWS_AS(decompress(Compression::kGzip, zeros, 0), DecompressError);
}

TEST_CASE("zstd: multiple frames, any piece sizes, truncation and garbage") {
  std::string a = sample(200'000, 3), b = sample(1000, 4);
  std::string zs = zstd(a) + zstd(b, 19) + zstd("");
  for (size_t step : {size_t{1}, size_t{0}, size_t{333}, zs.size()})
    CHECK(decompress(Compression::kZstd, zs, step) == a + b);
  Decompressor d(Compression::kZstd);
  d.feed(zs, [](std::string_view) {});
  d.finish([](std::string_view) {});
  CHECK(d.members() == 3);
  CHECK(throws_with([&] { decompress(Compression::kZstd, std::string_view(zs).substr(0, 100), 0); },
                    "zstd: truncated"));
  CHECK(throws_with([&] { decompress(Compression::kZstd, zstd("x") + "junkjunk", 0); },
                    "zstd: invalid data at compressed offset"));
}

TEST_CASE("the output limit (zip-bomb guard) throws its own error type") {
  std::string zeros(5 << 20, '\0');
  std::string gz = gzip(zeros, 9);
  CHECK(gz.size() < 20'000);
  try {
    decompress(Compression::kGzip, gz, 4096, {}, 1 << 20);
    FAIL("no exception");
  } catch (const DecompressLimitError& e) {
    CHECK(std::string(e.what()) == "decompressed size exceeds max_object_bytes (1048576)");
    CHECK(e.limit() == 1u << 20);
  }
  CHECK_THROWS_AS(decompress(Compression::kZstd, zstd(zeros), 0, {}, 1 << 20),
                  DecompressLimitError);
  CHECK_THROWS_AS(decompress(Compression::kNone, zeros, 0, {}, 1 << 20), DecompressLimitError);
  // Exactly at the limit is fine.
  CHECK(decompress(Compression::kGzip, gz, 0, {}, zeros.size()).size() == zeros.size());
}

TEST_CASE("auto: magic bytes first, then the Content-Encoding hint, else none") {
  std::string data = "line one\nline two\n";
  for (size_t step : {size_t{1}, size_t{2}, size_t{3}, size_t{0}, size_t{1000}}) {
    CAPTURE(step);
    CHECK(decompress(Compression::kAuto, gzip(data), step) == data);
    CHECK(decompress(Compression::kAuto, zstd(data), step) == data);
    CHECK(decompress(Compression::kAuto, data, step) == data);
    // Magic bytes win over a wrong hint.
    CHECK(decompress(Compression::kAuto, gzip(data), step, "zstd") == data);
    CHECK(decompress(Compression::kAuto, zstd(data), step, "gzip") == data);
  }
  Decompressor d(Compression::kAuto);
  CHECK(d.codec() == Compression::kAuto);
  d.feed(gzip("x"), [](std::string_view) {});
  CHECK(d.codec() == Compression::kGzip);
  // No magic: the hint decides (here it is wrong, so decoding fails).
  CHECK_THROWS_AS(decompress(Compression::kAuto, data, 0, "gzip"), DecompressError);
  CHECK_THROWS_AS(decompress(Compression::kAuto, data, 0, " X-GZIP "), DecompressError);
  CHECK_THROWS_AS(decompress(Compression::kAuto, data, 0, "zstd"), DecompressError);
  CHECK(decompress(Compression::kAuto, data, 0, "identity") == data);
  // Short objects: fewer bytes than any magic number.
  CHECK(decompress(Compression::kAuto, "a", 1) == "a");
  CHECK(decompress(Compression::kAuto, "\x28\xb5", 1) == "\x28\xb5");
  CHECK(decompress(Compression::kAuto, "", 1).empty());
  CHECK_THROWS_AS(decompress(Compression::kAuto, "\x1f\x8b", 1),
                  DecompressError);  // truncated gzip
}

TEST_CASE("none passes bytes through in bounded pieces and empty objects are valid") {
  std::string data = sample(600'000);
  CHECK(decompress(Compression::kNone, data, data.size()) == data);
  CHECK(decompress(Compression::kGzip, "", 1).empty());
  CHECK(decompress(Compression::kZstd, "", 1).empty());
  CHECK(parse_compression("gzip") == Compression::kGzip);
  CHECK(parse_compression("auto") == Compression::kAuto);
  CHECK_FALSE(parse_compression("brotli"));
  CHECK(compression_name(Compression::kZstd) == "zstd");
}
