#include "plugins/sources/splunk_hec/parser.h"

#include <zlib.h>

#include <algorithm>
#include <charconv>
#include <climits>
#include <cmath>
#include <functional>
#include <unordered_map>

#include <simdjson.h>

#include "agent/core/url.h"

namespace logship::hec_receiver {

namespace {

constexpr int64_t kMaxSeconds = 9'000'000'000;  // keeps seconds * 1e9 inside int64

bool is_ws(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

size_t skip_ws(std::string_view s, size_t i) {
  while (i < s.size() && is_ws(s[i])) ++i;
  return i;
}

// s[i] == '"': returns the index after the closing quote, npos when unterminated.
size_t skip_string(std::string_view s, size_t i) {
  for (++i; i < s.size(); ++i) {
    char c = s[i];
    if (c == '\\') {
      ++i;
    } else if (c == '"') {
      return i + 1;
    }
  }
  return std::string_view::npos;
}

// s[i] is '{' or '[': returns the index after the matching close, npos when unterminated.
// Brackets of both kinds are counted together; simdjson rejects mismatches afterwards.
size_t skip_composite(std::string_view s, size_t i) {
  size_t depth = 0;
  while (i < s.size()) {
    char c = s[i];
    if (c == '"') {
      i = skip_string(s, i);
      if (i == std::string_view::npos) return i;
      continue;
    }
    if (c == '{' || c == '[') {
      ++depth;
    } else if (c == '}' || c == ']') {
      if (--depth == 0) return i + 1;
    }
    ++i;
  }
  return std::string_view::npos;
}

// Index after a JSON value starting at s[i] (input already validated by simdjson).
size_t skip_value(std::string_view s, size_t i) {
  if (i >= s.size()) return s.size();
  if (s[i] == '"') return skip_string(s, i);
  if (s[i] == '{' || s[i] == '[') return skip_composite(s, i);
  while (i < s.size() && s[i] != ',' && s[i] != '}' && s[i] != ']' && !is_ws(s[i])) ++i;
  return i;
}

// Walks the members of a validated object's text in order, yielding each value's raw text.
class MemberWalker {
 public:
  explicit MemberWalker(std::string_view obj) : s_(obj), i_(skip_ws(obj, 0) + 1) {}
  // Raw text of the next member's value ("" past the end).
  std::string_view next_value() {
    i_ = skip_ws(s_, i_);
    if (i_ < s_.size() && s_[i_] == ',') i_ = skip_ws(s_, i_ + 1);
    if (i_ >= s_.size() || s_[i_] != '"') return {};
    i_ = skip_string(s_, i_);
    if (i_ == std::string_view::npos) return {};
    i_ = skip_ws(s_, i_);
    if (i_ >= s_.size() || s_[i_] != ':') return {};
    i_ = skip_ws(s_, i_ + 1);
    size_t start = i_;
    i_ = skip_value(s_, i_);
    if (i_ == std::string_view::npos) i_ = s_.size();
    return s_.substr(start, i_ - start);
  }

 private:
  std::string_view s_;
  size_t i_;
};

struct SvHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

// Interns metadata strings into the batch through a hash map (EventBatch::intern scans), with a
// bound on distinct values per request.
class MetaInterner {
 public:
  explicit MetaInterner(EventBatch& b) : b_(b) {}
  std::optional<uint16_t> get(std::string_view s) {
    if (s.empty()) return uint16_t{0};
    if (auto it = ids_.find(s); it != ids_.end()) return it->second;
    if (ids_.size() >= kMaxDistinctMetadata) return std::nullopt;
    // New to this request, and the batch holds only this request's values: no scan needed.
    uint16_t id = b_.intern_unique(s);
    if (id == 0) return std::nullopt;
    ids_.emplace(std::string(s), id);
    return id;
  }

 private:
  EventBatch& b_;
  std::unordered_map<std::string, uint16_t, SvHash, std::equal_to<>> ids_;
};

simdjson::dom::parser& thread_parser() {
  // Parsing is synchronous, so one parser per thread serves every request on it; its capacity
  // grows to the largest single envelope seen (bounded by max_body_bytes).
  thread_local simdjson::dom::parser p;
  return p;
}

// Appends simdjson padding to a string for the lifetime of this object.
class PadGuard {
 public:
  explicit PadGuard(std::string& s) : s_(s), n_(s.size()) {
    s_.append(simdjson::SIMDJSON_PADDING, ' ');
  }
  ~PadGuard() { s_.resize(n_); }
  PadGuard(const PadGuard&) = delete;
  PadGuard& operator=(const PadGuard&) = delete;
  std::string_view view() const { return {s_.data(), n_}; }

 private:
  std::string& s_;
  size_t n_;
};

bool flat_fields(simdjson::dom::element v) {
  simdjson::dom::object obj;
  if (v.get_object().get(obj) != simdjson::SUCCESS) return false;
  for (simdjson::dom::key_value_pair kv : obj) {
    auto t = kv.value.type();
    if (t == simdjson::dom::element_type::STRING) continue;
    if (t != simdjson::dom::element_type::ARRAY) return false;
    simdjson::dom::array arr;
    if (kv.value.get_array().get(arr) != simdjson::SUCCESS) return false;
    for (simdjson::dom::element x : arr)
      if (x.type() != simdjson::dom::element_type::STRING) return false;
  }
  return true;
}

struct EnvelopeError {
  HecCode code;
  const char* what;
};

// Parses one envelope object (its exact text) and appends its event. nullopt on success.
std::optional<EnvelopeError> parse_envelope(std::string_view text, const HecDefaults& d,
                                            int64_t now_ns, MetaInterner& meta, EventBatch& out) {
  using simdjson::dom::element_type;
  simdjson::dom::element root;
  auto err = thread_parser()
                 .parse(reinterpret_cast<const uint8_t*>(text.data()), text.size(), false)
                 .get(root);
  if (err != simdjson::SUCCESS) return EnvelopeError{HecCode::kInvalidDataFormat, "invalid JSON"};
  simdjson::dom::object obj;
  if (root.get_object().get(obj) != simdjson::SUCCESS)
    return EnvelopeError{HecCode::kInvalidDataFormat, "not a JSON object"};

  bool has_event = false, has_time = false, has_fields = false;
  simdjson::dom::element event, time, fields;
  std::string_view event_raw, time_raw, fields_raw;
  std::optional<simdjson::dom::element> meta_el[4];  // host, source, sourcetype, index
  static constexpr std::string_view kMetaKeys[4] = {"host", "source", "sourcetype", "index"};

  MemberWalker walker(text);
  for (simdjson::dom::key_value_pair kv : obj) {
    std::string_view raw = walker.next_value();
    if (kv.key == "event") {
      if (!has_event) event = kv.value, event_raw = raw, has_event = true;
    } else if (kv.key == "time") {
      if (!has_time) time = kv.value, time_raw = raw, has_time = true;
    } else if (kv.key == "fields") {
      if (!has_fields) fields = kv.value, fields_raw = raw, has_fields = true;
    } else {
      for (int k = 0; k < 4; ++k)
        if (kv.key == kMetaKeys[k] && !meta_el[k]) meta_el[k] = kv.value;
    }
  }

  if (!has_event) return EnvelopeError{HecCode::kEventFieldRequired, "no \"event\" key"};
  std::string_view event_text;
  bool json_value = false;
  switch (event.type()) {
    case element_type::NULL_VALUE:
      return EnvelopeError{HecCode::kEventFieldBlank, "\"event\" is null"};
    case element_type::STRING:
      if (event.get_string().get(event_text) != simdjson::SUCCESS)
        return EnvelopeError{HecCode::kInvalidDataFormat, "bad \"event\" string"};
      if (event_text.empty()) return EnvelopeError{HecCode::kEventFieldBlank, "\"event\" is blank"};
      break;
    default:
      event_text = event_raw;
      json_value = true;
      if (event_text.empty()) return EnvelopeError{HecCode::kInvalidDataFormat, "bad \"event\""};
      break;
  }

  bool store_fields = false;
  if (has_fields && fields.type() != element_type::NULL_VALUE) {
    if (!flat_fields(fields))
      return EnvelopeError{HecCode::kIndexedFields,
                           "\"fields\" must be an object of strings or string arrays"};
    simdjson::dom::object fo;
    store_fields = fields.get_object().get(fo) == simdjson::SUCCESS && fo.size() > 0;
  }

  int64_t time_ns = now_ns;
  if (has_time) {
    std::optional<int64_t> t;
    switch (time.type()) {
      case element_type::NULL_VALUE:
        t = now_ns;
        break;
      case element_type::INT64:
      case element_type::UINT64:
      case element_type::DOUBLE:
        t = parse_hec_time(time_raw);
        break;
      case element_type::STRING: {
        std::string_view ts;
        if (time.get_string().get(ts) == simdjson::SUCCESS) t = parse_hec_time(ts);
        break;
      }
      default:
        break;
    }
    if (!t) return EnvelopeError{HecCode::kInvalidDataFormat, "bad \"time\""};
    time_ns = *t;
  }

  uint16_t ids[4];
  const std::string_view defs[4] = {d.host, d.source, d.sourcetype, d.index};
  for (int k = 0; k < 4; ++k) {
    std::string_view v = defs[k];
    if (meta_el[k] && meta_el[k]->type() != element_type::NULL_VALUE) {
      std::string_view s;
      if (meta_el[k]->get_string().get(s) != simdjson::SUCCESS)
        return EnvelopeError{HecCode::kInvalidDataFormat, "metadata value is not a string"};
      if (!s.empty()) v = s;
    }
    auto id = meta.get(v);
    if (!id) return EnvelopeError{HecCode::kInvalidDataFormat, "too many distinct metadata values"};
    ids[k] = *id;
  }

  Event& e = out.add(event_text, time_ns);
  e.host = ids[0];
  e.source = ids[1];
  e.sourcetype = ids[2];
  e.index = ids[3];
  if (json_value) e.flags |= Event::kJsonValue;
  if (store_fields) out.set_fields(e, fields_raw);
  return std::nullopt;
}

void append_escaped_key(std::string& out, uint64_t id) {
  out += '"';
  out += std::to_string(id);
  out += '"';
}


}  // namespace

std::string_view hec_text(HecCode code) {
  switch (code) {
    case HecCode::kSuccess:
      return "Success";
    case HecCode::kTokenRequired:
      return "Token is required";
    case HecCode::kInvalidAuthorization:
      return "Invalid authorization";
    case HecCode::kInvalidToken:
      return "Invalid token";
    case HecCode::kNoData:
      return "No data";
    case HecCode::kInvalidDataFormat:
      return "Invalid data format";
    case HecCode::kServerBusy:
      return "Server is busy";
    case HecCode::kChannelMissing:
      return "Data channel is missing";
    case HecCode::kInvalidChannel:
      return "Invalid data channel";
    case HecCode::kEventFieldRequired:
      return "Event field is required";
    case HecCode::kEventFieldBlank:
      return "Event field cannot be blank";
    case HecCode::kAckDisabled:
      return "ACK is disabled";
    case HecCode::kIndexedFields:
      return "Error in handling indexed fields";
    case HecCode::kQueryStringAuth:
      return "Query string authorization is not enabled";
    case HecCode::kHealthy:
      return "HEC is healthy";
    case HecCode::kShuttingDown:
      return "Server is shutting down";
    case HecCode::kAckChannelAtCapacity:
      return "HEC ACK channel is at capacity and cannot process any more requests";
  }
  return "Internal server error";
}

int hec_http_status(HecCode code) {
  switch (code) {
    case HecCode::kSuccess:
    case HecCode::kHealthy:
      return 200;
    case HecCode::kTokenRequired:
    case HecCode::kInvalidAuthorization:
      return 401;
    case HecCode::kInvalidToken:
      return 403;
    case HecCode::kServerBusy:
    case HecCode::kShuttingDown:
      return 503;
    case HecCode::kAckChannelAtCapacity:
      return 429;
    default:
      return 400;
  }
}

std::string_view hec_error_name(HecCode code) {
  switch (code) {
    case HecCode::kSuccess:
      return "none";
    case HecCode::kTokenRequired:
      return "token_required";
    case HecCode::kInvalidAuthorization:
      return "invalid_authorization";
    case HecCode::kInvalidToken:
      return "invalid_token";
    case HecCode::kNoData:
      return "no_data";
    case HecCode::kInvalidDataFormat:
      return "invalid_data_format";
    case HecCode::kServerBusy:
      return "server_busy";
    case HecCode::kChannelMissing:
      return "channel_missing";
    case HecCode::kInvalidChannel:
      return "invalid_channel";
    case HecCode::kEventFieldRequired:
      return "event_field_required";
    case HecCode::kEventFieldBlank:
      return "event_field_blank";
    case HecCode::kAckDisabled:
      return "ack_disabled";
    case HecCode::kIndexedFields:
      return "invalid_indexed_fields";
    case HecCode::kQueryStringAuth:
      return "query_string_auth";
    case HecCode::kHealthy:
      return "none";
    case HecCode::kShuttingDown:
      return "shutting_down";
    case HecCode::kAckChannelAtCapacity:
      return "ack_channel_at_capacity";
  }
  return "unknown";
}

std::string hec_reply_json(HecCode code, int64_t invalid_event_number,
                           std::optional<uint64_t> ack_id) {
  std::string s = "{\"text\":\"";
  s += hec_text(code);
  s += "\",\"code\":";
  s += std::to_string(static_cast<int>(code));
  if (invalid_event_number >= 0) {
    s += ",\"invalid-event-number\":";
    s += std::to_string(invalid_event_number);
  }
  if (ack_id) {
    s += ",\"ackId\":";
    s += std::to_string(*ack_id);
  }
  s += '}';
  return s;
}

std::string hec_plain_reply_json(std::string_view text, int code) {
  std::string s = "{\"text\":\"";
  s += text;
  s += "\",\"code\":";
  s += std::to_string(code);
  s += '}';
  return s;
}

std::string hec_ack_reply_json(const std::vector<std::pair<uint64_t, bool>>& acks) {
  std::string s = "{\"acks\":{";
  bool first = true;
  for (auto& [id, done] : acks) {
    if (!first) s += ',';
    first = false;
    append_escaped_key(s, id);
    s += done ? ":true" : ":false";
  }
  s += "}}";
  return s;
}

std::optional<int64_t> parse_hec_time(std::string_view t) {
  if (t.empty() || t.size() > 64) return std::nullopt;
  if (t.find_first_of("eE") != std::string_view::npos) {
    double v = 0;
    auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
    if (ec != std::errc() || p != t.data() + t.size() || !std::isfinite(v) || v < 0 ||
        v >= static_cast<double>(kMaxSeconds))
      return std::nullopt;
    return static_cast<int64_t>(std::llround(v * 1e9));
  }
  size_t i = 0;
  int64_t sec = 0;
  size_t int_digits = 0;
  while (i < t.size() && t[i] >= '0' && t[i] <= '9') {
    sec = sec * 10 + (t[i] - '0');
    if (sec >= kMaxSeconds) return std::nullopt;
    ++i, ++int_digits;
  }
  int64_t frac = 0;
  size_t frac_digits = 0;
  if (i < t.size() && t[i] == '.') {
    ++i;
    while (i < t.size() && t[i] >= '0' && t[i] <= '9') {
      if (frac_digits < 9) frac = frac * 10 + (t[i] - '0');
      ++i, ++frac_digits;
    }
  }
  if (i != t.size() || (int_digits == 0 && frac_digits == 0)) return std::nullopt;
  for (size_t k = std::min<size_t>(frac_digits, 9); k < 9; ++k) frac *= 10;
  return sec * 1'000'000'000 + frac;
}

HecParseResult parse_event_body(std::string& body, const HecDefaults& defaults, int64_t now_ns,
                                EventBatch& out) {
  HecParseResult r;
  PadGuard pad(body);
  std::string_view s = pad.view();
  size_t i = skip_ws(s, 0);
  if (i >= s.size()) {
    r.code = HecCode::kNoData;
    r.detail = "empty body";
    return r;
  }
  out.reserve(std::min<size_t>(s.size() / 64 + 1, 65536), s.size());
  MetaInterner meta(out);
  int64_t index = 0;
  auto fail = [&](HecCode code, std::string_view what) {
    r.code = code;
    r.invalid_event_number = index;
    r.detail = "event " + std::to_string(index) + ": " + std::string(what);
    return r;
  };
  while (i < s.size()) {
    if (s[i] != '{') return fail(HecCode::kInvalidDataFormat, "not a JSON object");
    size_t end = skip_composite(s, i);
    if (end == std::string_view::npos)
      return fail(HecCode::kInvalidDataFormat, "unterminated JSON");
    if (auto e = parse_envelope(s.substr(i, end - i), defaults, now_ns, meta, out))
      return fail(e->code, e->what);
    ++r.events;
    ++index;
    i = skip_ws(s, end);
  }
  return r;
}

HecParseResult parse_raw_body(std::string_view body, const HecDefaults& defaults, int64_t now_ns,
                              EventBatch& out) {
  HecParseResult r;
  MetaInterner meta(out);
  uint16_t ids[4] = {*meta.get(defaults.host), *meta.get(defaults.source),
                     *meta.get(defaults.sourcetype), *meta.get(defaults.index)};
  size_t lines = static_cast<size_t>(std::count(body.begin(), body.end(), '\n')) + 1;
  out.reserve(lines, body.size());
  size_t pos = 0;
  while (pos < body.size()) {
    size_t nl = body.find('\n', pos);
    size_t end = nl == std::string_view::npos ? body.size() : nl;
    std::string_view line = body.substr(pos, end - pos);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (!line.empty()) {
      Event& e = out.add(line, now_ns);
      e.host = ids[0];
      e.source = ids[1];
      e.sourcetype = ids[2];
      e.index = ids[3];
      ++r.events;
    }
    pos = end + 1;
  }
  if (r.events == 0) {
    r.code = HecCode::kNoData;
    r.detail = "no line in the body";
  }
  return r;
}

InflateStatus gunzip(std::string_view in, size_t max_out, std::string& out) {
  out.clear();
  if (in.size() > UINT_MAX) return InflateStatus::kTooLarge;
  z_stream zs{};
  if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK) return InflateStatus::kCorrupt;
  struct End {
    z_stream* z;
    ~End() { inflateEnd(z); }
  } end{&zs};
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  zs.avail_in = static_cast<uInt>(in.size());
  const size_t limit = max_out + 1;  // room for one byte too many: detects "too large"
  size_t produced = 0;
  {
    std::string first;
    first.reserve(std::min(limit, std::max<size_t>(in.size() * 4, 64 * 1024)));
    first.resize(first.capacity() < limit ? first.capacity() : limit);
    out.swap(first);
  }
  for (;;) {
    if (produced == out.size()) {
      if (out.size() >= limit) return InflateStatus::kTooLarge;
      // Exact allocation (std::string::resize may double the capacity past the cap).
      std::string bigger;
      bigger.reserve(std::min(limit, out.size() * 2));
      bigger.append(out.data(), produced);
      bigger.resize(bigger.capacity() < limit ? bigger.capacity() : limit);
      out.swap(bigger);
    }
    size_t room = std::min<size_t>(out.size() - produced, UINT_MAX);
    zs.next_out = reinterpret_cast<Bytef*>(out.data() + produced);
    zs.avail_out = static_cast<uInt>(room);
    int rc = inflate(&zs, Z_NO_FLUSH);
    produced += room - zs.avail_out;
    if (produced > max_out) return InflateStatus::kTooLarge;
    if (rc == Z_STREAM_END) {
      if (zs.avail_in == 0) break;
      if (inflateReset(&zs) != Z_OK) return InflateStatus::kCorrupt;  // next gzip member
      continue;
    }
    if (rc == Z_OK) continue;
    if (rc == Z_BUF_ERROR && zs.avail_out == 0) continue;  // needs more room
    return InflateStatus::kCorrupt;  // truncated input, Z_DATA_ERROR, Z_NEED_DICT, Z_MEM_ERROR
  }
  out.resize(produced);
  return InflateStatus::kOk;
}

bool is_guid(std::string_view s) {
  if (s.size() != 36) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (s[i] != '-') return false;
    } else if (hex_digit_value(s[i]) < 0) {
      return false;
    }
  }
  return true;
}

bool parse_ack_query(std::string& body, std::vector<uint64_t>& ids) {
  ids.clear();
  PadGuard pad(body);
  std::string_view s = pad.view();
  simdjson::dom::element root;
  if (thread_parser()
          .parse(reinterpret_cast<const uint8_t*>(s.data()), s.size(), false)
          .get(root) != simdjson::SUCCESS)
    return false;
  simdjson::dom::array acks;
  if (root["acks"].get_array().get(acks) != simdjson::SUCCESS) return false;
  for (simdjson::dom::element x : acks) {
    uint64_t v = 0;
    if (x.get_uint64().get(v) != simdjson::SUCCESS) return false;
    ids.push_back(v);
  }
  return true;
}

std::optional<std::string> query_param(std::string_view query, std::string_view key) {
  size_t pos = 0;
  while (pos <= query.size()) {
    size_t amp = query.find('&', pos);
    size_t end = amp == std::string_view::npos ? query.size() : amp;
    std::string_view part = query.substr(pos, end - pos);
    size_t eq = part.find('=');
    std::string_view k = part.substr(0, eq);
    if (!k.empty() && form_url_decode(k) == key)
      return eq == std::string_view::npos ? std::string() : form_url_decode(part.substr(eq + 1));
    if (amp == std::string_view::npos) break;
    pos = amp + 1;
  }
  return std::nullopt;
}

}  // namespace logship::hec_receiver
