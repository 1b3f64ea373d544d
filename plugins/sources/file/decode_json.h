#pragma once
// The `json` codec of the `file` source: each record must be one JSON object (validated in full
// with simdjson On-Demand); valid -> emitted unchanged with Event::kJsonValue and its time from
// `timestamp.field` when configured; invalid -> the raw text as a plain string event, counted as
// errors_total{stage="decode",error="invalid_json"}. Blank records are skipped.
//
// Validation uses simdjson's DOM parser (full validation, every error code checked): it is
// dispatched at run time to the CPU's best kernel (icelake/haswell), whereas On-Demand is
// compiled for the build's baseline (`fallback` without -march), measured 3.6x slower here.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <simdjson.h>

#include "plugins/sources/file/decode_timestamp.h"
#include "plugins/sources/file/decoder.h"

namespace logship::decode {

/// A reusable copy of the input with simdjson's padding (no allocation in steady state).
class PaddedBuffer {
 public:
  simdjson::padded_string_view view(std::string_view s) {
    if (buf_.capacity() < s.size() + simdjson::SIMDJSON_PADDING)
      buf_.reserve(s.size() + simdjson::SIMDJSON_PADDING);
    buf_.assign(s.data(), s.size());
    return simdjson::padded_string_view(buf_.data(), buf_.size(), buf_.capacity());
  }
  /// Releases a buffer that grew past `keep` bytes.
  void trim(size_t keep) {
    if (buf_.capacity() > keep) std::string().swap(buf_);
  }

 private:
  std::string buf_;
};

/// The calling thread's DOM parser and padded buffer, shared by the decoders of all files
/// (memory grows with the largest record per thread, not per file).
struct ThreadJson {
  simdjson::dom::parser parser;
  PaddedBuffer padded;
  /// Call after a record of `size` bytes is done with: releases memory a huge one needed.
  void release_after(size_t size);
};
ThreadJson& thread_json();

class JsonStage {
 public:
  JsonStage(const FileDecodeConfig& cfg, ComponentMetrics& metrics);
  /// Decodes one record (a line, or a multiline event) and emits it to `out`. `time_ns` is the
  /// fallback time (read time).
  void decode(std::string_view text, int64_t time_ns, uint8_t flags, EventEmitter& out);

 private:
  ComponentMetrics& metrics_;
  std::vector<std::string> path_;  ///< timestamp.field split on '.'; empty = no timestamp
  std::optional<TimestampFormat> format_;
};

/// EventEmitter adapter: records emitted into it are decoded by a JsonStage into `out`.
class JsonEmitter : public EventEmitter {
 public:
  JsonEmitter(JsonStage& stage, EventEmitter& out) : stage_(stage), out_(out) {}
  void emit(std::string_view text, int64_t time_ns, uint8_t flags) override {
    stage_.decode(text, time_ns, flags, out_);
  }

 private:
  JsonStage& stage_;
  EventEmitter& out_;
};

}  // namespace logship::decode
