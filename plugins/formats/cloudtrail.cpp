// CloudTrail log files (HEC.md §5): {"Records":[{...},{...}]}, possibly pretty-printed, with
// other top-level keys before or after Records. A streaming scanner (string- and escape-aware,
// depth tracking) finds each Records[] element; the element is then validated with simdjson
// (DOM, from a padded buffer) and emitted byte for byte as written. Memory is bounded by the
// largest record: only an element cut by the end of a fed piece is copied (carried over).
#include <array>
#include <vector>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "plugins/formats/format_internal.h"
#include "plugins/sources/file/decode_timestamp.h"

namespace logship::formats::detail {

namespace {

/// Byte classes outside strings inside a scanned value.
enum : uint8_t { kPlain = 0, kQuote = 1, kOpen = 2, kClose = 3 };

constexpr auto kClass = [] {
  std::array<uint8_t, 256> t{};
  t['"'] = kQuote;
  t['{'] = kOpen;
  t['['] = kOpen;
  t['}'] = kClose;
  t[']'] = kClose;
  return t;
}();

bool is_ws(char c) {
  return c == ' ' || c == '\n' || c == '\r' || c == '\t';
}

/// Index of the first '"' or '\\' in p[i, n), or n.
inline size_t find_quote_or_backslash(const char* p, size_t i, size_t n) {
#if defined(__SSE2__)
  const __m128i quote = _mm_set1_epi8('"');
  const __m128i bslash = _mm_set1_epi8('\\');
  while (i + 16 <= n) {
    __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i));
    unsigned m = static_cast<unsigned>(
        _mm_movemask_epi8(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, bslash))));
    if (m != 0) return i + static_cast<size_t>(__builtin_ctz(m));
    i += 16;
  }
#endif
  while (i < n && p[i] != '"' && p[i] != '\\') ++i;
  return i;
}

struct FieldPath {
  std::vector<std::string> parts;  ///< "userIdentity.type" -> {"userIdentity", "type"}
  std::string key;                 ///< the configured name as a JSON string, with ':'
};

class CloudTrailParser final : public RecordParser {
 public:
  explicit CloudTrailParser(const FormatOptions& opts) : max_record_bytes_(opts.max_record_bytes) {
    for (const auto& name : opts.indexed_fields) {
      if (name.empty()) throw std::invalid_argument("cloudtrail: empty indexed field name");
      FieldPath fp;
      size_t s = 0;
      for (;;) {
        size_t dot = name.find('.', s);
        fp.parts.push_back(name.substr(s, dot == std::string::npos ? dot : dot - s));
        if (fp.parts.back().empty())
          throw std::invalid_argument("cloudtrail: invalid indexed field name \"" + name + "\"");
        if (dot == std::string::npos) break;
        s = dot + 1;
      }
      append_json_string(fp.key, name);
      fp.key.push_back(':');
      paths_.push_back(std::move(fp));
    }
  }

  void feed(std::string_view data, const RecordSink& emit) override;

  void finish(const RecordSink&) override {
    if (st_ == St::kDone) return;
    if (st_ == St::kStart && bytes_in_ == 0)
      throw FormatError("cloudtrail: empty object, expected {\"Records\":[...]}");
    if (st_ == St::kElement)
      throw FormatError("cloudtrail: truncated: Records[" + std::to_string(index_) +
                        "] (byte offset " + std::to_string(elem_offset_) +
                        ") ends with the object at byte offset " + std::to_string(bytes_in_));
    throw FormatError("cloudtrail: truncated: the top-level object is incomplete at byte offset " +
                      std::to_string(bytes_in_));
  }

 private:
  enum class St : uint8_t {
    kStart,       // before the top-level '{'
    kObjFirst,    // after '{': a key or '}'
    kObjKey,      // after ',': a key
    kKey,         // inside a key string
    kColon,       // after a key
    kValue,       // after ':'
    kSkip,        // inside a value of another key (container or string)
    kSkipScalar,  // inside a number/true/false/null of another key
    kObjNext,     // after a value: ',' or '}'
    kArrFirst,    // after "Records":[ : an element or ']'
    kArrNext,     // after an element: ',' or ']'
    kArrElem,     // after ',' in Records: an element
    kElement,     // inside a Records[] element
    kDone,        // after the top-level '}': whitespace only
  };

  [[noreturn]] void fail_at(uint64_t offset, const std::string& what) const {
    throw FormatError("cloudtrail: " + what + " at byte offset " + std::to_string(offset));
  }
  [[noreturn]] void fail_record(const std::string& what) const {
    throw FormatError("cloudtrail: Records[" + std::to_string(index_) + "] (byte offset " +
                      std::to_string(elem_offset_) + "): " + what);
  }

  /// Scans a value from p[i]: strings (escape-aware) and nesting. Sets `done` and returns the
  /// index past the value's last byte when it ends in p[i, n); else returns n.
  size_t scan(const char* p, size_t i, size_t n, bool& done) {
    if (escape_) {
      if (i >= n) return n;
      ++i;
      escape_ = false;
    }
    while (i < n) {
      if (in_string_) {
        i = find_quote_or_backslash(p, i, n);
        if (i >= n) return n;
        if (p[i] == '\\') {
          if (i + 1 >= n) {
            escape_ = true;
            return n;
          }
          i += 2;
          continue;
        }
        in_string_ = false;
        ++i;
        if (depth_ == 0) {  // a string value of another key
          done = true;
          return i;
        }
        continue;
      }
      switch (kClass[static_cast<unsigned char>(p[i++])]) {
        case kQuote:
          in_string_ = true;
          break;
        case kOpen:
          ++depth_;
          break;
        case kClose:
          if (--depth_ == 0) {
            done = true;
            return i;
          }
          break;
        default:
          break;
      }
    }
    return n;
  }

  void record(std::string_view rec, bool padded, const RecordSink& emit);

  size_t max_record_bytes_;
  std::vector<FieldPath> paths_;
  St st_ = St::kStart;
  int64_t depth_ = 0;
  bool in_string_ = false;
  bool escape_ = false;
  bool saw_records_ = false;
  bool key_is_records_ = false;
  bool carrying_ = false;
  std::string key_;
  uint64_t index_ = 0;        // Records[] index of the current element
  uint64_t elem_offset_ = 0;  // byte offset of the current element
  PaddedBuffer carry_;
  PaddedBuffer scratch_;
  std::string fields_;
  simdjson::dom::parser parser_;
};

void CloudTrailParser::feed(std::string_view data, const RecordSink& emit) {
  const uint64_t base = bytes_in_;
  bytes_in_ += data.size();
  const char* p = data.data();
  const size_t n = data.size();
  size_t i = 0;
  size_t elem_start = 0;  // index of the current element in `data` when !carrying_
  while (i < n) {
    char c = p[i];
    switch (st_) {
      case St::kElement: {
        bool done = false;
        size_t j = scan(p, i, n, done);
        size_t have = carrying_ ? carry_.size() + j : j - elem_start;
        if (have > max_record_bytes_)
          fail_record("record exceeds max_record_bytes (" + std::to_string(max_record_bytes_) +
                      ")");
        if (!done) {
          if (carrying_) {
            carry_.append(data);
          } else {
            carry_.assign(data.substr(elem_start));
            carrying_ = true;
          }
          return;
        }
        if (carrying_) {
          carry_.append(data.substr(0, j));
          record(carry_.view(), true, emit);
          carry_.clear();
          carrying_ = false;
        } else {
          record(std::string_view(p + elem_start, j - elem_start), n - j >= kPadding, emit);
        }
        st_ = St::kArrNext;
        i = j;
        continue;
      }
      case St::kSkip: {
        bool done = false;
        i = scan(p, i, n, done);
        if (done) st_ = St::kObjNext;
        continue;
      }
      case St::kSkipScalar:
        if (c == ',' || c == '}' || is_ws(c)) {
          st_ = St::kObjNext;
        } else {
          ++i;
        }
        continue;
      case St::kKey:
        ++i;
        if (escape_) {
          escape_ = false;
          key_is_records_ = false;
        } else if (c == '\\') {
          escape_ = true;
        } else if (c == '"') {
          key_is_records_ = key_is_records_ && key_ == "Records";
          st_ = St::kColon;
        } else if (key_.size() < 8) {
          key_.push_back(c);
        } else {
          key_is_records_ = false;
        }
        continue;
      default:
        break;
    }
    // Structural states: whitespace is skipped, anything else must be what the state expects.
    if (is_ws(c)) {
      ++i;
      continue;
    }
    const uint64_t off = base + i;
    switch (st_) {
      case St::kStart:
        if (c != '{')
          fail_at(off, "expected {\"Records\":[...]}, found '" + std::string(1, c) + "'");
        st_ = St::kObjFirst;
        break;
      case St::kObjFirst:
      case St::kObjKey:
        if (c == '"') {
          key_.clear();
          key_is_records_ = true;
          escape_ = false;
          st_ = St::kKey;
        } else if (c == '}' && st_ == St::kObjFirst) {
          fail_at(off, "no Records array in the top-level object");
        } else {
          fail_at(off, "expected a key in the top-level object");
        }
        break;
      case St::kColon:
        if (c != ':') fail_at(off, "expected ':' in the top-level object");
        st_ = St::kValue;
        break;
      case St::kValue:
        if (key_is_records_) {
          if (c != '[') fail_at(off, "Records is not an array");
          saw_records_ = true;
          st_ = St::kArrFirst;
        } else if (c == '{' || c == '[') {
          depth_ = 1;
          in_string_ = false;
          escape_ = false;
          st_ = St::kSkip;
        } else if (c == '"') {
          depth_ = 0;
          in_string_ = true;
          escape_ = false;
          st_ = St::kSkip;
        } else {
          st_ = St::kSkipScalar;
        }
        break;
      case St::kObjNext:
        if (c == ',') {
          st_ = St::kObjKey;
        } else if (c == '}') {
          if (!saw_records_) fail_at(off, "no Records array in the top-level object");
          st_ = St::kDone;
        } else {
          fail_at(off, "expected ',' or '}' in the top-level object");
        }
        break;
      case St::kArrFirst:
      case St::kArrElem:
        if (c == ']' && st_ == St::kArrFirst) {
          st_ = St::kObjNext;
        } else if (c == '{') {
          // The scanner consumes the '{' itself (depth 0 -> 1), so an element whose first byte
          // is the last of the piece is carried like any other.
          elem_start = i;
          elem_offset_ = off;
          depth_ = 0;
          in_string_ = false;
          escape_ = false;
          carrying_ = false;
          st_ = St::kElement;
          continue;
        } else {
          elem_offset_ = off;
          fail_record("not a JSON object (starts with '" + std::string(1, c) + "')");
        }
        break;
      case St::kArrNext:
        if (c == ',') {
          st_ = St::kArrElem;
        } else if (c == ']') {
          st_ = St::kObjNext;
        } else {
          fail_at(off, "expected ',' or ']' after Records[" + std::to_string(index_ - 1) + "]");
        }
        break;
      case St::kDone:
        fail_at(off, "unexpected data after the top-level object");
      default:
        break;
    }
    ++i;
  }
}

void CloudTrailParser::record(std::string_view rec, bool padded, const RecordSink& emit) {
  const char* p = rec.data();
  if (!padded) {
    scratch_.assign(rec);
    p = scratch_.data();
  }
  simdjson::dom::element doc;
  auto err = parser_.parse(reinterpret_cast<const uint8_t*>(p), rec.size(), false).get(doc);
  if (err) fail_record(std::string("invalid JSON: ") + simdjson::error_message(err));
  Record r;
  r.text = rec;
  r.json_value = true;
  std::string_view et;
  if (doc["eventTime"].get_string().get(et) == simdjson::SUCCESS)
    r.time_set = decode::parse_rfc3339(et, r.time_ns);
  if (!paths_.empty()) {
    fields_.clear();
    for (const auto& fp : paths_) {
      simdjson::dom::element v = doc;
      bool found = true;
      for (const auto& part : fp.parts) {
        simdjson::dom::object o;
        if (v.get_object().get(o) != simdjson::SUCCESS ||
            o.at_key(part).get(v) != simdjson::SUCCESS) {
          found = false;
          break;
        }
      }
      std::string_view s;
      if (!found || v.get_string().get(s) != simdjson::SUCCESS) continue;  // strings only
      fields_.push_back(fields_.empty() ? '{' : ',');
      fields_.append(fp.key);
      append_json_string(fields_, s);
    }
    if (!fields_.empty()) fields_.push_back('}');
    r.fields_json = fields_;
  }
  ++index_;
  emit_record(emit, r);
}

}  // namespace

std::unique_ptr<RecordParser> make_cloudtrail_parser(const FormatOptions& opts) {
  return std::make_unique<CloudTrailParser>(opts);
}

}  // namespace logship::formats::detail
