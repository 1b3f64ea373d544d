#include "plugins/sources/file/decode_json.h"

#include <charconv>

#include "agent/observe/metrics.h"
#include "agent/pipeline/event.h"

namespace logship::decode {

namespace {

constexpr size_t kKeepCapacity = 256 << 10;

bool blank(std::string_view s) {
  for (char c : s)
    if (c != ' ' && c != '\t' && c != '\r' && c != '\n') return false;
  return true;
}

}  // namespace

void ThreadJson::release_after(size_t size) {
  if (size <= kKeepCapacity) return;
  padded.trim(kKeepCapacity);
  if (parser.allocate(kKeepCapacity) != simdjson::SUCCESS) parser = simdjson::dom::parser();
}

ThreadJson& thread_json() {
  thread_local ThreadJson tj;
  return tj;
}

JsonStage::JsonStage(const FileDecodeConfig& cfg, ComponentMetrics& metrics) : metrics_(metrics) {
  if (cfg.timestamp_field && !cfg.timestamp_field->empty()) {
    std::string_view f = *cfg.timestamp_field;
    for (size_t pos = 0;;) {
      size_t dot = f.find('.', pos);
      path_.emplace_back(f.substr(pos, dot == std::string_view::npos ? f.npos : dot - pos));
      if (dot == std::string_view::npos) break;
      pos = dot + 1;
    }
    format_.emplace(cfg.timestamp_format);
  }
}

namespace {

/// The exact decimal text of a JSON number the DOM parsed (integers as is; doubles as the
/// shortest text that reads back the same, i.e. the input's digits when it had at most 17).
std::string_view number_text(simdjson::dom::element v, char* buf, size_t size) {
  std::to_chars_result r{buf, std::errc()};
  int64_t i = 0;
  uint64_t u = 0;
  double d = 0;
  if (v.get_int64().get(i) == simdjson::SUCCESS) {
    r = std::to_chars(buf, buf + size, i);
  } else if (v.get_uint64().get(u) == simdjson::SUCCESS) {
    r = std::to_chars(buf, buf + size, u);
  } else if (v.get_double().get(d) == simdjson::SUCCESS) {
    r = std::to_chars(buf, buf + size, d, std::chars_format::fixed);
  }
  if (r.ec != std::errc()) return {};
  return {buf, static_cast<size_t>(r.ptr - buf)};
}

}  // namespace

void JsonStage::decode(std::string_view text, int64_t time_ns, uint8_t flags, EventEmitter& out) {
  if (blank(text)) return;
  ThreadJson& tj = thread_json();
  simdjson::padded_string_view in = tj.padded.view(text);
  simdjson::dom::element root;
  simdjson::dom::object obj;
  if (tj.parser.parse(in.data(), in.size(), false).get(root) != simdjson::SUCCESS ||
      root.get_object().get(obj) != simdjson::SUCCESS) {
    report_error(metrics_, "decode", "invalid_json",
                 "invalid JSON record (or not an object); emitted as a plain string");
    out.emit(text, time_ns, static_cast<uint8_t>(flags & ~Event::kJsonValue));
    tj.release_after(text.size());
    return;
  }
  int64_t t = time_ns;
  if (format_) {
    simdjson::dom::element v = root;
    bool found = true;
    for (const std::string& key : path_) {
      simdjson::dom::object o;
      if (v.get_object().get(o) != simdjson::SUCCESS || o.at_key(key).get(v) != simdjson::SUCCESS) {
        found = false;
        break;
      }
    }
    int64_t parsed = 0;
    bool ok = false;
    if (found) {
      std::string_view s;
      char buf[64];
      if (v.get_string().get(s) == simdjson::SUCCESS) {
        ok = format_->parse_string(s, time_ns, parsed);
      } else if (v.is_number()) {
        s = number_text(v, buf, sizeof buf);
        ok = !s.empty() && format_->parse_number(s, parsed);
      }
    }
    if (ok) {
      t = parsed;
    } else if (!found) {
      report_error(metrics_, "decode", "timestamp_missing",
                   "JSON record without the timestamp field; using the read time");
    } else {
      report_error(metrics_, "decode", "timestamp_unparseable",
                   "timestamp field does not match timestamp.format; using the read time");
    }
  }
  out.emit(text, t, static_cast<uint8_t>(flags | Event::kJsonValue));
  tj.release_after(text.size());
}

}  // namespace logship::decode
