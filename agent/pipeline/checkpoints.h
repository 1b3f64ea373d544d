#pragma once
// Per-component state in <data_dir>/checkpoints/<id>.json, written atomically (write
// <id>.json.new, fsync, rename, fsync dir). Writes are coalesced: update() only records the
// latest state; the flusher writes dirty states at most every `interval` (default 100 ms).
// A crash therefore re-sends at most what was acknowledged in the last interval plus what was in
// flight (DESIGN.md, at-least-once).
#include <chrono>
#include <functional>
#include <map>
#include <set>
#include <mutex>
#include <string>

#include "agent/core/asio.h"
#include "agent/observe/metrics.h"
#include "agent/pipeline/lifecycle.h"

namespace logship {

class CheckpointStore {
 public:
  explicit CheckpointStore(std::string data_dir,
                           std::chrono::milliseconds interval = std::chrono::milliseconds(100));
  /// The last persisted state of `id`, "" when none. Prefers a complete `.new` file left by a
  /// crash between write and rename.
  std::string load(const std::string& id);
  /// Records the newest state of `id`; persisted by the flusher.
  void update(const std::string& id, std::string state);
  /// For large states: the flusher calls `provider` (from its own thread; it must lock what it
  /// reads) when `id` was marked dirty, at most once per interval, instead of the source
  /// serialising on every change.
  void set_provider(const std::string& id, std::function<std::string()> provider);
  void mark_dirty(const std::string& id);
  /// Flusher loop; returns after a final flush once `lc` stops and `drained` is set.
  awaitable<void> run(Lifecycle& lc);
  /// Writes every dirty state now. Returns false if any write failed (logged, counted, retried
  /// on the next flush).
  bool flush_all();
  /// True while the last write of any component failed (sources pause reading).
  bool failing() const;

 private:
  bool write_one(const std::string& id, const std::string& state);
  std::string dir_;
  std::chrono::milliseconds interval_;
  mutable std::mutex mu_;
  std::mutex flush_mu_;  ///< one flush at a time (the loop's, on the blocking pool, and the final one)
  std::map<std::string, std::string> dirty_;
  std::map<std::string, std::function<std::string()>> providers_;
  std::set<std::string> dirty_providers_;
  bool failing_ = false;
  Counter& writes_;
  Counter& errors_;
};

}  // namespace logship
