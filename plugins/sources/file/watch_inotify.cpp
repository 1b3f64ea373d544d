#include "plugins/sources/file/watch_inotify.h"

#include <sys/inotify.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "agent/core/log.h"

namespace logship {

InotifyWatcher::InotifyWatcher(Executor ex, ComponentMetrics& m, Callback on_change)
    : ex_(ex), strand_(asio::make_strand(ex)), m_(m), on_change_(std::move(on_change)) {}

// Destroyed after the io_context stopped running: nothing else touches the members then.
InotifyWatcher::~InotifyWatcher() {
  if (sd_) {
    boost::system::error_code ec;
    sd_->close(ec);
  }
}

bool InotifyWatcher::open() {
  int fd = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    report_error(m_, "watch", "inotify_init",
                 fmt::format("inotify unavailable ({}){}; falling back to polling every scan_interval",
                             strerror(err),
                             err == EMFILE ? ": raise fs.inotify.max_user_instances "
                                             "(sysctl -w fs.inotify.max_user_instances=1024)"
                                           : ""));
    return false;
  }
  sd_ = std::make_unique<asio::posix::stream_descriptor>(strand_, fd);
  return true;
}

void InotifyWatcher::start() { asio::co_spawn(strand_, run(), asio::detached); }

void InotifyWatcher::watch_dir(const std::string& dir) {
  asio::post(strand_, [this, dir] { add_watch(dir); });
}

void InotifyWatcher::add_watch(const std::string& dir) {
  if (!sd_ || !sd_->is_open() || by_dir_.count(dir)) return;
  int wd = ::inotify_add_watch(sd_->native_handle(), dir.c_str(),
                               IN_MODIFY | IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE |
                                   IN_CLOSE_WRITE | IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF);
  if (wd < 0) {
    int err = errno;
    if (err == ENOENT) return;  // not there yet: the next scan tries again
    std::string hint;
    if (err == ENOSPC)
      hint = ": the inotify watch limit is reached; raise fs.inotify.max_user_watches "
             "(sysctl -w fs.inotify.max_user_watches=524288); polling covers this directory "
             "meanwhile";
    if (log_allowed("inotify-add:" + dir, std::chrono::hours(1), nullptr))
      report_error(m_, "watch", err == ENOSPC ? "inotify_watch_limit" : "inotify_add_watch",
                   fmt::format("cannot watch {}: {}{}", dir, strerror(err), hint));
    return;
  }
  dirs_[wd] = dir;
  by_dir_[dir] = wd;
}

awaitable<void> InotifyWatcher::run() {
  alignas(inotify_event) char buf[64 * 1024];
  while (sd_ && sd_->is_open()) {
    boost::system::error_code ec;
    co_await sd_->async_wait(asio::posix::stream_descriptor::wait_read,
                             asio::redirect_error(asio::use_awaitable, ec));
    if (ec || !sd_->is_open()) co_return;
    for (;;) {
      ssize_t n = ::read(sd_->native_handle(), buf, sizeof buf);
      if (n <= 0) break;
      for (char* p = buf; p < buf + n;) {
        auto* ev = reinterpret_cast<inotify_event*>(p);
        p += sizeof(inotify_event) + ev->len;
        if (ev->mask & IN_Q_OVERFLOW) {
          report_error(m_, "watch", "inotify_overflow",
                       "inotify queue overflowed; rescanning every file");
          on_change_(Change::kRescan, "", "");
          continue;
        }
        if (ev->mask & IN_IGNORED) {
          auto it = dirs_.find(ev->wd);
          if (it != dirs_.end()) {
            by_dir_.erase(it->second);
            dirs_.erase(it);
          }
          on_change_(Change::kRescan, "", "");
          continue;
        }
        auto it = dirs_.find(ev->wd);
        if (it == dirs_.end()) continue;
        if (ev->len == 0) {
          on_change_(Change::kRescan, "", "");
          continue;
        }
        std::string path = it->second + "/" + ev->name;
        if (ev->mask & IN_MOVED_FROM) {
          if (moving_.size() > 4096) moving_.clear();
          moving_[ev->cookie] = path;
          on_change_(Change::kModified, path, "");
        } else if (ev->mask & IN_MOVED_TO) {
          auto m = moving_.find(ev->cookie);
          if (m != moving_.end()) {
            on_change_(Change::kMoved, path, m->second);
            moving_.erase(m);
          } else {
            on_change_(Change::kCreated, path, "");
          }
        } else if (ev->mask & IN_CREATE) {
          on_change_(Change::kCreated, path, "");
        } else if (ev->mask & IN_DELETE) {
          on_change_(Change::kDeleted, path, "");
        } else {
          on_change_(Change::kModified, path, "");
        }
      }
    }
  }
}

void InotifyWatcher::close() {
  asio::post(strand_, [this] {
    if (sd_) {
      boost::system::error_code ec;
      sd_->close(ec);  // the pending wait completes with an error and run() returns
    }
  });
}

}  // namespace logship
