#pragma once
// DiskBuffer: a sink's encrypted, self-repairing disk buffer (CONFIG.md `buffer.type: disk`).
//
//   sources ──▶ in (memory channel) ──▶ writer ──▶ segments on disk ──▶ reader ──▶ out ──▶ sink
//
// - The writer appends one block per batch (agent/crypto/at_rest.h: zstd, then AES-256-GCM with
//   the header as associated data) to the current segment `<path>/<16 hex>.seg`, and finishes the
//   sources' acknowledgements (kDelivered) once an fdatasync covered the block (`buffer.sync`).
// - The reader streams blocks back (one at a time: memory does not grow with the backlog) into
//   the sink's input channel. A block is released once the sink reported a final status for it;
//   the read position (the first block not released) is persisted in `<path>/index`, an
//   HMAC-authenticated file replaced atomically, at most once per sync interval.
// - Repair at open: a torn last block is cut; blocks that fail authentication are skipped at
//   read time, named (segment, offset) and counted; a missing or damaged index is rebuilt from
//   the segments (delivery restarts at the oldest segment on disk: duplicates, never loss).
//   Deleting a drained segment and advancing the index are safe in either order: a segment
//   below the index's position is deleted at open, an index naming a deleted segment moves on
//   to the next one.
// - A block under a key the ring does not hold stops the open with an error naming the key id;
//   nothing on disk is changed before that check.
// - Limits: max_bytes (bytes of segment files) → the writer stops taking batches (backpressure)
//   or drops them (drop_newest, counted); max_age → blocks older than that are deleted unsent,
//   counted and logged; a failed write (ENOSPC, EIO) is cut back, reported once and retried every
//   second while the writer holds its batch (backpressure).
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "agent/core/asio.h"
#include "agent/crypto/at_rest.h"
#include "agent/observe/metrics.h"
#include "agent/pipeline/component.h"

namespace logship {

struct DiskBufferConfig {
  std::string path;
  uint64_t max_bytes = 1ull << 30;
  uint64_t segment_bytes = 64ull << 20;
  bool sync_always = false;
  std::chrono::milliseconds sync_interval{100};
  std::optional<std::chrono::nanoseconds> max_age;
  bool zstd = true;
  bool drop_newest = false;
};

/// A stored batch: its events' parts, written as a block payload (exposed for tests).
void encode_batch(const EventBatch& b, std::string& out);
/// The part of encode_batch before the arena (the arena follows it).
void encode_batch_head(const EventBatch& b, std::string& out);
/// Rebuilds a batch; false when the payload is not a well-formed batch.
bool decode_batch(std::string_view in, EventBatch& out);

class DiskBuffer {
 public:
  DiskBuffer(DiskBufferConfig cfg, std::shared_ptr<const crypto::KeyRing> ring, std::string sink_id,
             std::string sink_type);
  ~DiskBuffer();
  DiskBuffer(const DiskBuffer&) = delete;
  DiskBuffer& operator=(const DiskBuffer&) = delete;

  /// Recovers the buffer (scan, checks, repairs) and opens a new segment for writing. Throws
  /// std::runtime_error with an operator-facing message (a missing key, an unusable path).
  void open();
  /// Writer: consumes `in` until it is closed and drained (or `abort`), then closes `out`.
  awaitable<void> run_writer(BatchChannel& in, BatchChannel& out, Lifecycle& abort);
  /// Reader: feeds `out` until the writer is done (or `out` is closed or aborted).
  awaitable<void> run_reader(BatchChannel& out);
  /// After both coroutines ended: the last index write; closes files.
  void close();

  /// False while writes fail (disk full): /ready.
  bool accepting() const { return accepting_.load(std::memory_order_relaxed); }
  std::string describe() const;
  const DiskBufferConfig& config() const { return cfg_; }

  /// Undelivered bytes / events (what the gauges show); for tests.
  uint64_t pending_bytes() const;
  uint64_t pending_events() const;

 private:
  struct Segment {
    uint64_t size = 0;  ///< bytes of whole blocks (the write segment: appended so far)
    uint64_t events = 0, blocks = 0;
    uint64_t done_events = 0, done_bytes = 0;  ///< released (delivered, skipped, expired)
    int64_t first_time = 0, last_time = 0;     ///< write times of its first and last block
    uint64_t released_blocks = 0;
    bool expired = false;  ///< max_age passed: its unread blocks are skipped
  };
  struct Pos {
    uint64_t seg = 0, off = 0;
    auto operator<=>(const Pos&) const = default;
  };
  struct InFlight {
    uint32_t events = 0;
    uint64_t bytes = 0;
    int64_t time = 0;
    bool done = false;
  };
  enum class Append { kOk, kFull, kFailed };
  struct ReadResult {
    std::optional<EventBatch> batch;
    Pos pos;
  };

  std::string seg_path(uint64_t id) const;
  Append append(const EventBatch& b);
  bool sync_locked_fd(std::vector<AckHandle>& unsynced);
  void housekeeping();
  void write_index();
  bool roll();
  /// Reads the next block at the cursor; nullopt when caught up.
  std::optional<ReadResult> read_next();
  void release(Pos p, DeliveryStatus s);
  void advance_frontier_locked();
  void skip_locked(uint64_t seg, uint64_t from, uint64_t to, uint64_t events);
  void update_gauges_locked();

  DiskBufferConfig cfg_;
  std::shared_ptr<const crypto::KeyRing> ring_;
  std::string id_;
  Labels labels_;
  ComponentMetrics m_;
  Counter &blocks_written_, &blocks_read_, &corrupt_, &expired_blocks_, &expired_events_,
      &torn_cut_, &bytes_written_;
  Gauge &g_bytes_, &g_events_, &g_age_, &g_disk_bytes_;
  Histogram& sync_seconds_;
  std::string fault_file_;  ///< LOGSHIP_FAULT_ENOSPC_FILE: writes fail with ENOSPC while it exists

  mutable std::mutex mu_;
  std::map<uint64_t, Segment> segs_;
  uint64_t disk_bytes_ = 0;
  uint64_t wseg_ = 0;  ///< the segment being written
  Pos cursor_;         ///< next block the reader reads
  uint64_t cursor_gen_ = 0;
  Pos frontier_;  ///< first block not released (persisted)
  Pos index_written_{~0ull, ~0ull};
  std::map<Pos, InFlight> inflight_;
  bool writer_done_ = false;
  WaitQueue data_wq_;  ///< the reader waits here for new blocks

  // Writer-only state.
  int wfd_ = -1;
  int dir_fd_ = -1;
  uint64_t next_seq_ = 1;
  uint64_t index_seq_written_ = 0;
  std::unique_ptr<crypto::BlockSealer> sealer_;
  std::string plain_, block_;
  bool failing_ = false;
  std::string fail_msg_;
  std::atomic<bool> accepting_{true};
  bool full_logged_ = false;
  // Reader-only state.
  int rfd_ = -1;
  uint64_t rfd_seg_ = ~0ull;
  std::unique_ptr<crypto::BlockOpener> opener_;
  std::string rbuf_, rplain_;
};

}  // namespace logship
