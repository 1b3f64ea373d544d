#pragma once
// The `file` source (walking-skeleton level): glob discovery, tailing with a per-file read
// budget, line splitting, and per-file offsets checkpointed only past acknowledged batches.
// Rotation by rename and truncation are handled simply here; file identity, multiline and
// codecs come with the file-source issue.
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "agent/observe/metrics.h"
#include "agent/pipeline/ack_window.h"
#include "agent/pipeline/component.h"
#include "plugins/sources/file/config.h"

namespace logship {

class FileSource : public Source {
 public:
  FileSource(FileSourceConfig cfg, ComponentContext ctx);
  ~FileSource() override;
  awaitable<void> run(Fanout& out) override;

 private:
  struct Tailed;
  struct Saved {
    std::string path;
    uint64_t dev = 0, ino = 0, offset = 0;
    int64_t closed_at = 0;  // unix seconds when released; 0 while open
  };
  void restore();
  void scan(bool startup);
  /// Reads up to the per-file budget; returns bytes read.
  awaitable<size_t> read_some(Tailed& f, Fanout& out, bool& stopped);
  void check_rotation(Tailed& f);
  void save(uint64_t key, const Saved& s);
  void forget(uint64_t key);
  std::string serialize_locked() const;
  awaitable<bool> emit(Tailed& f, Fanout& out, EventBatch&& batch, uint64_t end_offset);

  FileSourceConfig cfg_;
  ComponentContext ctx_;
  ComponentMetrics m_;
  Counter& truncations_;
  Gauge& open_files_;
  std::map<uint64_t, std::unique_ptr<Tailed>> files_;  // by identity key
  std::vector<std::unique_ptr<Tailed>> released_;      // closed, waiting for their acks
  std::map<uint64_t, Saved> restored_;                 // from the checkpoint, by identity key
  mutable std::mutex state_mu_;
  std::map<uint64_t, Saved> state_;  // what the checkpoint holds (committed offsets)
  std::string buf_;
};

}  // namespace logship
