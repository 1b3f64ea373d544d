#include "plugins/sinks/splunk_hec/dead_letter.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>

#include <fmt/format.h>

namespace logship {

HecDeadLetter::~HecDeadLetter() {
  if (fd_ >= 0) ::close(fd_);
}

std::string HecDeadLetter::open_locked() {
  std::error_code ec;
  std::filesystem::path p(path_);
  if (p.has_parent_path()) std::filesystem::create_directories(p.parent_path(), ec);
  if (ec) return fmt::format("cannot create {}: {}", p.parent_path().string(), ec.message());
  fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd_ < 0) return fmt::format("cannot open {}: {}", path_, std::strerror(errno));
  struct stat st {};
  size_ = ::fstat(fd_, &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
  return "";
}

std::string HecDeadLetter::write(std::string_view plain_lines) {
  std::lock_guard lk(mu_);
  std::string_view lines = plain_lines;
  if (ring_ && ring_->current()) {
    if (!sealer_ || &sealer_->key() != ring_->current())
      sealer_ = std::make_unique<crypto::BlockSealer>(*ring_->current(), true);
    sealed_.clear();
    std::string err;
    uint32_t n = static_cast<uint32_t>(std::count(plain_lines.begin(), plain_lines.end(), '\n'));
    auto now = std::chrono::system_clock::now().time_since_epoch();
    if (!sealer_->seal(crypto::BlockKind::kDeadLetter, 0,
                       std::chrono::duration_cast<std::chrono::nanoseconds>(now).count(), n,
                       plain_lines, sealed_, &err))
      return fmt::format("cannot encrypt dead letters for {}: {}", path_, err);
    lines = sealed_;
  }
  if (fd_ < 0) {
    if (auto err = open_locked(); !err.empty()) return err;
  }
  if (size_ > 0 && size_ + lines.size() > max_) {
    ::close(fd_);
    fd_ = -1;
    std::string rotated = path_ + ".1";
    if (::rename(path_.c_str(), rotated.c_str()) != 0)
      return fmt::format("cannot rotate {}: {}", path_, std::strerror(errno));
    if (auto err = open_locked(); !err.empty()) return err;
  }
  const char* p = lines.data();
  size_t left = lines.size();
  while (left > 0) {
    ssize_t n = ::write(fd_, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      return fmt::format("cannot write {}: {}", path_, std::strerror(errno));
    }
    p += n;
    left -= static_cast<size_t>(n);
    size_ += static_cast<uint64_t>(n);
  }
  if (::fdatasync(fd_) != 0) return fmt::format("cannot sync {}: {}", path_, std::strerror(errno));
  return "";
}

void HecDeadLetter::format(std::string& out, HecEncoder& enc, const HecRequest& req,
                           std::string_view endpoint, long status, std::string_view error) {
  for (const auto& part : req.parts) {
    const EventBatch& b = *part.batch;
    for (uint32_t i = part.begin; i < part.end; ++i) {
      const Event& e = b.events()[i];
      HecMetadata md = enc.metadata(b, e);
      out.append("{\"event\":");
      HecEncoder::append_event_value(out, b, e);
      auto meta = [&](std::string_view key, std::string_view v) {
        if (v.empty()) return;
        out.append(",\"");
        out.append(key);
        out.append("\":\"");
        json_escape_append(out, v);
        out.push_back('"');
      };
      meta("host", md.host);
      meta("source", md.source);
      meta("sourcetype", md.sourcetype);
      meta("index", md.index);
      if (e.time_ns > 0) {
        out.append(",\"time\":");
        append_hec_time(out, e.time_ns);
      }
      meta("endpoint", endpoint);
      out.append(",\"status\":");
      out.append(std::to_string(status));
      out.append(",\"error\":\"");
      json_escape_append(out, error);
      out.append("\"}\n");
    }
  }
}

}  // namespace logship
