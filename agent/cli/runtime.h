#pragma once
// The runtime: builds the topology from a Config (no I/O, so `check` can use it), then runs it on
// one io_context and a thread pool, handling signals, the data_dir lock, the admin endpoint and
// the drain-on-shutdown sequence.
#include <chrono>
#include <memory>
#include <string>

#include "agent/config/config.h"

namespace logship {

/// Worker threads: the CPUs allowed by the cgroup quota and the affinity mask (at least 1).
int default_thread_count();

class Runtime {
 public:
  /// Builds every component; throws ConfigError on a component's bad configuration.
  explicit Runtime(Config cfg);
  ~Runtime();
  /// Human-readable topology: each component, its type and its inputs.
  std::string describe() const;
  /// Runs until SIGTERM/SIGINT (drain within `drain_timeout`) or a fatal error.
  /// Returns the process exit code: 0 ok, 1 runtime failure, 2 data_dir locked.
  int run(std::chrono::milliseconds drain_timeout = std::chrono::seconds(10));
  /// `logship dead-letters`: prints sink `sink_id`'s dead letters, decrypted. Exit code: 0, 1
  /// (unreadable block, keys unavailable), 2 (no such sink, or it keeps no dead letters).
  int dead_letters(const std::string& sink_id, bool follow);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace logship
