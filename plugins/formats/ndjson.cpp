// ndjson (one JSON value per line, validated with simdjson) and lines (one record per line).
#include <cmath>

#include "plugins/formats/format_internal.h"
#include "plugins/sources/file/decode_timestamp.h"

namespace logship::formats::detail {

namespace {

constexpr int64_t kNsPerSec = 1'000'000'000;

/// Epoch seconds (integer or fractional JSON number) or an RFC 3339 string.
bool time_of(simdjson::dom::element v, int64_t& ns) {
  switch (v.type()) {
    case simdjson::dom::element_type::INT64: {
      int64_t s = v.get_int64().value_unsafe();
      if (s > INT64_MAX / kNsPerSec || s < INT64_MIN / kNsPerSec) return false;
      ns = s * kNsPerSec;
      return true;
    }
    case simdjson::dom::element_type::UINT64:
      return false;  // beyond int64 seconds: out of range
    case simdjson::dom::element_type::DOUBLE: {
      // Whole seconds and fraction apart: a double holds 1.7e9 s to ~0.2 us, 1.7e18 ns to 256.
      double d = v.get_double().value_unsafe();
      if (!std::isfinite(d) || d >= 9.2e9 || d <= -9.2e9) return false;
      double whole = std::floor(d);
      ns = static_cast<int64_t>(whole) * kNsPerSec + std::llround((d - whole) * 1e9);
      return true;
    }
    case simdjson::dom::element_type::STRING:
      return decode::parse_rfc3339(v.get_string().value_unsafe(), ns);
    default:
      return false;
  }
}

class NdjsonParser final : public LineParser {
 public:
  explicit NdjsonParser(const FormatOptions& opts) : LineParser("ndjson", opts.max_record_bytes) {}

 protected:
  void on_line(std::string_view line, bool padded, const RecordSink& emit) override {
    if (line.find_first_not_of(" \t\r\f\v") == std::string_view::npos) return;
    const char* p = line.data();
    if (!padded) {
      scratch_.assign(line);
      p = scratch_.data();
    }
    simdjson::dom::element doc;
    auto err = parser_.parse(reinterpret_cast<const uint8_t*>(p), line.size(), false).get(doc);
    if (err) fail(std::string("invalid JSON: ") + simdjson::error_message(err));
    Record r;
    r.text = line;
    simdjson::dom::object obj;
    if (doc.get_object().get(obj) == simdjson::SUCCESS) {
      r.json_value = true;
      simdjson::dom::element t;
      if (obj["time"].get(t) == simdjson::SUCCESS || obj["timestamp"].get(t) == simdjson::SUCCESS)
        r.time_set = time_of(t, r.time_ns);
    }
    emit_record(emit, r);
  }

 private:
  simdjson::dom::parser parser_;
  PaddedBuffer scratch_;
};

class LinesParser final : public LineParser {
 public:
  explicit LinesParser(const FormatOptions& opts) : LineParser("lines", opts.max_record_bytes) {}

 protected:
  void on_line(std::string_view line, bool, const RecordSink& emit) override {
    Record r;
    r.text = line;
    emit_record(emit, r);
  }
};

}  // namespace

std::unique_ptr<RecordParser> make_ndjson_parser(const FormatOptions& opts) {
  return std::make_unique<NdjsonParser>(opts);
}

std::unique_ptr<RecordParser> make_lines_parser(const FormatOptions& opts) {
  return std::make_unique<LinesParser>(opts);
}

}  // namespace logship::formats::detail
