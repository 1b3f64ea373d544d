#include "plugins/sources/file/decode_container.h"

#include <algorithm>
#include <chrono>
#include <string>
#include <tuple>

#include "agent/observe/metrics.h"
#include "agent/pipeline/event.h"
#include "plugins/sources/file/decode_json.h"
#include "plugins/sources/file/decode_multiline.h"
#include "plugins/sources/file/decode_timestamp.h"

namespace logship::decode {

namespace {

constexpr std::string_view kStreamNames[] = {"stdout", "stderr"};
constexpr size_t kKeepCapacity = 256 << 10;

int stream_index(std::string_view s) {
  if (s == "stdout") return 0;
  if (s == "stderr") return 1;
  return -1;
}

class ContainerDecoder final : public LineDecoder {
 public:
  ContainerDecoder(const FileDecodeConfig& cfg, ComponentMetrics& metrics,
                   std::shared_ptr<const MultilineRules> rules)
      : metrics_(metrics),
        docker_(cfg.codec == "docker"),
        max_bytes_(cfg.max_line_bytes > 0 ? cfg.max_line_bytes : 1) {
    if (rules)
      for (auto& s : streams_) s.ml = std::make_unique<MultilineAggregator>(rules);
  }

  void line(std::string_view line, bool truncated, uint64_t start_offset, uint64_t end_offset,
            int64_t read_time_ns, EventEmitter& out) override {
    PartTracker::Part part = parts_.next(line, truncated, start_offset, end_offset);
    const uint8_t tflags = truncated ? Event::kTruncated : 0;
    if (part.continuation) {
      if (cont_stream_ >= 0) {
        int idx = cont_stream_;
        append(idx, line, start_offset, out);
        if (!part.open) {
          cont_stream_ = -1;
          if (cont_final_) finish(idx, out);
        }
      } else {
        raw(line, read_time_ns, tflags, out);
      }
      return;
    }
    cont_stream_ = -1;
    ContainerRecord r;
    const char* why = nullptr;
    bool ok = docker_ ? parse_docker(line, r, why) : parse_cri(line, r, why);
    if (!ok) {
      report_error(metrics_, "decode", docker_ ? "docker_malformed" : "cri_malformed", why);
      raw(line, read_time_ns, tflags, out);
    } else {
      record(r, part, part.open ? 0 : tflags, start_offset, out);
    }
    if (docker_) thread_json().release_after(line.size());
  }

  void flush(std::chrono::steady_clock::time_point now, bool force, EventEmitter& out) override {
    if (force) {
      for (int idx = 0; idx < 2; ++idx)
        if (streams_[idx].active) finish(idx, out);
      cont_stream_ = -1;
      parts_.reset();
    }
    for (int idx = 0; idx < 2; ++idx) {
      if (!streams_[idx].ml) continue;
      StreamEmitter se(*this, idx, out);
      streams_[idx].ml->flush(now, force, se);
    }
  }

  std::optional<uint64_t> held_from() const override {
    std::optional<uint64_t> from;
    auto take = [&](std::optional<uint64_t> o) {
      if (o && (!from || *o < *from)) from = o;
    };
    for (const Stream& s : streams_) {
      if (s.active) take(s.start);
      if (s.ml) take(s.ml->held_from());
    }
    return from;
  }

  std::string_view last_stream() const override { return last_stream_; }

 private:
  struct Stream {
    std::string buf;  ///< the message being reassembled (<= max_bytes_)
    bool active = false;
    int64_t time_ns = 0;
    uint64_t start = 0;  ///< file offset of its first record
    uint8_t flags = 0;
    std::unique_ptr<MultilineAggregator> ml;
  };

  /// Forwards a stream's multiline events, naming the stream.
  class StreamEmitter final : public EventEmitter {
   public:
    StreamEmitter(ContainerDecoder& d, int idx, EventEmitter& out) : d_(d), idx_(idx), out_(out) {}
    void emit(std::string_view text, int64_t time_ns, uint8_t flags) override {
      d_.last_stream_ = kStreamNames[idx_];
      out_.emit(text, time_ns, flags);
    }

   private:
    ContainerDecoder& d_;
    int idx_;
    EventEmitter& out_;
  };

  void record(const ContainerRecord& r, PartTracker::Part part, uint8_t flags,
              uint64_t start_offset, EventEmitter& out) {
    Stream& s = streams_[r.stream];
    if (!s.active && !r.partial && !part.open && r.message.size() <= max_bytes_) {
      deliver(r.stream, r.message, r.time_ns, flags, start_offset, out);  // common: no copy
      return;
    }
    if (!s.active) {
      s.active = true;
      s.time_ns = r.time_ns;
      s.start = start_offset;
      s.flags = 0;
      s.buf.clear();
    }
    s.flags |= flags;
    append(r.stream, r.message, start_offset, out);
    if (part.open) {
      cont_stream_ = r.stream;
      cont_final_ = !r.partial;
    } else if (!r.partial) {
      finish(r.stream, out);
    }
  }

  /// Appends to a stream's message; whatever exceeds max_bytes_ is cut off into events.
  void append(int idx, std::string_view piece, uint64_t offset, EventEmitter& out) {
    Stream& s = streams_[idx];
    for (;;) {
      size_t room = max_bytes_ - s.buf.size();
      if (piece.size() <= room) break;
      size_t n = room == 0 ? 0 : utf8_cut(piece, room);
      s.buf.append(piece.data(), n);
      piece.remove_prefix(n);
      s.flags |= Event::kTruncated;
      deliver(idx, s.buf, s.time_ns, s.flags, s.start, out);
      s.buf.clear();
      s.start = offset;
    }
    s.buf.append(piece);
  }

  void finish(int idx, EventEmitter& out) {
    Stream& s = streams_[idx];
    deliver(idx, s.buf, s.time_ns, s.flags, s.start, out);
    s.active = false;
    s.buf.clear();
    if (s.buf.capacity() > kKeepCapacity) std::string().swap(s.buf);
  }

  void deliver(int idx, std::string_view text, int64_t time_ns, uint8_t flags, uint64_t start,
               EventEmitter& out) {
    if (streams_[idx].ml) {
      StreamEmitter se(*this, idx, out);
      streams_[idx].ml->push(text, PartTracker::Part{false, false}, flags, time_ns, start,
                             std::chrono::steady_clock::now(), se);
    } else {
      last_stream_ = kStreamNames[idx];
      out.emit(text, time_ns, flags);
    }
  }

  void raw(std::string_view line, int64_t time_ns, uint8_t flags, EventEmitter& out) {
    last_stream_ = {};
    out.emit(line, time_ns, flags);
  }

  ComponentMetrics& metrics_;
  const bool docker_;
  const size_t max_bytes_;
  Stream streams_[2];
  PartTracker parts_;
  int cont_stream_ = -1;     ///< stream whose record continues in the next part of a long line
  bool cont_final_ = false;  ///< that record was final (F / "\n"): done after its last part
  std::string_view last_stream_;
};

}  // namespace

bool parse_cri(std::string_view line, ContainerRecord& r, const char*& why) {
  size_t sp = line.find(' ');
  if (sp == std::string_view::npos) {
    why = "malformed CRI record (no fields); passed through as is";
    return false;
  }
  if (!parse_rfc3339(line.substr(0, sp), r.time_ns)) {
    why = "malformed CRI record (bad time); passed through as is";
    return false;
  }
  std::string_view rest = line.substr(sp + 1);
  sp = rest.find(' ');
  r.stream = stream_index(rest.substr(0, sp));
  if (sp == std::string_view::npos || r.stream < 0) {
    why = "malformed CRI record (stream is not stdout or stderr); passed through as is";
    return false;
  }
  rest = rest.substr(sp + 1);
  sp = rest.find(' ');
  std::string_view tags = rest.substr(0, sp);
  std::string_view tag = tags.substr(0, tags.find(':'));
  if (tag == "P") {
    r.partial = true;
  } else if (tag == "F") {
    r.partial = false;
  } else {
    why = "malformed CRI record (tag is not P or F); passed through as is";
    return false;
  }
  r.message = sp == std::string_view::npos ? std::string_view() : rest.substr(sp + 1);
  return true;
}

bool parse_docker(std::string_view line, ContainerRecord& r, const char*& why) {
  ThreadJson& tj = thread_json();
  simdjson::padded_string_view in = tj.padded.view(line);
  simdjson::dom::element root;
  if (tj.parser.parse(in.data(), in.size(), false).get(root) != simdjson::SUCCESS) {
    why = "malformed docker record (invalid JSON); passed through as is";
    return false;
  }
  simdjson::dom::object obj;
  if (root.get_object().get(obj) != simdjson::SUCCESS) {
    why = "malformed docker record (not a JSON object); passed through as is";
    return false;
  }
  std::string_view log, stream, time;
  bool have_log = false, have_stream = false, have_time = false;
  for (auto [target, have, key] :
       {std::tuple{&log, &have_log, "log"}, std::tuple{&stream, &have_stream, "stream"},
        std::tuple{&time, &have_time, "time"}}) {
    simdjson::dom::element v;
    if (obj.at_key(key).get(v) != simdjson::SUCCESS) continue;
    if (v.get_string().get(*target) != simdjson::SUCCESS) {
      why = "malformed docker record (log, stream or time is not a string); passed through as is";
      return false;
    }
    *have = true;
  }
  if (!have_log || !have_stream || !have_time) {
    why = "malformed docker record (log, stream or time missing); passed through as is";
    return false;
  }
  if (!parse_rfc3339(time, r.time_ns)) {
    why = "malformed docker record (bad time); passed through as is";
    return false;
  }
  r.stream = stream_index(stream);
  if (r.stream < 0) {
    why = "malformed docker record (stream is not stdout or stderr); passed through as is";
    return false;
  }
  r.partial = !log.empty() && log.back() != '\n';
  if (!r.partial && !log.empty()) {
    log.remove_suffix(1);
    if (!log.empty() && log.back() == '\r') log.remove_suffix(1);
  }
  r.message = log;
  return true;
}

std::unique_ptr<LineDecoder> make_container_decoder(const FileDecodeConfig& cfg,
                                                    ComponentMetrics& metrics) {
  std::shared_ptr<const MultilineRules> rules;
  if (cfg.multiline) rules = MultilineRules::compile(cfg, nullptr);
  return std::make_unique<ContainerDecoder>(cfg, metrics, std::move(rules));
}

}  // namespace logship::decode
