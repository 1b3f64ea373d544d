#pragma once
// Multiline aggregation for the `file` source (`multiline:` in CONFIG.md "Source file"), with
// Vector's semantics (lib/file-source line_agg): without an event in progress, a line matching
// `start_pattern` starts one, any other line passes through alone; with one in progress,
// `condition_pattern` decides per mode:
//   continue_through: a match joins, a non-match ends the event and is handled anew;
//   continue_past:    a match joins, a non-match joins and ends the event;
//   halt_before:      a non-match joins, a match ends the event and is handled anew;
//   halt_with:        a non-match joins, a match joins and ends the event.
// Joined lines are separated by "\n". An event is emitted after `timeout` without new lines
// (flush), and cut at `max_lines` / `max_bytes` (both parts flagged Event::kTruncated; the next
// line starts the continuation). Parts of a line the tailer split (max_line_bytes) are glued
// back without a separator and never matched against the patterns.
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <re2/re2.h>

#include "plugins/sources/file/decoder.h"

namespace logship::decode {

/// Compiled `multiline` options, shared by the aggregators of one decoder.
struct MultilineRules {
  enum class Mode : uint8_t { kContinueThrough, kContinuePast, kHaltBefore, kHaltWith };
  std::unique_ptr<RE2> start;
  std::unique_ptr<RE2> condition;
  Mode mode = Mode::kContinueThrough;
  std::chrono::nanoseconds timeout = std::chrono::seconds(1);
  uint64_t max_lines = 500;
  uint64_t max_bytes = 1 << 20;

  /// Compiles the patterns of `cfg`; nullptr with `error` set when one does not compile.
  static std::shared_ptr<const MultilineRules> compile(const FileDecodeConfig& cfg,
                                                       std::string* error);
};

/// Index of the last byte boundary <= `room` in `s` that does not split a UTF-8 sequence
/// (`room` itself when backing off would leave nothing).
size_t utf8_cut(std::string_view s, size_t room);

/// Tells whether a line the tailer cut continues the previous one (both are parts of one long
/// line): the previous part was truncated and ended without a newline exactly where this starts.
class PartTracker {
 public:
  struct Part {
    bool continuation;  ///< this part continues the previous one
    bool open;          ///< the next part continues this one
  };
  Part next(std::string_view line, bool truncated, uint64_t start_offset, uint64_t end_offset) {
    Part p{truncated && open_ && start_offset == end_, false};
    p.open = truncated && end_offset == start_offset + line.size();
    open_ = p.open;
    end_ = end_offset;
    return p;
  }
  void reset() { open_ = false; }

 private:
  bool open_ = false;
  uint64_t end_ = 0;
};

class MultilineAggregator {
 public:
  explicit MultilineAggregator(std::shared_ptr<const MultilineRules> rules)
      : rules_(std::move(rules)) {}

  /// One line (or a part of one, see PartTracker) with its time, flags and file offset.
  void push(std::string_view line, PartTracker::Part part, uint8_t flags, int64_t time_ns,
            uint64_t start_offset, std::chrono::steady_clock::time_point now, EventEmitter& out);
  /// Emits the event in progress when it waited `timeout` since its last line, or when `force`.
  void flush(std::chrono::steady_clock::time_point now, bool force, EventEmitter& out);
  std::optional<uint64_t> held_from() const {
    return active_ ? std::optional<uint64_t>(start_offset_) : std::nullopt;
  }

 private:
  void begin(int64_t time_ns, uint64_t start_offset, uint8_t flags);
  /// Adds to the event in progress; `new_line`: a line (separator, counted), else a part.
  void add(std::string_view piece, bool new_line, uint8_t flags, int64_t time_ns,
           uint64_t start_offset, EventEmitter& out);
  void cut(int64_t time_ns, uint64_t start_offset, EventEmitter& out);
  void emit(EventEmitter& out);
  void vacant(std::string_view line, PartTracker::Part part, uint8_t flags, int64_t time_ns,
              uint64_t start_offset, EventEmitter& out);

  std::shared_ptr<const MultilineRules> rules_;
  std::string buf_;
  bool active_ = false;
  bool last_part_in_event_ = false;  ///< the previous line/part went into the event in progress
  bool end_pending_ = false;         ///< the event ends once the current long line is complete
  uint8_t flags_ = 0;
  uint64_t lines_ = 0;
  int64_t time_ns_ = 0;
  uint64_t start_offset_ = 0;
  std::chrono::steady_clock::time_point last_{};
};

}  // namespace logship::decode
