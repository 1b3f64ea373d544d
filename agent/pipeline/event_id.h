#pragma once
// Stable event ids (`event_id: true` on the file and s3 sources): `logship_event_id`, an indexed
// field, is 32 lowercase hex digits of XXH3-128 over the source id and the event's position in
// its input (a file's identity and the offset where the event starts; an S3 object's
// `s3://bucket/key`, ETag and record index), so every resend of one event (after a crash, a
// retry or a replay) carries the same id and a search can drop duplicates
// (`| dedup logship_event_id`).
#include <cstdint>
#include <string>
#include <string_view>

namespace logship {

/// The id of the `seq`-th event that starts at `position` of input `identity` of source
/// `source_id`.
std::string event_id(std::string_view source_id, std::string_view identity, uint64_t position,
                     uint32_t seq);

/// `{"<key>":"<value>"}` merged into `fields` (a flat JSON object text, or empty); `key` and
/// `value` are already JSON-escaped.
std::string with_field(std::string_view fields, std::string_view key, std::string_view value);

/// `{"logship_event_id":"<id>"}`, merged into `fields` (a flat JSON object text, or empty).
std::string with_event_id(std::string_view fields, std::string_view id);

}  // namespace logship
