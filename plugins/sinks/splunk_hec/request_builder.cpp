#include "plugins/sinks/splunk_hec/request_builder.h"

#include <algorithm>

namespace logship {

HecRequestBuilder::HecRequestBuilder(const HecSinkConfig& cfg)
    : encoder_(cfg),
      max_bytes_(cfg.batch_max_bytes),
      max_events_(cfg.batch_max_events),
      gzip_(cfg.compression == HecSinkConfig::Compression::kGzip) {
  if (gzip_) compressor_ = libdeflate_alloc_compressor(cfg.compression_level);
  start_request();
}

HecRequestBuilder::~HecRequestBuilder() {
  if (compressor_) libdeflate_free_compressor(compressor_);
}

void HecRequestBuilder::start_request() {
  cur_ = HecRequest{};
  // One allocation per request: the body grows to about max_bytes.
  cur_.body.reserve(static_cast<size_t>(std::min<uint64_t>(max_bytes_ + 4096, 64ull << 20)));
}

void HecRequestBuilder::close_part(const BatchPtr& batch, uint32_t begin, uint32_t end,
                                   AckHandle ack) {
  cur_.parts.push_back(HecRequestPart{batch, begin, end, std::move(ack)});
}

size_t HecRequestBuilder::add(BatchRef ref, std::vector<HecRequest>& ready) {
  if (!ref.batch || ref.batch->empty()) {
    ref.ack.finish(DeliveryStatus::kDelivered);  // nothing to deliver
    return 0;
  }
  uint32_t n = static_cast<uint32_t>(ref.batch->size());
  return add_range(ref.batch, 0, n, std::move(ref.ack), ready);
}

size_t HecRequestBuilder::add_range(const BatchPtr& batch, uint32_t first, uint32_t n,
                                    AckHandle ack, std::vector<HecRequest>& ready) {
  struct {
    const BatchPtr& batch;
    AckHandle ack;
  } ref{batch, std::move(ack)};
  const EventBatch& b = *ref.batch;
  const auto& events = b.events();
  size_t replaced = 0;
  uint32_t part_begin = first;
  // The part [part_begin, end) goes into the current request; the last part of the batch takes
  // the batch's own obligation, earlier ones a share of it.
  auto cut = [&](uint32_t end) {
    if (end > part_begin)
      close_part(ref.batch, part_begin, end, end == n ? std::move(ref.ack) : ref.ack.share());
    part_begin = end;
    finish_current(ready);
  };
  for (uint32_t i = first; i < n; ++i) {
    const Event& e = events[i];
    if (encoder_.raw()) {
      HecMetadata md = encoder_.metadata(b, e);
      if (cur_.events == 0 && i == part_begin) {
        cur_.host.assign(md.host);
        cur_.source.assign(md.source);
        cur_.sourcetype.assign(md.sourcetype);
        cur_.index.assign(md.index);
      } else if (md.host != cur_.host || md.source != cur_.source ||
                 md.sourcetype != cur_.sourcetype || md.index != cur_.index) {
        cut(i);  // raw requests carry one set of metadata
        cur_.host.assign(md.host);
        cur_.source.assign(md.source);
        cur_.sourcetype.assign(md.sourcetype);
        cur_.index.assign(md.index);
      }
    }
    size_t mark = cur_.body.size();
    size_t r = encoder_.encode(cur_.body, b, e);
    if (cur_.events > 0 && cur_.body.size() > max_bytes_) {
      cur_.body.resize(mark);  // does not fit: close this request, start the next with e
      std::string host = cur_.host, source = cur_.source, st = cur_.sourcetype, idx = cur_.index;
      cut(i);
      cur_.host = std::move(host);
      cur_.source = std::move(source);
      cur_.sourcetype = std::move(st);
      cur_.index = std::move(idx);
      r = encoder_.encode(cur_.body, b, e);
    }
    replaced += r;
    ++cur_.events;
    cur_.event_bytes += e.length;
    if (cur_.events >= max_events_) cut(i + 1);
  }
  if (part_begin < n) close_part(ref.batch, part_begin, n, std::move(ref.ack));
  if (ref.ack) ref.ack.finish(DeliveryStatus::kDelivered);  // neutral: every part has a share
  return replaced;
}

void HecRequestBuilder::rebuild(std::vector<HecRequestPart>&& parts,
                                std::vector<HecRequest>& ready) {
  for (auto& p : parts) add_range(p.batch, p.begin, p.end, std::move(p.ack), ready);
  parts.clear();
  flush(ready);
}

size_t count_events(const std::vector<HecRequestPart>& parts) {
  size_t n = 0;
  for (auto& p : parts) n += p.end - p.begin;
  return n;
}

size_t count_event_bytes(const std::vector<HecRequestPart>& parts) {
  size_t n = 0;
  for (auto& p : parts)
    for (uint32_t i = p.begin; i < p.end; ++i) n += p.batch->events()[i].length;
  return n;
}

void finish_parts(std::vector<HecRequestPart>& parts, DeliveryStatus s) {
  for (auto& p : parts) p.ack.finish(s);
}

HecRequestSplit split_request(HecRequest&& req, size_t i, size_t j) {
  HecRequestSplit out;
  size_t pos = 0;  // request-wide index of the part's first event
  for (auto& p : req.parts) {
    size_t count = p.end - p.begin;
    // Cut this part's [begin, end) at the request-wide marks i and j.
    auto local = [&](size_t mark) {
      return static_cast<uint32_t>(p.begin + std::min(count, mark > pos ? mark - pos : 0));
    };
    uint32_t a = local(i), b = local(j);
    auto take = [&](std::vector<HecRequestPart>& into, uint32_t from, uint32_t to) {
      if (to > from) into.push_back(HecRequestPart{p.batch, from, to, p.ack.share()});
    };
    take(out.head, p.begin, a);
    take(out.mid, a, b);
    take(out.tail, b, p.end);
    p.ack.finish(DeliveryStatus::kDelivered);  // neutral: every range holds a share
    pos += count;
  }
  req.parts.clear();
  return out;
}

void HecRequestBuilder::flush(std::vector<HecRequest>& ready) {
  if (cur_.events > 0) finish_current(ready);
}

void HecRequestBuilder::finish_current(std::vector<HecRequest>& ready) {
  if (cur_.events == 0) return;
  cur_.uncompressed_bytes = cur_.body.size();
  if (compressor_) {
    std::string z;
    z.resize(libdeflate_gzip_compress_bound(compressor_, cur_.body.size()));
    size_t zn = libdeflate_gzip_compress(compressor_, cur_.body.data(), cur_.body.size(), z.data(),
                                         z.size());
    if (zn > 0) {  // 0: did not fit the bound (cannot happen); send uncompressed
      z.resize(zn);
      cur_.body = std::move(z);
      cur_.gzip = true;
    }
  }
  ready.push_back(std::move(cur_));
  start_request();
}

}  // namespace logship
