#pragma once
// The runtime: builds the topology from a Config (no I/O, so `check` can use it), then runs it on
// one io_context and a thread pool, handling signals, the data_dir lock, the admin endpoint and
// the drain-on-shutdown sequence.
#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "agent/config/config.h"

namespace logship {
namespace replay {
struct Context;
}

/// A command line that cannot be carried out (exit code 2), e.g. an unknown source id.
class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// `logship replay`: the one source to drive and where the run keeps its state.
struct ReplaySpec {
  std::shared_ptr<replay::Context> ctx;
  std::string source_id;
  std::vector<std::string> sinks;  ///< --sink: only these (empty = every sink the source feeds)
  std::string run_dir;             ///< data_dir/replay/<run id>: checkpoints, spool, dead letters
};

/// Worker threads: the CPUs allowed by the cgroup quota and the affinity mask (at least 1).
int default_thread_count();

class Runtime {
 public:
  /// Builds every component; throws ConfigError on a component's bad configuration.
  explicit Runtime(Config cfg);
  /// Replay mode: every component is built (and checked), then only `spec.source_id` and what it
  /// feeds are kept; throws UsageError when the source or a --sink is unknown or unsuitable.
  Runtime(Config cfg, ReplaySpec spec);
  ~Runtime();
  /// Human-readable topology: each component, its type and its inputs.
  std::string describe() const;
  /// Runs until SIGTERM/SIGINT (drain within `drain_timeout`) or a fatal error.
  /// Returns the process exit code: 0 ok, 1 runtime failure, 2 data_dir locked.
  int run(std::chrono::milliseconds drain_timeout = std::chrono::seconds(10));
  /// `logship dead-letters`: prints sink `sink_id`'s dead letters, decrypted. Exit code: 0, 1
  /// (unreadable block, keys unavailable), 2 (no such sink, or it keeps no dead letters).
  int dead_letters(const std::string& sink_id, bool follow);
  /// Replay mode: dead letters written by the kept sinks so far.
  uint64_t dead_lettered() const;
  /// Replay mode: the kept sinks' ids.
  std::vector<std::string> sink_ids() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace logship
