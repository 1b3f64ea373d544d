#include "plugins/sources/file/decode_multiline.h"

#include "agent/pipeline/event.h"

namespace logship::decode {

namespace {
/// Buffers that grew past this are released after their event is emitted (memory bound with
/// many files).
constexpr size_t kKeepCapacity = 256 << 10;
}  // namespace

std::shared_ptr<const MultilineRules> MultilineRules::compile(const FileDecodeConfig& cfg,
                                                              std::string* error) {
  auto r = std::make_shared<MultilineRules>();
  RE2::Options opts;
  opts.set_log_errors(false);
  r->start = std::make_unique<RE2>(cfg.start_pattern, opts);
  r->condition = std::make_unique<RE2>(cfg.condition_pattern, opts);
  for (const RE2* re : {r->start.get(), r->condition.get()}) {
    if (!re->ok()) {
      if (error) *error = re->error();
      return nullptr;
    }
  }
  if (cfg.mode == "continue_past") {
    r->mode = Mode::kContinuePast;
  } else if (cfg.mode == "halt_before") {
    r->mode = Mode::kHaltBefore;
  } else if (cfg.mode == "halt_with") {
    r->mode = Mode::kHaltWith;
  } else {
    r->mode = Mode::kContinueThrough;
  }
  r->timeout = cfg.multiline_timeout;
  r->max_lines = cfg.multiline_max_lines > 0 ? cfg.multiline_max_lines : 1;
  r->max_bytes = cfg.multiline_max_bytes > 0 ? cfg.multiline_max_bytes : 1;
  return r;
}

size_t utf8_cut(std::string_view s, size_t room) {
  if (room >= s.size()) return s.size();
  size_t n = room;
  while (n > 0 && room - n < 3 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
  if ((static_cast<unsigned char>(s[n]) & 0xC0) == 0x80 || n == 0) return room;
  return n;
}

void MultilineAggregator::begin(int64_t time_ns, uint64_t start_offset, uint8_t flags) {
  active_ = true;
  buf_.clear();
  lines_ = 0;
  flags_ = flags;
  time_ns_ = time_ns;
  start_offset_ = start_offset;
  end_pending_ = false;
}

void MultilineAggregator::emit(EventEmitter& out) {
  out.emit(buf_, time_ns_, flags_);
  active_ = false;
  end_pending_ = false;
  buf_.clear();
  lines_ = 0;
  if (buf_.capacity() > kKeepCapacity) std::string().swap(buf_);
}

void MultilineAggregator::cut(int64_t time_ns, uint64_t start_offset, EventEmitter& out) {
  flags_ |= Event::kTruncated;
  emit(out);
  begin(time_ns, start_offset, Event::kTruncated);
}

void MultilineAggregator::add(std::string_view piece, bool new_line, uint8_t flags, int64_t time_ns,
                              uint64_t start_offset, EventEmitter& out) {
  const MultilineRules& r = *rules_;
  bool nonempty = lines_ > 0 || !buf_.empty();
  if (new_line && lines_ >= r.max_lines) {
    cut(time_ns, start_offset, out);
    nonempty = false;
  }
  size_t sep = new_line && nonempty ? 1 : 0;
  if (nonempty && buf_.size() + sep + piece.size() > r.max_bytes) {
    cut(time_ns, start_offset, out);
    sep = 0;
  }
  flags_ |= flags;
  while (buf_.size() + sep + piece.size() > r.max_bytes) {  // a single piece over max_bytes
    size_t n = utf8_cut(piece, r.max_bytes - buf_.size() - sep);
    if (sep) buf_.push_back('\n');
    sep = 0;
    buf_.append(piece.substr(0, n));
    piece.remove_prefix(n);
    cut(time_ns, start_offset, out);
    flags_ |= flags;
  }
  if (sep) buf_.push_back('\n');
  buf_.append(piece);
  if (new_line) ++lines_;
}

void MultilineAggregator::vacant(std::string_view line, PartTracker::Part part, uint8_t flags,
                                 int64_t time_ns, uint64_t start_offset, EventEmitter& out) {
  if (RE2::PartialMatch(line, *rules_->start)) {
    begin(time_ns, start_offset, 0);
    add(line, true, flags, time_ns, start_offset, out);
    last_part_in_event_ = true;
  } else {
    out.emit(line, time_ns, flags);
    last_part_in_event_ = false;
  }
  (void)part;
}

void MultilineAggregator::push(std::string_view line, PartTracker::Part part, uint8_t flags,
                               int64_t time_ns, uint64_t start_offset,
                               std::chrono::steady_clock::time_point now, EventEmitter& out) {
  if (part.continuation) {
    if (active_ && last_part_in_event_) {
      last_ = now;
      add(line, false, flags, time_ns, start_offset, out);
      if (!part.open && end_pending_) emit(out);
    } else {
      out.emit(line, time_ns, flags);
    }
    return;
  }
  if (end_pending_) emit(out);  // the long line that ended the event never completed
  if (!active_) {
    vacant(line, part, flags, time_ns, start_offset, out);
    if (active_) last_ = now;
    return;
  }
  bool matched = RE2::PartialMatch(line, *rules_->condition);
  enum { kContinue, kEndInclude, kEndExclude } decision = kContinue;
  switch (rules_->mode) {
    case MultilineRules::Mode::kContinueThrough:
      decision = matched ? kContinue : kEndExclude;
      break;
    case MultilineRules::Mode::kContinuePast:
      decision = matched ? kContinue : kEndInclude;
      break;
    case MultilineRules::Mode::kHaltBefore:
      decision = matched ? kEndExclude : kContinue;
      break;
    case MultilineRules::Mode::kHaltWith:
      decision = matched ? kEndInclude : kContinue;
      break;
  }
  switch (decision) {
    case kContinue:
      last_ = now;
      add(line, true, flags, time_ns, start_offset, out);
      last_part_in_event_ = true;
      break;
    case kEndInclude:
      last_ = now;
      add(line, true, flags, time_ns, start_offset, out);
      if (part.open) {
        end_pending_ = true;
        last_part_in_event_ = true;
      } else {
        emit(out);
        last_part_in_event_ = false;
      }
      break;
    case kEndExclude:
      emit(out);
      vacant(line, part, flags, time_ns, start_offset, out);
      if (active_) last_ = now;
      break;
  }
}

void MultilineAggregator::flush(std::chrono::steady_clock::time_point now, bool force,
                                EventEmitter& out) {
  if (!active_) return;
  if (force || now - last_ >= rules_->timeout) {
    emit(out);
    last_part_in_event_ = false;
  }
}

}  // namespace logship::decode
