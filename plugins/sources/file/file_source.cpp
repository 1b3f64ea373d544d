#include "plugins/sources/file/file_source.h"

#include <fcntl.h>
#include <fnmatch.h>
#include <glob.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>

#include <fmt/format.h>
#include <simdjson.h>

#include "agent/core/log.h"
#include "agent/pipeline/checkpoints.h"

namespace logship {
namespace {
constexpr size_t kReadChunk = 256 * 1024;
constexpr size_t kFileBudget = 4 * kReadChunk;  // per file per cycle: fairness across files
constexpr size_t kBatchBytes = 1 << 20;
constexpr size_t kBatchEvents = 8192;
constexpr int64_t kForgetAfterSeconds = 600;  // released files stay in the checkpoint this long

uint64_t identity(dev_t dev, ino_t ino) {
  return (static_cast<uint64_t>(dev) << 40) ^ static_cast<uint64_t>(ino);
}
int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}
int64_t now_s() { return now_ns() / 1000000000; }
void json_escape(std::string& out, std::string_view s) {
  for (char c : s) {
    unsigned char u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (u < 0x20) {
      out += fmt::format("\\u{:04x}", u);
    } else {
      out += c;
    }
  }
}
}  // namespace

struct FileSource::Tailed {
  std::string path;
  uint64_t key = 0;
  dev_t dev = 0;
  ino_t ino = 0;
  int fd = -1;
  uint64_t offset = 0;        // next byte to read
  uint64_t line_start = 0;    // file offset of `partial`'s first byte
  std::string partial;        // bytes after the last newline
  std::chrono::steady_clock::time_point last_data = std::chrono::steady_clock::now();
  std::chrono::steady_clock::time_point rotated_since{};
  bool rotated = false;       // the path no longer names this file (renamed or deleted)
  size_t last_read = 0;       // bytes read in the previous cycle (sizes the next batch)
  std::unique_ptr<AckWindow<uint64_t>> window;
  ~Tailed() {
    if (fd >= 0) ::close(fd);
  }
};

FileSource::FileSource(FileSourceConfig cfg, ComponentContext ctx)
    : cfg_(std::move(cfg)),
      ctx_(std::move(ctx)),
      m_(ctx_.id, ctx_.type, "source"),
      truncations_(metrics().counter("logship_file_truncations_total",
                                     "Files found truncated and read again from 0",
                                     {{"component_id", ctx_.id}})),
      open_files_(metrics().gauge("logship_file_open_files", "Files held open",
                                  {{"component_id", ctx_.id}})) {}

FileSource::~FileSource() = default;

void FileSource::restore() {
  std::string s = ctx_.checkpoints->load(ctx_.id);
  if (s.empty()) return;
  simdjson::dom::parser p;
  simdjson::dom::element doc;
  if (p.parse(s).get(doc) != simdjson::SUCCESS) {
    report_error(m_, "checkpoint", "corrupt", "checkpoint file is not valid JSON; starting over");
    return;
  }
  simdjson::dom::array files;
  if (doc["files"].get_array().get(files) != simdjson::SUCCESS) return;
  for (auto f : files) {
    Saved sv;
    std::string_view path;
    if (f["path"].get_string().get(path) || f["dev"].get_uint64().get(sv.dev) ||
        f["ino"].get_uint64().get(sv.ino) || f["offset"].get_uint64().get(sv.offset))
      continue;
    sv.path = std::string(path);
    uint64_t closed = 0;
    if (!f["closed_at"].get_uint64().get(closed)) sv.closed_at = static_cast<int64_t>(closed);
    uint64_t key = identity(static_cast<dev_t>(sv.dev), static_cast<ino_t>(sv.ino));
    restored_[key] = sv;
    std::lock_guard lk(state_mu_);
    state_[key] = sv;  // keep it until the file is found again or expires
  }
}

std::string FileSource::serialize_locked() const {
  std::string out = "{\"version\":1,\"files\":[";
  bool first = true;
  for (auto& [key, s] : state_) {
    if (!first) out += ',';
    first = false;
    out += "{\"path\":\"";
    json_escape(out, s.path);
    out += fmt::format("\",\"dev\":{},\"ino\":{},\"offset\":{}", s.dev, s.ino, s.offset);
    if (s.closed_at) out += fmt::format(",\"closed_at\":{}", s.closed_at);
    out += '}';
  }
  out += "]}";
  return out;
}

void FileSource::save(uint64_t key, const Saved& s) {
  std::lock_guard lk(state_mu_);
  state_[key] = s;
  ctx_.checkpoints->update(ctx_.id, serialize_locked());
}

void FileSource::forget(uint64_t key) {
  std::lock_guard lk(state_mu_);
  state_.erase(key);
  ctx_.checkpoints->update(ctx_.id, serialize_locked());
}

void FileSource::scan(bool startup) {
  std::vector<std::string> paths;
  for (auto& pattern : cfg_.include) {
    glob_t g{};
    int rc = ::glob(pattern.c_str(), GLOB_NOSORT, nullptr, &g);
    if (rc == 0)
      for (size_t i = 0; i < g.gl_pathc; ++i) paths.emplace_back(g.gl_pathv[i]);
    ::globfree(&g);
  }
  for (auto& path : paths) {
    bool excluded = false;
    for (auto& ex : cfg_.exclude)
      if (::fnmatch(ex.c_str(), path.c_str(), 0) == 0) excluded = true;
    if (excluded) continue;
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) continue;
    if (!S_ISREG(st.st_mode)) {
      if (log_allowed("file-notreg:" + path, std::chrono::hours(24), nullptr))
        report_error(m_, "discover", "not_regular_file",
                     fmt::format("{} is not a regular file (directory, FIFO or device); skipped", path));
      continue;
    }
    uint64_t key = identity(st.st_dev, st.st_ino);
    if (auto it = files_.find(key); it != files_.end()) {
      if (it->second->path != path) {  // renamed: same identity, same offset
        it->second->path = path;
        std::lock_guard lk(state_mu_);
        if (auto s = state_.find(key); s != state_.end()) s->second.path = path;
      }
      continue;
    }
    if (cfg_.ignore_older_than) {
      auto age = std::chrono::system_clock::now().time_since_epoch() -
                 std::chrono::seconds(st.st_mtim.tv_sec);
      if (age > *cfg_.ignore_older_than) continue;
    }
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
      int err = errno;
      if (log_allowed("file-open:" + path, std::chrono::minutes(10), nullptr))
        report_error(m_, "open", err == EACCES ? "permission_denied" : "open_failed",
                     fmt::format("cannot open {}: {}; will retry", path, strerror(err)));
      continue;
    }
    auto f = std::make_unique<Tailed>();
    f->path = path;
    f->key = key;
    f->dev = st.st_dev;
    f->ino = st.st_ino;
    f->fd = fd;
    uint64_t size = static_cast<uint64_t>(st.st_size);
    uint64_t start = 0;
    if (auto r = restored_.find(key); r != restored_.end()) {
      start = r->second.offset;
      if (start > size) {
        truncations_.inc();
        report_error(m_, "read", "truncated",
                     fmt::format("{} is shorter than its checkpoint ({} < {}); reading it again from 0",
                                 path, size, start));
        start = 0;
      }
      restored_.erase(r);
    } else if (startup && cfg_.read_from_end) {
      start = size;
    }
    f->offset = f->line_start = start;
    Saved sv{path, static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino), start, 0};
    f->window = std::make_unique<AckWindow<uint64_t>>(start, [this, key](const uint64_t& off) {
      std::lock_guard lk(state_mu_);
      auto it = state_.find(key);
      if (it == state_.end()) return;
      it->second.offset = off;
      ctx_.checkpoints->update(ctx_.id, serialize_locked());
    });
    save(key, sv);
    spdlog::info("[{}] watching {} from offset {}", ctx_.id, path, start);
    files_.emplace(key, std::move(f));
    open_files_.set(static_cast<int64_t>(files_.size()));
  }
  // Checkpoint entries of files that were released long ago (or never found again) expire.
  std::lock_guard lk(state_mu_);
  int64_t now = now_s();
  bool changed = false;
  for (auto it = state_.begin(); it != state_.end();) {
    bool live = files_.count(it->first) > 0;
    bool expired = !live && ((it->second.closed_at && now - it->second.closed_at > kForgetAfterSeconds) ||
                             (!it->second.closed_at && !startup && restored_.count(it->first) == 0));
    if (expired) {
      it = state_.erase(it);
      changed = true;
    } else {
      ++it;
    }
  }
  if (changed) ctx_.checkpoints->update(ctx_.id, serialize_locked());
  if (startup) {
    // Files from the checkpoint that were not found: keep their entries for the grace period.
    for (auto& [key, sv] : restored_) {
      auto it = state_.find(key);
      if (it != state_.end() && !it->second.closed_at) it->second.closed_at = now;
    }
    restored_.clear();
  }
}

awaitable<bool> FileSource::emit(Tailed& f, Fanout& out, EventBatch&& batch, uint64_t end_offset) {
  m_.received_events.inc(batch.size());
  m_.received_bytes.inc(batch.text_bytes());
  AckHandle ack = f.window->add(end_offset);
  co_return co_await out.send(std::move(batch), std::move(ack));
}

awaitable<size_t> FileSource::read_some(Tailed& f, Fanout& out, bool& stopped) {
  size_t total = 0;
  EventBatch batch;
  uint16_t host = 0, source = 0, sourcetype = 0, index = 0;
  auto new_batch = [&] {
    batch = EventBatch();
    // Size the arena from what this file gave last time, so a busy file's batch does not grow
    // (and copy) its arena several times; an idle file's stays small.
    size_t hint = std::clamp<size_t>(f.last_read, 4096, kBatchBytes + 64 * 1024);
    batch.reserve(std::max<size_t>(16, hint / 128), hint);
    host = batch.intern(cfg_.host);
    source = batch.intern(cfg_.source ? *cfg_.source : f.path);
    sourcetype = batch.intern(cfg_.sourcetype);
    index = batch.intern(cfg_.index);
  };
  new_batch();
  uint64_t batch_end = f.line_start;
  int64_t t = now_ns();
  auto add_line = [&](std::string_view line, bool truncated) {
    Event& e = batch.add(line, t);
    e.host = host;
    e.source = source;
    e.sourcetype = sourcetype;
    e.index = index;
    if (truncated) e.flags |= Event::kTruncated;
  };
  auto flush = [&]() -> awaitable<bool> {
    if (batch.empty()) co_return true;
    bool ok = co_await emit(f, out, std::move(batch), batch_end);
    new_batch();
    co_return ok;
  };

  while (total < kFileBudget) {
    if (buf_.size() < kReadChunk) buf_.resize(kReadChunk);
    ssize_t n = ::pread(f.fd, buf_.data(), kReadChunk, static_cast<off_t>(f.offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      report_error(m_, "read", "read_failed", fmt::format("read {}: {}", f.path, strerror(errno)));
      break;
    }
    if (n == 0) break;
    total += static_cast<size_t>(n);
    f.offset += static_cast<uint64_t>(n);
    f.last_data = std::chrono::steady_clock::now();
    std::string_view data(buf_.data(), static_cast<size_t>(n));
    while (!data.empty()) {
      const char* nl = static_cast<const char*>(memchr(data.data(), '\n', data.size()));
      if (!nl) {
        // No newline: keep the tail as a partial line, splitting it when it grows too long.
        f.partial.append(data);
        while (f.partial.size() >= cfg_.max_line_bytes) {
          add_line(std::string_view(f.partial).substr(0, cfg_.max_line_bytes), true);
          f.partial.erase(0, cfg_.max_line_bytes);
          f.line_start += cfg_.max_line_bytes;
          batch_end = f.line_start;
        }
        break;
      }
      size_t len = static_cast<size_t>(nl - data.data());
      std::string_view piece = data.substr(0, len);
      std::string_view line;
      if (!f.partial.empty()) {
        f.partial.append(piece);
        line = f.partial;
      } else {
        line = piece;
      }
      uint64_t consumed = line.size() + 1;
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      while (line.size() > cfg_.max_line_bytes) {
        add_line(line.substr(0, cfg_.max_line_bytes), true);
        line.remove_prefix(cfg_.max_line_bytes);
      }
      add_line(line, false);
      f.line_start += consumed;
      batch_end = f.line_start;
      f.partial.clear();
      data.remove_prefix(len + 1);
      if (batch.text_bytes() >= kBatchBytes || batch.size() >= kBatchEvents) {
        if (!co_await flush()) {
          stopped = true;
          co_return total;
        }
      }
    }
  }
  // A last line without newline is emitted after partial_line_timeout of silence.
  if (!f.partial.empty() && total == 0 &&
      std::chrono::steady_clock::now() - f.last_data >= cfg_.partial_line_timeout) {
    add_line(f.partial, false);
    f.line_start += f.partial.size();
    batch_end = f.line_start;
    f.partial.clear();
  }
  if (!co_await flush()) stopped = true;
  f.last_read = total;
  co_return total;
}

void FileSource::check_rotation(Tailed& f) {
  struct stat fst {};
  if (::fstat(f.fd, &fst) == 0 && static_cast<uint64_t>(fst.st_size) < f.offset) {
    truncations_.inc();
    report_error(m_, "read", "truncated",
                 fmt::format("{} was truncated ({} < {}); reading it again from 0", f.path,
                             fst.st_size, f.offset));
    f.offset = f.line_start = 0;
    f.partial.clear();
  }
  struct stat st {};
  bool same = ::stat(f.path.c_str(), &st) == 0 && st.st_dev == f.dev && st.st_ino == f.ino;
  if (!same && !f.rotated) {
    f.rotated = true;
    f.rotated_since = std::chrono::steady_clock::now();
  }
}

awaitable<void> FileSource::run(Fanout& out) {
  restore();
  scan(true);
  auto last_scan = std::chrono::steady_clock::now();
  const auto idle_wait =
      std::min<std::chrono::steady_clock::duration>(cfg_.scan_interval, std::chrono::milliseconds(100));
  while (!ctx_.lifecycle->stopping()) {
    if (ctx_.checkpoints->failing()) {
      // Checkpoints cannot be written (disk full?): pause rather than lose track.
      report_error(m_, "checkpoint", "write_failed", "checkpoint writes fail; reading is paused");
      if (co_await ctx_.lifecycle->sleep(std::chrono::seconds(1))) break;
      ctx_.checkpoints->flush_all();
      continue;
    }
    size_t got = 0;
    bool stopped = false;
    for (auto it = files_.begin(); it != files_.end() && !stopped;) {
      Tailed& f = *it->second;
      size_t n = co_await read_some(f, out, stopped);
      got += n;
      if (n == 0) {
        check_rotation(f);
        // A rotated file is released once it stayed drained for a scan interval (late writes
        // by the writer through its old descriptor are still read).
        if (f.rotated && std::chrono::steady_clock::now() - f.rotated_since >= cfg_.scan_interval) {
          if (!f.partial.empty())
            report_error(m_, "read", "abandoned_partial_line",
                         fmt::format("{} was rotated away with {} bytes of an unterminated last "
                                     "line; they are emitted as a line",
                                     f.path, f.partial.size()));
          std::string p = f.path;
          uint64_t key = f.key;
          {
            std::lock_guard lk(state_mu_);
            if (auto s = state_.find(key); s != state_.end()) s->second.closed_at = now_s();
          }
          spdlog::info("[{}] released {} (rotated or deleted, drained)", ctx_.id, p);
          ::close(f.fd);
          f.fd = -1;
          released_.push_back(std::move(it->second));  // kept until its acks are in
          it = files_.erase(it);
          open_files_.set(static_cast<int64_t>(files_.size()));
          continue;
        }
      }
      ++it;
    }
    if (stopped) break;
    std::erase_if(released_, [](const std::unique_ptr<Tailed>& t) { return t->window->pending() == 0; });
    auto now = std::chrono::steady_clock::now();
    if (now - last_scan >= cfg_.scan_interval) {
      scan(false);
      last_scan = now;
    }
    if (got == 0) {
      if (co_await ctx_.lifecycle->sleep(idle_wait)) break;
    }
  }
  co_return;
}

}  // namespace logship
