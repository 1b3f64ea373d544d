#include "plugins/sinks/splunk_hec/encoder.h"

#include <array>
#include <cstring>
#include <limits>

#include <simdjson.h>

namespace logship {
void append_hec_time(std::string& out, int64_t time_ns) {
  int64_t ms = time_ns / 1000000;  // toward zero
  // Consecutive events mostly share their time (a file read stamps all its lines at once): the
  // last text is reused (2.9 % of scenario 1's CPU went to this formatting).
  thread_local int64_t cached_ms = std::numeric_limits<int64_t>::min();
  thread_local char cached[32];
  thread_local size_t cached_len = 0;
  if (ms == cached_ms) {
    out.append(cached, cached_len);
    return;
  }
  bool neg = ms < 0;
  uint64_t a = neg ? static_cast<uint64_t>(-(ms + 1)) + 1 : static_cast<uint64_t>(ms);
  char buf[32];
  char* e = buf + sizeof buf;
  char* q = e;
  uint64_t frac = a % 1000, sec = a / 1000;
  *--q = static_cast<char>('0' + frac % 10);
  *--q = static_cast<char>('0' + frac / 10 % 10);
  *--q = static_cast<char>('0' + frac / 100);
  *--q = '.';
  do {
    *--q = static_cast<char>('0' + sec % 10);
    sec /= 10;
  } while (sec);
  if (neg) *--q = '-';
  cached_len = static_cast<size_t>(e - q);
  std::memcpy(cached, q, cached_len);
  cached_ms = ms;
  out.append(q, cached_len);
}

HecEncoder::HecEncoder(const HecSinkConfig& cfg)
    : host_(cfg.host),
      source_(cfg.source),
      sourcetype_(cfg.sourcetype),
      index_(cfg.index),
      raw_(cfg.target == HecSinkConfig::Target::kRaw) {}

std::string_view HecEncoder::resolve(const HecTemplate& t, const EventBatch& b, const Event& e,
                                     std::string& scratch) {
  switch (t.kind) {
    case HecTemplate::Kind::kLiteral:
      return t.value;
    case HecTemplate::Kind::kFromEvent:
    case HecTemplate::Kind::kMeta:
      switch (t.meta) {
        case HecTemplate::Meta::kHost:
          return b.meta(e.host);
        case HecTemplate::Meta::kSource:
          return b.meta(e.source);
        case HecTemplate::Meta::kSourcetype:
          return b.meta(e.sourcetype);
        case HecTemplate::Meta::kIndex:
          return b.meta(e.index);
      }
      return {};
    case HecTemplate::Kind::kField: {
      // Only configured templates take this path; the fields object is small.
      if (e.fields_length == 0) return {};
      std::string_view f = b.fields(e);
      padded_.assign(f);
      padded_.append(simdjson::SIMDJSON_PADDING, '\0');
      thread_local simdjson::ondemand::parser parser;
      auto doc = parser.iterate(padded_.data(), f.size(), padded_.size());
      if (doc.error()) return {};
      simdjson::ondemand::object obj;
      if (doc.get_object().get(obj)) return {};
      for (auto field : obj) {
        std::string_view key;
        if (field.unescaped_key().get(key)) return {};
        if (key != t.value) continue;
        std::string_view v;
        if (field.value().get_string().get(v)) return {};
        scratch.assign(v);
        return scratch;
      }
      return {};
    }
  }
  return {};
}

HecMetadata HecEncoder::metadata(const EventBatch& b, const Event& e) {
  return {resolve(host_, b, e, scratch_[0]), resolve(source_, b, e, scratch_[1]),
          resolve(sourcetype_, b, e, scratch_[2]), resolve(index_, b, e, scratch_[3])};
}

size_t HecEncoder::append_event_value(std::string& out, const EventBatch& b, const Event& e) {
  std::string_view text = b.text(e);
  if ((e.flags & Event::kJsonValue) && !text.empty()) {
    out.append(text);
    return 0;
  }
  out.push_back('"');
  size_t r = json_escape_append(out, text);
  out.push_back('"');
  return r;
}

size_t HecEncoder::encode_envelope(std::string& out, const EventBatch& b, const Event& e,
                                   const HecMetadata& md) {
  size_t r = 0;
  out.push_back('{');
  bool first = true;
  if (e.time_ns > 0) {  // 0 = unknown: Splunk then uses the receive time
    out.append("\"time\":", 7);
    append_hec_time(out, e.time_ns);
    first = false;
  }
  auto meta = [&](std::string_view key, std::string_view v) {
    if (v.empty()) return;
    if (!first) out.push_back(',');
    first = false;
    out.push_back('"');
    out.append(key);
    out.append("\":\"", 3);
    r += json_escape_append(out, v);
    out.push_back('"');
  };
  meta("host", md.host);
  meta("source", md.source);
  meta("sourcetype", md.sourcetype);
  meta("index", md.index);
  if (!first) out.push_back(',');
  out.append("\"event\":", 8);
  r += append_event_value(out, b, e);
  const bool truncated = (e.flags & Event::kTruncated) != 0;
  if (e.fields_length > 0 || truncated) {
    // A part of a longer line (or of a capped multiline event) carries the indexed field
    // logship_truncated (CONFIG.md max_line_bytes), merged into the event's own fields.
    out.append(",\"fields\":", 10);
    std::string_view f = e.fields_length > 0 ? b.fields(e) : std::string_view("{}");
    if (truncated) {
      out.append("{\"logship_truncated\":\"true\"");
      std::string_view rest = f.substr(1);  // after '{'
      size_t first_non_space = rest.find_first_not_of(" \t\r\n");
      if (first_non_space != std::string_view::npos && rest[first_non_space] != '}')
        out.push_back(',');
      out.append(rest);
    } else {
      out.append(f);
    }
  }
  out.push_back('}');
  return r;
}

size_t HecEncoder::encode(std::string& out, const EventBatch& b, const Event& e) {
  if (raw_) {
    out.append(b.text(e));
    out.push_back('\n');
    return 0;
  }
  return encode_envelope(out, b, e, metadata(b, e));
}

}  // namespace logship
