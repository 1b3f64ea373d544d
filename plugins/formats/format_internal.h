#pragma once
// Helpers shared by the format parsers (not part of the public API).
#include <simdjson.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>

#include "plugins/formats/format.h"

namespace logship::formats::detail {

/// simdjson reads up to this many bytes past the end of its input.
inline constexpr size_t kPadding = simdjson::SIMDJSON_PADDING;

/// A growable byte buffer that always has kPadding readable bytes after its end, so its
/// contents can be handed to simdjson without a copy. Keeps its capacity across clear().
class PaddedBuffer {
 public:
  const char* data() const { return buf_.get(); }
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  std::string_view view() const { return {buf_.get(), size_}; }
  void clear() { size_ = 0; }
  void append(std::string_view s) {
    reserve(size_ + s.size());
    if (!s.empty()) std::memcpy(buf_.get() + size_, s.data(), s.size());
    size_ += s.size();
  }
  void assign(std::string_view s) {
    size_ = 0;
    append(s);
  }
  void reserve(size_t n) {
    if (n + kPadding <= cap_) return;
    size_t cap = std::max(n + kPadding, cap_ * 2);
    auto b = std::make_unique<char[]>(cap);  // zero-filled: padding bytes are initialised
    if (size_ > 0) std::memcpy(b.get(), buf_.get(), size_);
    buf_ = std::move(b);
    cap_ = cap;
  }

 private:
  std::unique_ptr<char[]> buf_;
  size_t size_ = 0;
  size_t cap_ = 0;
};

/// Appends `s` as a JSON string (with quotes); `s` must be valid UTF-8.
void append_json_string(std::string& out, std::string_view s);

/// Splits a byte stream into lines ('\n'; one trailing '\r' removed) and hands each non-empty
/// line to on_line(); a line inside the fed piece is a view into it (with kPadding readable
/// bytes after it when `padded`), a line split across feeds is assembled in a carry buffer.
class LineParser : public RecordParser {
 public:
  LineParser(std::string_view name, size_t max_record_bytes)
      : name_(name), max_record_bytes_(max_record_bytes) {}
  void feed(std::string_view data, const RecordSink& emit) final;
  void finish(const RecordSink& emit) override;

 protected:
  /// One line (1-based number line_no_, starting at byte offset line_offset_).
  virtual void on_line(std::string_view line, bool padded, const RecordSink& emit) = 0;
  [[noreturn]] void fail(const std::string& what) const;

  uint64_t line_no_ = 0;
  uint64_t line_offset_ = 0;

 private:
  void line(std::string_view l, bool padded, const RecordSink& emit);

  std::string_view name_;
  size_t max_record_bytes_;
  PaddedBuffer carry_;
  uint64_t carry_offset_ = 0;
  bool finished_ = false;
};

std::unique_ptr<RecordParser> make_cloudtrail_parser(const FormatOptions& opts);
std::unique_ptr<RecordParser> make_vpcflow_parser(const FormatOptions& opts);
std::unique_ptr<RecordParser> make_ndjson_parser(const FormatOptions& opts);
std::unique_ptr<RecordParser> make_lines_parser(const FormatOptions& opts);

}  // namespace logship::formats::detail
