#pragma once
// inotify backend of the file source: watches the directories the include globs live in and
// reports the paths that changed, so the tailer wakes at once instead of waiting for its next
// re-stat. inotify drops events (queue overflow) and cannot see network filesystems: the
// periodic re-stat (scan_interval) stays the source of truth, and `poll_only` disables this.
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/redirect_error.hpp>

#include "agent/core/asio.h"
#include "agent/observe/metrics.h"

namespace logship {

class InotifyWatcher {
 public:
  /// What happened to a path in a watched directory.
  enum class Change { kModified, kCreated, kMoved, kDeleted, kRescan };
  /// `on_change(kind, path, moved_from)`: kMoved carries the old path (paired by cookie);
  /// kDeleted: the name was unlinked; kRescan (queue overflow, a watch removed) has no path.
  using Callback = std::function<void(Change, std::string_view, std::string_view)>;
  InotifyWatcher(Executor ex, ComponentMetrics& m, Callback on_change);
  ~InotifyWatcher();
  /// False (after a warning that explains the limit to raise) when inotify is unavailable.
  bool open();
  /// Adds a directory (idempotent). Errors are logged once with the sysctl to raise.
  void watch_dir(const std::string& dir);
  /// Starts reading events (on the watcher's strand) until close().
  void start();
  /// Stops reading; safe from any thread (runs on the strand).
  void close();

 private:
  awaitable<void> run();
  void add_watch(const std::string& dir);
  Executor ex_;
  /// Every member below is touched only on this strand: the pool has several threads.
  asio::strand<Executor> strand_;
  ComponentMetrics& m_;
  Callback on_change_;
  std::map<uint32_t, std::string> moving_;  // MOVED_FROM cookie -> old path
  std::unique_ptr<asio::posix::stream_descriptor> sd_;
  std::map<int, std::string> dirs_;  // watch descriptor -> directory
  std::map<std::string, int> by_dir_;
};

}  // namespace logship
