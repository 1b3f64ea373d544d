#include "plugins/formats/decompress.h"

#include <isa-l/igzip_lib.h>
#include <zstd.h>

#include <algorithm>
#include <cstring>

namespace logship::formats {

namespace {

constexpr std::string_view kGzipMagic("\x1f\x8b", 2);
constexpr std::string_view kZstdMagic("\x28\xb5\x2f\xfd", 4);
/// isal_inflate takes 32-bit lengths: larger inputs are fed in slices.
constexpr size_t kMaxSlice = size_t{1} << 30;

std::string lower_trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  std::string r(s);
  for (char& c : r)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return r;
}

const char* isal_error_text(int ret) {
  switch (ret) {
    case ISAL_INVALID_BLOCK:
      return "invalid deflate block";
    case ISAL_INVALID_SYMBOL:
      return "invalid deflate symbol";
    case ISAL_INVALID_LOOKBACK:
      return "invalid lookback distance";
    case ISAL_INVALID_WRAPPER:
      return "invalid gzip header";
    case ISAL_UNSUPPORTED_METHOD:
      return "unsupported compression method";
    case ISAL_INCORRECT_CHECKSUM:
      return "CRC32/size check failed";
    case ISAL_NEED_DICT:
      return "preset dictionary required";
    default:
      return "decoder error";
  }
}

}  // namespace

std::optional<Compression> parse_compression(std::string_view name) {
  if (name == "auto") return Compression::kAuto;
  if (name == "gzip") return Compression::kGzip;
  if (name == "zstd") return Compression::kZstd;
  if (name == "none") return Compression::kNone;
  return std::nullopt;
}

std::string_view compression_name(Compression c) {
  switch (c) {
    case Compression::kAuto:
      return "auto";
    case Compression::kGzip:
      return "gzip";
    case Compression::kZstd:
      return "zstd";
    case Compression::kNone:
      return "none";
  }
  return "unknown";
}

DecompressLimitError::DecompressLimitError(uint64_t limit)
    : DecompressError("decompressed size exceeds max_object_bytes (" + std::to_string(limit) + ")"),
      limit_(limit) {}

struct Decompressor::Impl {
  // gzip
  std::unique_ptr<inflate_state> isal;
  bool member_open = false;  ///< bytes of a member were fed and its trailer not yet reached
  bool member_done = false;  ///< the last member ended; the next byte starts a new one
  uint64_t member_start = 0;
  size_t magic_seen = 0;  ///< bytes of the current member's magic number checked
  // zstd
  ZSTD_DCtx* zstd = nullptr;
  bool frame_open = false;
  // output piece
  std::unique_ptr<char[]> out;

  ~Impl() {
    if (zstd != nullptr) ZSTD_freeDCtx(zstd);
  }
};

Decompressor::Decompressor(Compression compression, std::string_view content_encoding,
                           uint64_t max_output_bytes)
    : codec_(compression),
      content_encoding_(lower_trim(content_encoding)),
      max_output_bytes_(max_output_bytes),
      impl_(std::make_unique<Impl>()) {
  if (codec_ != Compression::kAuto) start_codec(codec_);
}

Decompressor::~Decompressor() = default;

void Decompressor::start_codec(Compression c) {
  codec_ = c;
  if (c == Compression::kGzip) {
    impl_->isal = std::make_unique<inflate_state>();
    isal_inflate_init(impl_->isal.get());
    impl_->isal->crc_flag = ISAL_GZIP;
    impl_->out = std::make_unique<char[]>(kPieceBytes);
  } else if (c == Compression::kZstd) {
    impl_->zstd = ZSTD_createDCtx();
    if (impl_->zstd == nullptr) throw std::bad_alloc();
    impl_->out = std::make_unique<char[]>(kPieceBytes);
  }
}

void Decompressor::deliver(const char* p, size_t n, const Sink& out) {
  if (max_output_bytes_ != 0 && total_out_ + n > max_output_bytes_)
    throw DecompressLimitError(max_output_bytes_);
  total_out_ += n;
  out(std::string_view(p, n));
}

void Decompressor::feed(std::string_view in, const Sink& out) {
  if (finished_) throw DecompressError("decompressor fed after finish()");
  if (codec_ == Compression::kAuto) {
    // Hold back up to 4 bytes until the magic number is conclusive.
    size_t take = std::min(in.size(), size_t{4} - sniff_.size());
    sniff_.append(in.substr(0, take));
    std::string_view s = sniff_;
    bool maybe_gzip = kGzipMagic.substr(0, std::min(s.size(), kGzipMagic.size())) ==
                      s.substr(0, std::min(s.size(), kGzipMagic.size()));
    bool maybe_zstd = kZstdMagic.substr(0, s.size()) == s;
    if (maybe_gzip && s.size() >= kGzipMagic.size()) {
      start_codec(Compression::kGzip);
    } else if (maybe_zstd && s.size() >= kZstdMagic.size()) {
      start_codec(Compression::kZstd);
    } else if (maybe_gzip || maybe_zstd) {
      return;  // not conclusive yet: all of `in` went into sniff_
    } else {
      start_codec(content_encoding_ == "gzip" || content_encoding_ == "x-gzip" ? Compression::kGzip
                  : content_encoding_ == "zstd"                                ? Compression::kZstd
                                                : Compression::kNone);
    }
    std::string held = std::move(sniff_);
    sniff_.clear();
    run(held, out);
    in.remove_prefix(take);
  }
  run(in, out);
}

void Decompressor::run(std::string_view in, const Sink& out) {
  Impl& im = *impl_;
  switch (codec_) {
    case Compression::kAuto:
      return;
    case Compression::kNone:
      while (!in.empty()) {
        size_t n = std::min(in.size(), kPieceBytes);
        total_in_ += n;
        deliver(in.data(), n, out);
        in.remove_prefix(n);
      }
      return;
    case Compression::kGzip: {
      inflate_state& st = *im.isal;
      while (!in.empty()) {
        size_t slice = std::min(in.size(), kMaxSlice);
        st.next_in = reinterpret_cast<uint8_t*>(const_cast<char*>(in.data()));
        st.avail_in = static_cast<uint32_t>(slice);
        const uint64_t base = total_in_;
        for (;;) {
          if (im.member_done) {
            if (st.avail_in == 0) break;
            // Another member follows (multi-member gzip) -- or trailing garbage.
            isal_inflate_reset(&st);
            st.crc_flag = ISAL_GZIP;
            im.member_done = false;
            im.magic_seen = 0;
            im.member_start = base + (slice - st.avail_in);
          }
          if (st.avail_in > 0) im.member_open = true;
          // ISA-L waits for a whole header before judging it: check the magic bytes as they
          // arrive so that short trailing garbage is not reported as a truncated member.
          if (im.magic_seen < kGzipMagic.size() && st.avail_in > 0) {
            const uint64_t at = base + (slice - st.avail_in);
            for (size_t j = 0; im.magic_seen < kGzipMagic.size() && j < st.avail_in; ++j) {
              if (static_cast<char>(st.next_in[j]) != kGzipMagic[im.magic_seen]) {
                total_in_ = at + j;
                if (members_ > 0)
                  throw DecompressError("gzip: trailing garbage after member " +
                                        std::to_string(members_) + " at compressed offset " +
                                        std::to_string(im.member_start));
                throw DecompressError("gzip: invalid data at compressed offset " +
                                      std::to_string(total_in_) + " (not a gzip stream)");
              }
              ++im.magic_seen;
            }
          }
          st.next_out = reinterpret_cast<uint8_t*>(im.out.get());
          st.avail_out = static_cast<uint32_t>(kPieceBytes);
          const uint32_t avail_before = st.avail_in;
          int ret = isal_inflate(&st);
          size_t produced = kPieceBytes - st.avail_out;
          if (ret < 0) {
            total_in_ = base + (slice - st.avail_in);
            if (ret == ISAL_INVALID_WRAPPER && members_ > 0)
              throw DecompressError("gzip: trailing garbage after member " +
                                    std::to_string(members_) + " at compressed offset " +
                                    std::to_string(im.member_start));
            throw DecompressError(std::string("gzip: invalid data at compressed offset ") +
                                  std::to_string(total_in_) + " (" + isal_error_text(ret) + ")");
          }
          if (produced > 0) deliver(im.out.get(), produced, out);
          if (st.block_state == ISAL_BLOCK_FINISH) {
            ++members_;
            im.member_done = true;
            im.member_open = false;
            continue;
          }
          if (st.avail_in == 0 && produced < kPieceBytes) break;  // needs more input
          if (produced == 0 && st.avail_in == avail_before && st.avail_in > 0)
            throw DecompressError("gzip: decoder made no progress at compressed offset " +
                                  std::to_string(base + (slice - st.avail_in)));
        }
        total_in_ = base + slice;
        in.remove_prefix(slice);
      }
      return;
    }
    case Compression::kZstd: {
      ZSTD_inBuffer ib{in.data(), in.size(), 0};
      const uint64_t base = total_in_;
      while (ib.pos < ib.size || im.frame_open) {
        ZSTD_outBuffer ob{im.out.get(), kPieceBytes, 0};
        const size_t pos_before = ib.pos;
        size_t r = ZSTD_decompressStream(im.zstd, &ob, &ib);
        if (ZSTD_isError(r)) {
          total_in_ = base + ib.pos;
          throw DecompressError(std::string("zstd: invalid data at compressed offset ") +
                                std::to_string(total_in_) + " (" + ZSTD_getErrorName(r) + ")");
        }
        if (r == 0 && (im.frame_open || ib.pos > pos_before)) ++members_;
        im.frame_open = r != 0;
        if (ob.pos > 0) deliver(im.out.get(), ob.pos, out);
        if (ib.pos == ib.size && ob.pos < ob.size) break;  // needs more input
      }
      total_in_ = base + in.size();
      return;
    }
  }
}

void Decompressor::finish(const Sink& out) {
  if (finished_) return;
  if (codec_ == Compression::kAuto) {
    // Fewer than 4 bytes in the whole object: decide now.
    std::string_view s = sniff_;
    Compression c = Compression::kNone;
    if (s.size() >= kGzipMagic.size() && s.substr(0, 2) == kGzipMagic) {
      c = Compression::kGzip;
    } else if (content_encoding_ == "gzip" || content_encoding_ == "x-gzip") {
      c = Compression::kGzip;
    } else if (content_encoding_ == "zstd") {
      c = Compression::kZstd;
    }
    if (s.empty()) {
      codec_ = c;  // empty object: nothing to decode whatever the codec
    } else {
      start_codec(c);
      std::string held = std::move(sniff_);
      sniff_.clear();
      run(held, out);
    }
  }
  finished_ = true;
  if (codec_ == Compression::kGzip && impl_->member_open)
    throw DecompressError("gzip: truncated stream: member " + std::to_string(members_ + 1) +
                          " incomplete at compressed offset " + std::to_string(total_in_));
  if (codec_ == Compression::kZstd && impl_->frame_open)
    throw DecompressError("zstd: truncated stream: frame " + std::to_string(members_ + 1) +
                          " incomplete at compressed offset " + std::to_string(total_in_));
}

}  // namespace logship::formats
