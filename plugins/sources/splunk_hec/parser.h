#pragma once
// HEC request bodies -> EventBatch, with no I/O and no Asio: the /event envelope parser
// (HEC.md §1.3, §1.4), /raw line splitting (§1.5), gzip inflation with a size cap (§1.6), the
// /ack query body (§2.1) and the reply JSON (§1.7). Unit-tested without sockets.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "agent/pipeline/event.h"

namespace logship::hec_receiver {

/// HEC reply codes the receiver produces (HEC.md §1.7). The HTTP status is hec_http_status().
enum class HecCode : int {
  kSuccess = 0,
  kTokenRequired = 2,
  kInvalidAuthorization = 3,
  kInvalidToken = 4,
  kNoData = 5,
  kInvalidDataFormat = 6,
  kServerBusy = 9,
  kChannelMissing = 10,
  kInvalidChannel = 11,
  kEventFieldRequired = 12,
  kEventFieldBlank = 13,
  kAckDisabled = 14,
  kIndexedFields = 15,
  kQueryStringAuth = 16,
  kHealthy = 17,
  kShuttingDown = 23,
  kAckChannelAtCapacity = 27,
};

/// Splunk's reply text for `code` ("Success", "Invalid token", ...).
std::string_view hec_text(HecCode code);
/// The HTTP status Splunk pairs with `code` (200, 400, 401, 403, 429, 503).
int hec_http_status(HecCode code);
/// A metric label for a rejected request (`invalid_token`, `invalid_data_format`, ...).
std::string_view hec_error_name(HecCode code);

/// `{"text":"...","code":N}` plus `"invalid-event-number":i` when i >= 0 and `"ackId":N`.
std::string hec_reply_json(HecCode code, int64_t invalid_event_number = -1,
                           std::optional<uint64_t> ack_id = std::nullopt);
/// A reply that is not an HEC code (404, 405, 413, 415, ...): `{"text":"...","code":N}`.
std::string hec_plain_reply_json(std::string_view text, int code);
/// `{"acks":{"0":true,"1":false}}` in the order given.
std::string hec_ack_reply_json(const std::vector<std::pair<uint64_t, bool>>& acks);

/// Metadata for events that carry none of their own (request query parameters, then the
/// source's configuration; `host` finally falls back to the client address).
struct HecDefaults {
  std::string_view host;
  std::string_view source;
  std::string_view sourcetype;
  std::string_view index;
};

/// Outcome of parsing one request body.
struct HecParseResult {
  HecCode code = HecCode::kSuccess;
  /// 0-based index of the first rejected event (the `invalid-event-number` reply key); -1 when
  /// the whole body was accepted or the error is not about one event (kNoData).
  int64_t invalid_event_number = -1;
  /// Events appended to the batch: all of them on success, those before the bad one otherwise.
  size_t events = 0;
  /// What was wrong, for logs (never contains event data).
  std::string detail;
};

/// Most distinct metadata strings (host, source, sourcetype, index values) one request may
/// carry: the batch's metadata table (16-bit ids, 0 = unset). The event that would add one more
/// is rejected with kInvalidDataFormat. Interning is a hash lookup, so the cost stays linear.
inline constexpr size_t kMaxDistinctMetadata = 65534;

/// Parses concatenated JSON envelopes (`{"event":..}{"event":..}`, whitespace allowed between
/// them) into `out`. Events before the first bad one stay in `out`, like Splunk indexes them.
/// `body` gets simdjson padding appended for the duration of the call (its size is restored).
/// `now_ns` is the time of events without `time`.
HecParseResult parse_event_body(std::string& body, const HecDefaults& defaults, int64_t now_ns,
                                EventBatch& out);

/// Splits a /raw body into one event per line (`\n`, a trailing `\r` stripped, empty lines
/// skipped), all stamped `now_ns` and carrying `defaults`. No line at all → kNoData.
HecParseResult parse_raw_body(std::string_view body, const HecDefaults& defaults, int64_t now_ns,
                              EventBatch& out);

/// Parses an HEC `time` value given as text (`1433188255.500`, `1433188255`, `1.4e9`):
/// seconds since the epoch, non-negative. Returns nanoseconds or nullopt when malformed.
std::optional<int64_t> parse_hec_time(std::string_view text);

enum class InflateStatus { kOk, kTooLarge, kCorrupt };
/// Inflates a gzip body (several members allowed) into `out`, never holding more than
/// `max_out` + 1 decompressed bytes: larger → kTooLarge (a gzip bomb allocates no more).
InflateStatus gunzip(std::string_view in, size_t max_out, std::string& out);

/// True for a GUID channel id: 8-4-4-4-12 hexadecimal digits.
bool is_guid(std::string_view s);

/// Parses `{"acks":[0,1,2]}`; false when malformed (not an object, no `acks` array, or an id
/// that is not a non-negative integer). `body` gets padding appended during the call.
bool parse_ack_query(std::string& body, std::vector<uint64_t>& ids);

/// Value of `key` in a URL query string (`a=1&b=x%20y`), percent- and `+`-decoded; nullopt when
/// absent.
std::optional<std::string> query_param(std::string_view query, std::string_view key);

}  // namespace logship::hec_receiver
