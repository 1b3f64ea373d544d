#pragma once
// HecDeadLetter: events HEC refused for good, one JSON line each, appended to
// dead_letter.path (mode 0600, fdatasync'd: a dead-lettered event is final and its checkpoint
// moves on), rotated to `<path>.1` when the next write would pass dead_letter.max_bytes.
// With the top-level `encryption`, each write is one sealed block instead (agent/crypto/at_rest.h,
// kind kDeadLetter: zstd + AES-256-GCM): nothing of an event is in clear text on disk, and
// `logship dead-letters` prints the lines back.
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "agent/crypto/at_rest.h"
#include "plugins/sinks/splunk_hec/encoder.h"
#include "plugins/sinks/splunk_hec/request_builder.h"

namespace logship {

class HecDeadLetter {
 public:
  HecDeadLetter(std::string path, uint64_t max_bytes,
                std::shared_ptr<const crypto::KeyRing> ring = nullptr)
      : path_(std::move(path)), max_(max_bytes), ring_(std::move(ring)) {}
  ~HecDeadLetter();
  HecDeadLetter(const HecDeadLetter&) = delete;
  HecDeadLetter& operator=(const HecDeadLetter&) = delete;

  /// Appends `lines` (complete lines). Returns "" or an error message. Thread-safe.
  std::string write(std::string_view lines);
  const std::string& path() const { return path_; }

  /// Appends one line per event of `req`:
  /// {"event":…,"host":…,"source":…,"sourcetype":…,"index":…,"time":…,"endpoint":…,
  ///  "status":N,"error":"…"} (metadata omitted when empty, time when unknown).
  static void format(std::string& out, HecEncoder& enc, const HecRequest& req,
                     std::string_view endpoint, long status, std::string_view error);

 private:
  std::string open_locked();
  std::string path_;
  uint64_t max_;
  std::shared_ptr<const crypto::KeyRing> ring_;
  std::unique_ptr<crypto::BlockSealer> sealer_;
  std::string sealed_;
  std::mutex mu_;
  int fd_ = -1;
  uint64_t size_ = 0;
};

}  // namespace logship
