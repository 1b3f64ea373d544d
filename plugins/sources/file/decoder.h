#pragma once
// Line decoding for the `file` source: turns the lines the tailer cuts (one file at a time) into
// events, applying the codec (`lines`, `json`, `cri`, `docker`), timestamp extraction and
// multiline aggregation (CONFIG.md "Source file": codec, timestamp, multiline). One decoder per
// file; the tailer knows nothing of the event model beyond this interface.
//
// Checkpoint contract: a decoder may hold lines (a multiline event in progress, a CRI/docker
// partial record). held_from() gives the file offset where held data starts; the tailer never
// checkpoints past it, so after a restart the held lines are read again.
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace logship {

class ConfigNode;
class ComponentMetrics;

/// Receives decoded events (the tailer adds them to its batch with the file's metadata).
class EventEmitter {
 public:
  virtual ~EventEmitter() = default;
  /// `flags`: Event::kJsonValue (text is a JSON object/value to embed as is), Event::kTruncated.
  virtual void emit(std::string_view text, int64_t time_ns, uint8_t flags) = 0;
};

/// Decoding options, parsed from the file source's mapping.
struct FileDecodeConfig {
  std::string codec = "lines";  ///< lines | json | cri | docker
  /// `timestamp: {field, format}`; format: rfc3339 | epoch_s | epoch_ms | epoch_ns | strftime.
  /// Zone-less times are UTC; unparseable -> read time, counted.
  std::optional<std::string> timestamp_field;
  std::string timestamp_format = "rfc3339";
  /// `multiline: {start_pattern, condition_pattern, mode, timeout, max_lines, max_bytes}` (as
  /// Vector: mode continue_through | continue_past | halt_before | halt_with; RE2 patterns).
  bool multiline = false;
  std::string start_pattern;
  std::string condition_pattern;
  std::string mode;
  std::chrono::nanoseconds multiline_timeout = std::chrono::seconds(1);
  uint64_t multiline_max_lines = 500;
  uint64_t multiline_max_bytes = 1 << 20;
  uint64_t max_line_bytes = 1 << 20;  ///< from the source (bounds reassembled records too)

  /// Reads `codec`, `timestamp`, `multiline` from the source's mapping (other keys untouched);
  /// validates (RE2 patterns compile, mode/format known) -> ConfigError at file:line:col.
  static FileDecodeConfig parse(ConfigNode& cfg, uint64_t max_line_bytes);
};

class LineDecoder {
 public:
  virtual ~LineDecoder() = default;
  /// One line cut by the tailer: without its `\n` (and `\r`); `truncated` when it is a part of a
  /// longer line; `end_offset` = file offset just past the line (its newline);
  /// `start_offset` = file offset of its first byte; `read_time_ns` = when it was read.
  virtual void line(std::string_view line, bool truncated, uint64_t start_offset,
                    uint64_t end_offset, int64_t read_time_ns, EventEmitter& out) = 0;
  /// Emits held data that waited longer than its timeout (multiline timeout), or everything
  /// held when `force` (the file is released, or the source stops).
  virtual void flush(std::chrono::steady_clock::time_point now, bool force, EventEmitter& out) = 0;
  /// File offset where held (not yet emitted) data starts; nullopt when nothing is held.
  virtual std::optional<uint64_t> held_from() const = 0;
  /// `cri` / `docker`: the stream ("stdout" / "stderr") of the event being (or last) emitted;
  /// valid inside EventEmitter::emit() and until the next call. "" for other codecs and for
  /// malformed records passed through raw.
  virtual std::string_view last_stream() const { return {}; }
};

/// Builds the decoder for one file. `metrics` is the source's ComponentMetrics: decoders report
/// bad data with report_error(metrics, "decode", "<kind>", message) (counted, rate-limited log).
std::unique_ptr<LineDecoder> make_line_decoder(const FileDecodeConfig& cfg,
                                               ComponentMetrics& metrics);

}  // namespace logship
