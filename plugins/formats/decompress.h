#pragma once
// Streaming decompression of S3 objects that arrive as a sequence of byte chunks (ranged GETs).
// Memory is independent of the object size: each codec keeps its own fixed-size state plus one
// output piece buffer (kPieceBytes); output is handed to a callback in pieces of at most
// kPieceBytes, valid only during the call.
//
// gzip uses ISA-L (isal_inflate, gzip wrapper + CRC32/ISIZE checked by the library): about 2-3x
// the throughput of zlib's inflate on this path (bench/formats/run.sh). Multi-member streams
// (`cat a.gz b.gz`) are decoded member after member; anything after a member that is not another
// gzip member is "trailing garbage" and an error. zstd uses ZSTD_decompressStream (multi-frame,
// skippable frames allowed, window limited to zstd's default 2^27 bytes).
//
// Errors throw: DecompressError (corrupt, truncated, trailing garbage) or its subclass
// DecompressLimitError (the zip-bomb guard). After a throw the object is failed; the instance
// must not be fed again.
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace logship::formats {

/// The `compression` setting of an S3 source.
enum class Compression : uint8_t { kAuto, kGzip, kZstd, kNone };

/// "auto" | "gzip" | "zstd" | "none"; nullopt for anything else.
std::optional<Compression> parse_compression(std::string_view name);
std::string_view compression_name(Compression c);

/// Corrupt data, truncated stream or trailing garbage; the message names the codec and the
/// compressed offset, e.g. "gzip: invalid data at compressed offset 1234 (invalid deflate block)".
class DecompressError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// The decompressed size passed `max_output_bytes`:
/// "decompressed size exceeds max_object_bytes (N)".
class DecompressLimitError : public DecompressError {
 public:
  explicit DecompressLimitError(uint64_t limit);
  uint64_t limit() const { return limit_; }

 private:
  uint64_t limit_;
};

/// Decompresses one object, chunk by chunk.
class Decompressor {
 public:
  using Sink = std::function<void(std::string_view)>;
  /// Largest piece handed to a Sink.
  static constexpr size_t kPieceBytes = 256 * 1024;

  /// `compression`: kAuto decides on the first bytes of the object (gzip 1f 8b, zstd 28 b5 2f
  /// fd), then on `content_encoding` (the object's Content-Encoding: gzip, x-gzip, zstd), else
  /// none. `max_output_bytes`: 0 = unlimited.
  explicit Decompressor(Compression compression, std::string_view content_encoding = {},
                        uint64_t max_output_bytes = 0);
  ~Decompressor();
  Decompressor(const Decompressor&) = delete;
  Decompressor& operator=(const Decompressor&) = delete;

  /// Decompresses `in` (the next bytes of the object); calls `out` zero or more times.
  void feed(std::string_view in, const Sink& out);
  /// End of the object: throws DecompressError when a gzip member or zstd frame is incomplete.
  /// An empty object is valid and decompresses to nothing. Calls `out` for any bytes still held
  /// back by auto-detection.
  void finish(const Sink& out);

  uint64_t total_in() const { return total_in_; }
  uint64_t total_out() const { return total_out_; }
  /// The codec in use; kAuto until auto-detection has seen enough bytes.
  Compression codec() const { return codec_; }
  /// gzip members / zstd frames completed so far.
  uint64_t members() const { return members_; }

  struct Impl;  // codec state (public for the implementation's helpers only)

 private:
  void start_codec(Compression c);
  void run(std::string_view in, const Sink& out);
  void deliver(const char* p, size_t n, const Sink& out);

  Compression codec_;
  std::string content_encoding_;
  uint64_t max_output_bytes_;
  uint64_t total_in_ = 0;
  uint64_t total_out_ = 0;
  uint64_t members_ = 0;
  std::string sniff_;  // first bytes held back while auto-detecting (at most 4)
  std::unique_ptr<Impl> impl_;
  bool finished_ = false;
};

}  // namespace logship::formats
