#pragma once
// Copies events of one batch into a new one (a transform's output), keeping their metadata,
// fields and flags; each source metadata string is interned once per output batch.
#include <cstdint>
#include <string_view>
#include <vector>

#include "agent/pipeline/event.h"

namespace logship::transform {

class BatchBuilder {
 public:
  explicit BatchBuilder(const EventBatch& src)
      : src_(src), map_(src.meta_table().size(), kUnmapped) {
    out_.reserve(src.size(), src.text_bytes());
  }
  /// Appends a copy of `e` (text replaced when `text` is given, fields when `fields` is).
  Event& add(const Event& e, const std::string_view* text = nullptr,
             const std::string_view* fields = nullptr) {
    Event& n = out_.add(text ? *text : src_.text(e), e.time_ns);
    n.flags = e.flags;
    n.host = map(e.host);
    n.source = map(e.source);
    n.sourcetype = map(e.sourcetype);
    n.index = map(e.index);
    std::string_view f = fields ? *fields : src_.fields(e);
    if (!f.empty()) out_.set_fields(n, f);
    return n;
  }
  /// Metadata id in the output batch of `s`.
  uint16_t intern(std::string_view s) { return out_.intern(s); }
  EventBatch& batch() { return out_; }
  BatchPtr finish() { return std::make_shared<const EventBatch>(std::move(out_)); }

 private:
  static constexpr uint16_t kUnmapped = 0xFFFF;
  uint16_t map(uint16_t id) {
    if (id == 0 || id >= map_.size()) return 0;
    if (map_[id] == kUnmapped) map_[id] = out_.intern(src_.meta(id));
    return map_[id];
  }
  const EventBatch& src_;
  std::vector<uint16_t> map_;
  EventBatch out_;
};

/// The events of `in` whose `keep` flag is set (`kept` of them): `in` itself when all are,
/// null when none is, else a copy of those.
inline BatchPtr keep_subset(const BatchPtr& in, const std::vector<uint8_t>& keep, size_t kept) {
  const EventBatch& b = *in;
  if (kept == b.size()) return in;
  if (kept == 0) return nullptr;
  BatchBuilder bb(b);
  for (size_t i = 0; i < b.size(); ++i)
    if (keep[i]) bb.add(b.events()[i]);
  return bb.finish();
}

}  // namespace logship::transform
