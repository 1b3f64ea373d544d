// Line decoding for the `file` source: configuration and the decoder for each codec. The
// codecs live in decode_*.cpp: decode_json (json), decode_container (cri, docker),
// decode_multiline (multiline aggregation), decode_timestamp (timestamp formats).
#include "plugins/sources/file/decoder.h"

#include <chrono>

#include "agent/config/config.h"
#include "agent/pipeline/event.h"
#include "plugins/sources/file/decode_container.h"
#include "plugins/sources/file/decode_json.h"
#include "plugins/sources/file/decode_multiline.h"
#include "plugins/sources/file/decode_timestamp.h"

namespace logship {

FileDecodeConfig FileDecodeConfig::parse(ConfigNode& cfg, uint64_t max_line_bytes) {
  FileDecodeConfig c;
  c.max_line_bytes = max_line_bytes;
  c.codec = cfg.choice("codec", std::string("lines"), {"lines", "json", "cri", "docker"});
  if (auto ts = cfg.map("timestamp")) {
    if (c.codec != "json")
      cfg.error("timestamp",
                "timestamp requires codec: json (it names a field of the JSON record; cri and "
                "docker records carry their own time)");
    std::string field = ts->str("field");
    if (field.empty() || field.front() == '.' || field.back() == '.' ||
        field.find("..") != std::string::npos)
      ts->error("field", "timestamp.field must be a field name or a dotted path such as a.b");
    c.timestamp_field = std::move(field);
    c.timestamp_format = ts->str("format", std::string("rfc3339"));
    std::string err = decode::TimestampFormat::validate(c.timestamp_format);
    if (!err.empty()) ts->error("format", "timestamp.format: " + err);
    ts->finish();
  }
  if (auto ml = cfg.map("multiline")) {
    c.multiline = true;
    c.start_pattern = ml->str("start_pattern");
    c.condition_pattern = ml->str("condition_pattern");
    c.mode = ml->choice("mode", std::nullopt,
                        {"continue_through", "continue_past", "halt_before", "halt_with"});
    c.multiline_timeout = ml->duration("timeout", std::chrono::seconds(1));
    if (c.multiline_timeout < std::chrono::milliseconds(1))
      ml->error("timeout", "multiline.timeout must be at least 1ms");
    c.multiline_max_lines = static_cast<uint64_t>(ml->integer("max_lines", 500, 1, 1'000'000));
    c.multiline_max_bytes = ml->size("max_bytes", 1 << 20);
    if (c.multiline_max_bytes < 1 || c.multiline_max_bytes > (64ull << 20))
      ml->error("max_bytes", "multiline.max_bytes must be between 1 and 64MiB");
    auto check = [&](const char* key, const std::string& pattern) {
      RE2::Options opts;
      opts.set_log_errors(false);
      RE2 re(pattern, opts);
      if (!re.ok()) ml->error(key, std::string(key) + " is not a valid RE2 pattern: " + re.error());
    };
    check("start_pattern", c.start_pattern);
    check("condition_pattern", c.condition_pattern);
    ml->finish();
  }
  return c;
}

namespace {

/// `lines` without multiline: the hot path, a pass-through.
class PassThroughDecoder final : public LineDecoder {
 public:
  void line(std::string_view line, bool truncated, uint64_t, uint64_t, int64_t read_time_ns,
            EventEmitter& out) override {
    out.emit(line, read_time_ns, truncated ? Event::kTruncated : 0);
  }
  void flush(std::chrono::steady_clock::time_point, bool, EventEmitter&) override {}
  std::optional<uint64_t> held_from() const override { return std::nullopt; }
};

/// `json` without multiline: one record per line.
class JsonDecoder final : public LineDecoder {
 public:
  JsonDecoder(const FileDecodeConfig& cfg, ComponentMetrics& metrics) : stage_(cfg, metrics) {}
  void line(std::string_view line, bool truncated, uint64_t, uint64_t, int64_t read_time_ns,
            EventEmitter& out) override {
    stage_.decode(line, read_time_ns, truncated ? Event::kTruncated : 0, out);
  }
  void flush(std::chrono::steady_clock::time_point, bool, EventEmitter&) override {}
  std::optional<uint64_t> held_from() const override { return std::nullopt; }

 private:
  decode::JsonStage stage_;
};

/// `lines` or `json` with multiline: lines are aggregated first, then (json) decoded.
class MultilineDecoder final : public LineDecoder {
 public:
  MultilineDecoder(const FileDecodeConfig& cfg, ComponentMetrics& metrics,
                   std::shared_ptr<const decode::MultilineRules> rules)
      : agg_(std::move(rules)) {
    if (cfg.codec == "json") json_.emplace(cfg, metrics);
  }
  void line(std::string_view line, bool truncated, uint64_t start_offset, uint64_t end_offset,
            int64_t read_time_ns, EventEmitter& out) override {
    auto part = parts_.next(line, truncated, start_offset, end_offset);
    auto now = std::chrono::steady_clock::now();
    uint8_t flags = truncated ? Event::kTruncated : 0;
    if (json_) {
      decode::JsonEmitter je(*json_, out);
      agg_.push(line, part, flags, read_time_ns, start_offset, now, je);
    } else {
      agg_.push(line, part, flags, read_time_ns, start_offset, now, out);
    }
  }
  void flush(std::chrono::steady_clock::time_point now, bool force, EventEmitter& out) override {
    if (json_) {
      decode::JsonEmitter je(*json_, out);
      agg_.flush(now, force, je);
    } else {
      agg_.flush(now, force, out);
    }
    if (force) parts_.reset();
  }
  std::optional<uint64_t> held_from() const override { return agg_.held_from(); }

 private:
  decode::MultilineAggregator agg_;
  decode::PartTracker parts_;
  std::optional<decode::JsonStage> json_;
};

}  // namespace

std::unique_ptr<LineDecoder> make_line_decoder(const FileDecodeConfig& cfg,
                                               ComponentMetrics& metrics) {
  if (cfg.codec == "cri" || cfg.codec == "docker")
    return decode::make_container_decoder(cfg, metrics);
  if (cfg.multiline) {
    std::string error;
    if (auto rules = decode::MultilineRules::compile(cfg, &error))
      return std::make_unique<MultilineDecoder>(cfg, metrics, std::move(rules));
    // Patterns are validated by parse(); a config built by hand with a bad one decodes without
    // multiline rather than failing on data.
  }
  if (cfg.codec == "json") return std::make_unique<JsonDecoder>(cfg, metrics);
  return std::make_unique<PassThroughDecoder>();
}

}  // namespace logship
