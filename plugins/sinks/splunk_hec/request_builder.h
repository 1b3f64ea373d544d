#pragma once
// HecRequestBuilder: cuts the incoming source batches into HEC requests (bounded by
// batch.max_bytes of uncompressed body and batch.max_events), takes each source batch's
// acknowledgement obligation into the request(s) that carry its events, and compresses the body.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <libdeflate.h>

#include "agent/pipeline/event.h"
#include "plugins/sinks/splunk_hec/config.h"
#include "plugins/sinks/splunk_hec/encoder.h"

namespace logship {

/// Events [begin, end) of one source batch and the obligation to report their status.
struct HecRequestPart {
  BatchPtr batch;
  uint32_t begin = 0;
  uint32_t end = 0;
  AckHandle ack;
};

/// One HEC POST: the body as sent and what it carries.
struct HecRequest {
  std::string body;  ///< compressed when `gzip`
  bool gzip = false;
  std::vector<HecRequestPart> parts;
  size_t events = 0;
  size_t event_bytes = 0;         ///< event text bytes (sent_bytes metric)
  size_t uncompressed_bytes = 0;  ///< body size before compression
  /// raw target: the metadata shared by every event of the request (query parameters).
  std::string host, source, sourcetype, index;

  /// Reports `s` for every part (each obligation exactly once).
  void finish(DeliveryStatus s) {
    for (auto& p : parts) p.ack.finish(s);
  }
};

/// The parts of a request cut at event positions i <= j (0-based over the request's events):
/// `head` = [0, i), `mid` = [i, j), `tail` = [j, events). Each non-empty range gets its own share
/// of the parts' acknowledgements, so each can report its own status.
struct HecRequestSplit {
  std::vector<HecRequestPart> head, mid, tail;
};
HecRequestSplit split_request(HecRequest&& req, size_t i, size_t j);
/// Events and event-text bytes in `parts`.
size_t count_events(const std::vector<HecRequestPart>& parts);
size_t count_event_bytes(const std::vector<HecRequestPart>& parts);
/// Reports `s` for every part.
void finish_parts(std::vector<HecRequestPart>& parts, DeliveryStatus s);

class HecRequestBuilder {
 public:
  explicit HecRequestBuilder(const HecSinkConfig& cfg);
  ~HecRequestBuilder();
  HecRequestBuilder(const HecRequestBuilder&) = delete;
  HecRequestBuilder& operator=(const HecRequestBuilder&) = delete;

  /// Adds every event of `ref`; requests that became full are appended to `ready`. A batch split
  /// over several requests gives each part its own share of the acknowledgement. Returns the
  /// number of invalid UTF-8 sequences replaced.
  size_t add(BatchRef ref, std::vector<HecRequest>& ready);
  /// Adds events [begin, end) of `batch` with the obligation `ack` (same cutting as add()).
  size_t add_range(const BatchPtr& batch, uint32_t begin, uint32_t end, AckHandle ack,
                   std::vector<HecRequest>& ready);
  /// Closes the request being built (if any) into `ready`.
  void flush(std::vector<HecRequest>& ready);
  /// Re-encodes `parts` into new requests appended to `ready` (the builder must be empty).
  void rebuild(std::vector<HecRequestPart>&& parts, std::vector<HecRequest>& ready);
  bool empty() const { return cur_.events == 0; }

 private:
  void close_part(const BatchPtr& batch, uint32_t begin, uint32_t end, AckHandle ack);
  void finish_current(std::vector<HecRequest>& ready);
  void start_request();

  HecEncoder encoder_;
  uint64_t max_bytes_;
  uint64_t max_events_;
  bool gzip_;
  libdeflate_compressor* compressor_ = nullptr;
  HecRequest cur_;
};

}  // namespace logship
