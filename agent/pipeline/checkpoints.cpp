#include "agent/pipeline/checkpoints.h"

#include "agent/core/blocking.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "agent/core/log.h"

namespace logship {
namespace fs = std::filesystem;

namespace {
bool write_all(int fd, const std::string& s) {
  size_t off = 0;
  while (off < s.size()) {
    ssize_t n = ::write(fd, s.data() + off, s.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    off += static_cast<size_t>(n);
  }
  return true;
}
std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) return "";
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}
// A checkpoint file is the state followed by a final "\n#end\n" marker, so a torn `.new` file
// (crash during write, before fsync) is recognised and ignored.
constexpr std::string_view kEndMarker = "\n#end\n";
}  // namespace

CheckpointStore::CheckpointStore(std::string data_dir, std::chrono::milliseconds interval)
    : dir_(std::move(data_dir) + "/checkpoints"),
      interval_(interval),
      writes_(metrics().counter("logship_checkpoint_writes_total",
                                "Checkpoint files written (atomic rename)")),
      errors_(metrics().counter("logship_checkpoint_write_errors_total",
                                "Checkpoint writes that failed (reading pauses)")) {}

std::string CheckpointStore::load(const std::string& id) {
  for (const char* suffix : {".json.new", ".json"}) {
    std::string s = read_file(fs::path(dir_) / (id + suffix));
    if (s.size() >= kEndMarker.size() &&
        std::string_view(s).substr(s.size() - kEndMarker.size()) == kEndMarker) {
      s.resize(s.size() - kEndMarker.size());
      return s;
    }
  }
  return "";
}

void CheckpointStore::update(const std::string& id, std::string state) {
  std::lock_guard lk(mu_);
  dirty_[id] = std::move(state);
}

void CheckpointStore::set_provider(const std::string& id, std::function<std::string()> provider) {
  std::lock_guard lk(mu_);
  providers_[id] = std::move(provider);
}

void CheckpointStore::mark_dirty(const std::string& id) {
  std::lock_guard lk(mu_);
  dirty_providers_.insert(id);
}

bool CheckpointStore::failing() const {
  std::lock_guard lk(mu_);
  return failing_;
}

bool CheckpointStore::write_one(const std::string& id, const std::string& state) {
  std::error_code ec;
  fs::create_directories(dir_, ec);
  std::string final_path = dir_ + "/" + id + ".json";
  std::string tmp = final_path + ".new";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    spdlog::error("checkpoint {}: cannot open {}: {}", id, tmp, strerror(errno));
    return false;
  }
  std::string body = state;
  body += kEndMarker;
  bool ok = write_all(fd, body) && ::fsync(fd) == 0;
  int saved = errno;
  ::close(fd);
  if (!ok) {
    spdlog::error("checkpoint {}: cannot write {}: {}", id, tmp, strerror(saved));
    return false;
  }
  if (::rename(tmp.c_str(), final_path.c_str()) != 0) {
    spdlog::error("checkpoint {}: cannot rename {}: {}", id, tmp, strerror(errno));
    return false;
  }
  int dfd = ::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  writes_.inc();
  return true;
}

bool CheckpointStore::flush_all() {
  std::lock_guard flush_lock(flush_mu_);
  std::map<std::string, std::string> todo;
  std::vector<std::function<std::string()>> fns;
  std::vector<std::string> fn_ids;
  {
    std::lock_guard lk(mu_);
    todo.swap(dirty_);
    for (auto& id : dirty_providers_) {
      auto it = providers_.find(id);
      if (it == providers_.end()) continue;
      fns.push_back(it->second);
      fn_ids.push_back(id);
    }
    dirty_providers_.clear();
  }
  for (size_t i = 0; i < fns.size(); ++i) todo[fn_ids[i]] = fns[i]();
  bool all_ok = true;
  for (auto& [id, state] : todo) {
    if (!write_one(id, state)) {
      all_ok = false;
      errors_.inc();
      std::lock_guard lk(mu_);
      dirty_.try_emplace(id, state);  // retried on the next flush unless superseded
    }
  }
  std::lock_guard lk(mu_);
  failing_ = !all_ok;
  return all_ok;
}

awaitable<void> CheckpointStore::run(Lifecycle& lc) {
  // Coalesce: at most one write per component per interval.
  for (;;) {
    bool stop = co_await lc.sleep(interval_);
    // fsync on a busy disk can take a second: never on the I/O loop's threads.
    auto flush = [this] { return flush_all() ? 1 : 0; };
    co_await run_blocking(std::move(flush));
    if (stop) co_return;
  }
}

}  // namespace logship
