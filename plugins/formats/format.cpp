#include "plugins/formats/format.h"

#include <cstring>
#include <stdexcept>

#include "agent/core/json_escape.h"
#include "plugins/formats/format_internal.h"

namespace logship::formats {

std::optional<Format> parse_format(std::string_view name) {
  if (name == "cloudtrail") return Format::kCloudTrail;
  if (name == "vpcflow") return Format::kVpcFlow;
  if (name == "ndjson") return Format::kNdjson;
  if (name == "lines") return Format::kLines;
  return std::nullopt;
}

std::string_view format_name(Format f) {
  switch (f) {
    case Format::kCloudTrail:
      return "cloudtrail";
    case Format::kVpcFlow:
      return "vpcflow";
    case Format::kNdjson:
      return "ndjson";
    case Format::kLines:
      return "lines";
  }
  return "unknown";
}

RecordParser::~RecordParser() = default;

std::unique_ptr<RecordParser> make_parser(const FormatOptions& opts) {
  if (opts.max_record_bytes == 0) throw std::invalid_argument("max_record_bytes must be > 0");
  switch (opts.format) {
    case Format::kCloudTrail:
      return detail::make_cloudtrail_parser(opts);
    case Format::kVpcFlow:
      return detail::make_vpcflow_parser(opts);
    case Format::kNdjson:
      return detail::make_ndjson_parser(opts);
    case Format::kLines:
      return detail::make_lines_parser(opts);
  }
  throw std::invalid_argument("unknown format");
}

namespace detail {

void append_json_string(std::string& out, std::string_view s) {
  out.push_back('"');
  json_escape_append(out, s);
  out.push_back('"');
}

void LineParser::fail(const std::string& what) const {
  throw FormatError(std::string(name_) + ": line " + std::to_string(line_no_) + " (byte offset " +
                    std::to_string(line_offset_) + "): " + what);
}

void LineParser::line(std::string_view l, bool padded, const RecordSink& emit) {
  ++line_no_;
  if (!l.empty() && l.back() == '\r') l.remove_suffix(1);
  if (l.size() > max_record_bytes_)
    fail("line of " + std::to_string(l.size()) + " bytes exceeds max_record_bytes (" +
         std::to_string(max_record_bytes_) + ")");
  if (!l.empty()) on_line(l, padded, emit);
}

void LineParser::feed(std::string_view data, const RecordSink& emit) {
  if (finished_) throw FormatError(std::string(name_) + ": fed after finish()");
  const uint64_t base = bytes_in_;
  bytes_in_ += data.size();
  const char* p = data.data();
  const size_t n = data.size();
  size_t i = 0;
  if (!carry_.empty()) {
    const void* nl = n > 0 ? std::memchr(p, '\n', n) : nullptr;
    size_t end = nl ? static_cast<size_t>(static_cast<const char*>(nl) - p) : n;
    if (carry_.size() + end > max_record_bytes_ + 1) {  // +1: a '\r' not counted
      line_offset_ = carry_offset_;
      ++line_no_;
      fail("line exceeds max_record_bytes (" + std::to_string(max_record_bytes_) + ")");
    }
    carry_.append(data.substr(0, end));
    if (!nl) return;
    line_offset_ = carry_offset_;
    line(carry_.view(), true, emit);
    carry_.clear();
    i = end + 1;
  }
  while (i < n) {
    const void* nl = std::memchr(p + i, '\n', n - i);
    if (!nl) {
      if (n - i > max_record_bytes_ + 1) {
        line_offset_ = base + i;
        ++line_no_;
        fail("line exceeds max_record_bytes (" + std::to_string(max_record_bytes_) + ")");
      }
      carry_offset_ = base + i;
      carry_.assign(data.substr(i));
      return;
    }
    size_t end = static_cast<size_t>(static_cast<const char*>(nl) - p);
    line_offset_ = base + i;
    line(std::string_view(p + i, end - i), n - end >= kPadding, emit);
    i = end + 1;
  }
}

void LineParser::finish(const RecordSink& emit) {
  if (finished_) return;
  finished_ = true;
  if (!carry_.empty()) {
    line_offset_ = carry_offset_;
    line(carry_.view(), true, emit);
    carry_.clear();
  }
}

}  // namespace detail

}  // namespace logship::formats
