#pragma once
// Helpers for the formats tests: compressors and chunked feeding.
#include <zlib.h>
#include <zstd.h>

#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "plugins/formats/decompress.h"
#include "plugins/formats/format.h"

namespace logship::formats::test {

/// One gzip member (zlib, gzip wrapper).
inline std::string gzip(std::string_view in, int level = 6) {
  z_stream zs{};
  if (deflateInit2(&zs, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
    throw std::runtime_error("deflateInit2");
  std::string out(deflateBound(&zs, in.size()) + 64, '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  zs.avail_in = static_cast<uInt>(in.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  int rc = deflate(&zs, Z_FINISH);
  deflateEnd(&zs);
  if (rc != Z_STREAM_END) throw std::runtime_error("deflate");
  out.resize(zs.total_out);
  return out;
}

/// One zstd frame.
inline std::string zstd(std::string_view in, int level = 3) {
  std::string out(ZSTD_compressBound(in.size()), '\0');
  size_t n = ZSTD_compress(out.data(), out.size(), in.data(), in.size(), level);
  if (ZSTD_isError(n)) throw std::runtime_error("ZSTD_compress");
  out.resize(n);
  return out;
}

/// Splits `s` into pieces: every piece `step` bytes, or random sizes in [1, max_piece] when
/// step == 0.
inline std::vector<std::string_view> pieces(std::string_view s, size_t step, size_t max_piece = 64,
                                            unsigned seed = 1) {
  std::vector<std::string_view> r;
  std::mt19937 rng(seed);
  std::uniform_int_distribution<size_t> d(1, max_piece);
  size_t i = 0;
  while (i < s.size()) {
    size_t n = step ? step : d(rng);
    n = std::min(n, s.size() - i);
    r.push_back(s.substr(i, n));
    i += n;
  }
  return r;
}

/// Decompresses `in` fed as `pieces(in, step)`; returns the output.
inline std::string decompress(Compression c, std::string_view in, size_t step = 0,
                              std::string_view content_encoding = {}, uint64_t max_out = 0,
                              unsigned seed = 1) {
  Decompressor d(c, content_encoding, max_out);
  std::string out;
  auto sink = [&](std::string_view s) {
    if (s.size() > Decompressor::kPieceBytes) throw std::runtime_error("piece too large");
    out.append(s);
  };
  for (auto p : pieces(in, step, 64, seed)) d.feed(p, sink);
  d.finish(sink);
  return out;
}

/// A record with its views copied.
struct Rec {
  std::string text;
  int64_t time_ns = 0;
  bool time_set = false;
  bool json_value = false;
  std::string fields;
};

/// Parses `in` fed in pieces of `step` bytes (0 = random sizes, `whole` = one feed).
inline std::vector<Rec> parse(const FormatOptions& opts, std::string_view in, size_t step = 0,
                              RecordParser** keep = nullptr) {
  static thread_local std::unique_ptr<RecordParser> last;
  last = make_parser(opts);
  std::vector<Rec> out;
  auto emit = [&](const Record& r) {
    out.push_back(
        {std::string(r.text), r.time_ns, r.time_set, r.json_value, std::string(r.fields_json)});
  };
  if (step == SIZE_MAX) {
    last->feed(in, emit);
  } else {
    // Copy each piece into its own buffer so that a parser reading past a piece is caught by ASan.
    for (auto p : pieces(in, step)) {
      std::string copy(p);
      last->feed(copy, emit);
    }
  }
  last->finish(emit);
  if (keep) *keep = last.get();
  return out;
}

inline FormatOptions opts_for(Format f) {
  FormatOptions o;
  o.format = f;
  return o;
}

}  // namespace logship::formats::test
