#pragma once
// Progress state of the `s3` source, persisted as its checkpoint.
//
// Keys sort by account, region and date, and AWS delivers files minutes late, so a single
// lexicographic watermark would miss late objects. Instead the state keeps, for every object
// last modified within `lookback`, that it was handled (a 64-bit hash of key + ETag, so a busy
// bucket costs 16 bytes per object in memory). Objects older than the window are forgotten; the
// lister ignores them too, so nothing is read twice. Objects in progress keep their key, ETag and
// the number of records whose delivery is acknowledged (a restart resumes after them); failed
// objects keep their key and the reason (a final status, never retried for the same ETag).
//
// Thread-safe: acknowledgements arrive on the sinks' threads, the checkpoint flusher serialises
// from its own.
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include "plugins/sources/s3/listing.h"

namespace logship::s3 {

class State {
 public:
  enum class Status : uint8_t { kDone = 1, kFailed = 2 };
  struct InProgress {
    std::string etag;
    int64_t last_modified_ns = 0;
    uint64_t records_done = 0;  ///< acknowledged records, a prefix of the object's records
  };
  struct Failed {
    std::string etag;
    int64_t last_modified_ns = 0;
    std::string reason;
    uint64_t records_done = 0;  ///< acknowledged before it failed (a replay resumed reads on from there)
  };

  /// True if this version of the object is done or failed.
  bool finished(const ObjectInfo& o) const;
  /// Done or failed (this version), nullopt when neither.
  std::optional<Status> status(const ObjectInfo& o) const;
  /// Records already delivered of an object in progress, or of a failed one (0 when new).
  uint64_t resume_point(const ObjectInfo& o) const;

  void progress(const ObjectInfo& o, uint64_t records_done);
  void done(const ObjectInfo& o);
  void failed(const ObjectInfo& o, const std::string& reason);

  /// Forgets objects last modified before `cutoff_ns`; returns how many.
  size_t prune(int64_t cutoff_ns);
  size_t size() const;
  size_t failed_count() const;

  std::string serialize() const;
  /// Loads a serialised state; false (state left empty) when it cannot be read.
  bool load(std::string_view json, std::string* error);

  static uint64_t hash(std::string_view key, std::string_view etag);

 private:
  struct Seen {
    int64_t last_modified_s;
    Status status;
  };
  mutable std::mutex mu_;
  std::unordered_map<uint64_t, Seen> seen_;
  std::map<std::string, InProgress> in_progress_;
  std::map<std::string, Failed> failed_;
};

}  // namespace logship::s3
