#pragma once
// Record parsers for S3 objects (and any other byte stream): push-based, fed with decompressed
// bytes in arbitrary pieces, they call `emit` once per complete record, in order. Memory is
// bounded by the largest record (max_record_bytes), never by the object: records that lie
// entirely inside a fed piece are emitted as views into it (zero-copy); only the incomplete
// record at the end of a piece is copied and carried over to the next feed().
//
// Formats:
//   cloudtrail  {"Records":[{...},{...}]}; one record per Records[] element, its JSON text as
//               written; time from eventTime; optional indexed fields (string values only).
//   vpcflow     VPC Flow Logs text: a header line naming the fields, then one record per line;
//               raw text or a JSON object with typed values; time from `start`.
//   ndjson      one JSON value per line (validated); time from a top-level "time" or
//               "timestamp" (epoch seconds or RFC 3339).
//   lines       one record per line, no validation, no time.
// Blank lines are skipped by the line formats (HEC rejects blank events).
//
// Errors throw FormatError (the object is failed; the parser must not be fed again).
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace logship::formats {

enum class Format : uint8_t { kCloudTrail, kVpcFlow, kNdjson, kLines };

/// "cloudtrail" | "vpcflow" | "ndjson" | "lines"; nullopt for anything else.
std::optional<Format> parse_format(std::string_view name);
std::string_view format_name(Format f);

/// Default of FormatOptions::max_record_bytes: 8 MiB.
inline constexpr size_t kDefaultMaxRecordBytes = size_t{8} << 20;

struct FormatOptions {
  Format format = Format::kLines;
  /// cloudtrail: record fields copied into the event's indexed fields when their value is a
  /// string; dotted paths reach into objects ("userIdentity.type"). Default: none.
  std::vector<std::string> indexed_fields;
  /// vpcflow: emit each row as a JSON object keyed by the header's field names (numbers for
  /// numeric fields, null for `-`) instead of the raw line. Default: false.
  bool vpc_emit_json = false;
  /// Largest record (line, or CloudTrail Records[] element) accepted; larger is a FormatError.
  /// Default: 8 MiB.
  size_t max_record_bytes = kDefaultMaxRecordBytes;
};

/// Malformed input; the message names the format and where (record/line number, byte offset
/// in the decompressed stream).
class FormatError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// One parsed record. The views are valid only during the emit call.
struct Record {
  std::string_view text;         ///< event text (see each format)
  int64_t time_ns = 0;           ///< event time, ns since the Unix epoch, when time_set
  bool time_set = false;         ///< false: the source applies its own time (e.g. now)
  bool json_value = false;       ///< text is a JSON object, to embed as is in HEC `event`
  std::string_view fields_json;  ///< flat JSON object of indexed fields; empty = none
};

using RecordSink = std::function<void(const Record&)>;

class RecordParser {
 public:
  virtual ~RecordParser();

  /// Feeds the next decompressed bytes; calls emit(record) for each complete record, in order.
  virtual void feed(std::string_view data, const RecordSink& emit) = 0;
  /// End of the object: emits what is left (a last line without newline) and throws FormatError
  /// when the data ends inside a record or the structure is incomplete.
  virtual void finish(const RecordSink& emit) = 0;

  /// Records emitted so far.
  uint64_t records() const { return records_; }
  /// Records emitted with time_set == false (missing/invalid eventTime, start, time...).
  uint64_t untimed_records() const { return untimed_; }
  /// vpcflow: rows with log-status NODATA / SKIPDATA (emitted too, and counted in records()).
  uint64_t nodata_rows() const { return nodata_; }
  uint64_t skipdata_rows() const { return skipdata_; }
  /// Decompressed bytes fed so far.
  uint64_t bytes_in() const { return bytes_in_; }

 protected:
  void emit_record(const RecordSink& emit, const Record& r) {
    ++records_;
    if (!r.time_set) ++untimed_;
    emit(r);
  }

  uint64_t records_ = 0;
  uint64_t untimed_ = 0;
  uint64_t nodata_ = 0;
  uint64_t skipdata_ = 0;
  uint64_t bytes_in_ = 0;
};

/// A parser for `opts.format`. Throws std::invalid_argument for unusable options (an empty
/// indexed field name, max_record_bytes == 0).
std::unique_ptr<RecordParser> make_parser(const FormatOptions& opts);

}  // namespace logship::formats
