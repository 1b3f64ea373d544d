#pragma once
// Event and EventBatch. A batch owns one arena of bytes; events are small PODs that point into
// it, so building a batch costs no heap allocation per event (the arena and the vector grow
// geometrically). Metadata strings (host, source, sourcetype, index) live in a small per-batch
// table and events refer to them by index, so a source that emits many events with the same
// metadata stores each string once.
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "agent/pipeline/ack.h"

namespace logship {

struct Event {
  int64_t time_ns = 0;        ///< event time, nanoseconds since the Unix epoch
  uint32_t offset = 0;        ///< event text: arena[offset, offset+length)
  uint32_t length = 0;
  uint32_t fields_offset = 0; ///< optional indexed fields: a flat JSON object text in the arena
  uint32_t fields_length = 0; ///< 0 = no fields
  uint16_t host = 0;          ///< index into EventBatch::meta; 0 = unset
  uint16_t source = 0;
  uint16_t sourcetype = 0;
  uint16_t index = 0;
  uint8_t flags = 0;
  static constexpr uint8_t kJsonValue = 1;  ///< text is a JSON value, embedded as is in `event`
  static constexpr uint8_t kTruncated = 2;  ///< a part of a longer line
};

class EventBatch {
 public:
  EventBatch() { meta_.emplace_back(); }
  EventBatch(EventBatch&&) = default;
  EventBatch& operator=(EventBatch&&) = default;
  EventBatch(const EventBatch&) = delete;
  EventBatch& operator=(const EventBatch&) = delete;

  /// Appends an event whose text is `text` (copied into the arena); returns it for metadata.
  Event& add(std::string_view text, int64_t time_ns) {
    Event e;
    e.time_ns = time_ns;
    e.offset = static_cast<uint32_t>(arena_.size());
    e.length = static_cast<uint32_t>(text.size());
    arena_.append(text);
    events_.push_back(e);
    return events_.back();
  }
  /// Stores a flat JSON object of indexed fields for `e`.
  void set_fields(Event& e, std::string_view json_object) {
    e.fields_offset = static_cast<uint32_t>(arena_.size());
    e.fields_length = static_cast<uint32_t>(json_object.size());
    arena_.append(json_object);
  }
  /// Returns the id of a metadata string (deduplicated within the batch). "" is 0 (unset).
  uint16_t intern(std::string_view s) {
    if (s.empty()) return 0;
    for (size_t i = 1; i < meta_.size(); ++i)
      if (meta_[i] == s) return static_cast<uint16_t>(i);
    if (meta_.size() >= 65535) return 0;
    meta_.emplace_back(s);
    return static_cast<uint16_t>(meta_.size() - 1);
  }

  std::string_view text(const Event& e) const { return {arena_.data() + e.offset, e.length}; }
  std::string_view fields(const Event& e) const {
    return {arena_.data() + e.fields_offset, e.fields_length};
  }
  /// Adds a metadata string the caller knows is not interned yet (its own hash map dedupes):
  /// no scan. 0 (unset) when the batch's table is full (65,535 values).
  uint16_t intern_unique(std::string_view s) {
    if (s.empty() || meta_.size() >= 65535) return 0;
    meta_.emplace_back(s);
    return static_cast<uint16_t>(meta_.size() - 1);
  }
  const std::string& meta(uint16_t id) const { return meta_[id < meta_.size() ? id : 0]; }
  const std::vector<Event>& events() const { return events_; }
  std::vector<Event>& events() { return events_; }
  size_t size() const { return events_.size(); }
  bool empty() const { return events_.empty(); }
  /// Bytes of event text (what metrics count as event bytes).
  size_t text_bytes() const { return arena_.size(); }
  /// Memory accounted against channel limits: what the batch holds allocated (capacities).
  size_t byte_size() const {
    return arena_.capacity() + events_.capacity() * sizeof(Event) + meta_.capacity() * 32 + 64;
  }
  /// The raw parts (the disk buffer stores a batch as them and rebuilds it with from_parts).
  std::string_view arena() const { return arena_; }
  const std::vector<std::string>& meta_table() const { return meta_; }
  /// A batch from stored parts. `meta` must start with the unset entry "".
  static EventBatch from_parts(std::string arena, std::vector<Event> events,
                               std::vector<std::string> meta) {
    EventBatch b;
    b.arena_ = std::move(arena);
    b.events_ = std::move(events);
    b.meta_ = std::move(meta);
    if (b.meta_.empty()) b.meta_.emplace_back();
    return b;
  }
  void reserve(size_t events, size_t bytes) {
    events_.reserve(events);
    arena_.reserve(bytes);
  }

 private:
  std::string arena_;
  std::vector<Event> events_;
  std::vector<std::string> meta_;
};

using BatchPtr = std::shared_ptr<const EventBatch>;

/// What travels through channels: a shared, immutable batch plus this consumer's obligation to
/// report its delivery status.
struct BatchRef {
  BatchPtr batch;
  AckHandle ack;
};

}  // namespace logship
