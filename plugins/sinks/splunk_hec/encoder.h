#pragma once
// HEC encoder: events → request body bytes, written straight into one std::string per request
// (no per-event allocation). `/event`: one envelope object per event, concatenated;
// `/raw`: the event text and a newline.
#include <cstdint>
#include <string>
#include <string_view>

#include "agent/pipeline/event.h"
#include "agent/core/json_escape.h"
#include "plugins/sinks/splunk_hec/config.h"

namespace logship {

/// Appends `<sec>.<ms>` with exactly three decimals (truncated toward zero).
void append_hec_time(std::string& out, int64_t time_ns);

/// Resolved metadata of one event; views valid until the next resolve on the same encoder.
struct HecMetadata {
  std::string_view host, source, sourcetype, index;
  bool operator==(const HecMetadata&) const = default;
};

class HecEncoder {
 public:
  explicit HecEncoder(const HecSinkConfig& cfg);

  /// The event's host/source/sourcetype/index after the sink's templates.
  HecMetadata metadata(const EventBatch& b, const Event& e);

  /// Appends one event in the configured target's format; returns the invalid-UTF-8
  /// replacements made (always 0 for `raw`, which passes bytes through).
  size_t encode(std::string& out, const EventBatch& b, const Event& e);

  /// Appends the `/event` envelope of one event with the given metadata.
  static size_t encode_envelope(std::string& out, const EventBatch& b, const Event& e,
                                const HecMetadata& md);

  /// Appends the value of `event`: the text as a JSON string, or embedded when kJsonValue.
  static size_t append_event_value(std::string& out, const EventBatch& b, const Event& e);

  bool raw() const { return raw_; }

 private:
  std::string_view resolve(const HecTemplate& t, const EventBatch& b, const Event& e,
                           std::string& scratch);
  HecTemplate host_, source_, sourcetype_, index_;
  bool raw_;
  std::string scratch_[4];
  std::string padded_;
};

}  // namespace logship
