#include "plugins/sources/file/file_source.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <functional>

#include <fmt/format.h>
#include <simdjson.h>
#include <xxhash.h>

#include "agent/core/log.h"
#include "agent/pipeline/checkpoints.h"
#include "agent/pipeline/event_id.h"
#include "plugins/sources/file/decoder.h"
#include "plugins/sources/file/discovery.h"
#include "plugins/sources/file/watch_inotify.h"

namespace logship {
namespace {
constexpr size_t kReadChunk = 256 * 1024;
constexpr size_t kFileBudget = 4 * kReadChunk;  // per file per cycle: fairness across files
constexpr size_t kBatchBytes = 1 << 20;
constexpr size_t kBatchEvents = 8192;
constexpr int64_t kForgetAfterSeconds = 600;  // released files stay in the checkpoint this long
constexpr auto kRetiredKeep = std::chrono::minutes(10);
constexpr size_t kMaxRetired = 4096;
constexpr size_t kMaxDirScan = 200000;

uint64_t identity(dev_t dev, ino_t ino) {
  return (static_cast<uint64_t>(dev) << 40) ^ static_cast<uint64_t>(ino);
}
int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}
int64_t now_s() {
  return now_ns() / 1000000000;
}
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
std::string dirname_of(const std::string& p) {
  size_t s = p.rfind('/');
  return s == std::string::npos ? "." : (s == 0 ? "/" : p.substr(0, s));
}
std::string basename_of(const std::string& p) {
  size_t s = p.rfind('/');
  return s == std::string::npos ? p : p.substr(s + 1);
}
// logrotate names: app.log -> app.log.1, app.log-20261127, app.1.log; same directory.
bool looks_like_rotation_of(const std::string& copy, const std::string& live) {
  // logrotate names: app.log -> app.log.1, app.log-20261127 (same directory, original + suffix).
  if (copy == live || dirname_of(copy) != dirname_of(live)) return false;
  std::string a = basename_of(copy), b = basename_of(live);
  return a.size() > b.size() && a.compare(0, b.size(), b) == 0;
}
// The last <= kTailHashBytes bytes of `a` followed by `b`.
std::string last_bytes(std::string_view a, std::string_view b) {
  std::string out;
  size_t keep = kTailHashBytes;
  if (b.size() >= keep) return std::string(b.substr(b.size() - keep));
  size_t from_a = std::min(a.size(), keep - b.size());
  out.reserve(from_a + b.size());
  out.append(a.substr(a.size() - from_a));
  out.append(b);
  return out;
}
// The bytes before `offset` (at most kTailHashBytes) read now, for a position just decided.
std::string read_back(int fd, uint64_t offset) {
  uint32_t len = static_cast<uint32_t>(std::min<uint64_t>(offset, kTailHashBytes));
  std::string out(len, '\0');
  size_t got = 0;
  while (got < len) {
    ssize_t n = ::pread(fd, out.data() + got, len - got, static_cast<off_t>(offset - len + got));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  out.resize(got);
  return out;
}
// True when `fd` (of `size` bytes) still holds the generation described by its first bytes
// (`fp`) and the bytes before `offset` (`tail`): the same file, not a reused inode.
bool holds_generation(int fd, uint64_t size, const Fingerprint& fp, uint64_t offset,
                      uint64_t tail) {
  if (size < offset) return false;
  if (fp.len > 0) {
    auto h = hash_prefix(fd, fp.len);
    if (!h || *h != fp.hash) return false;
  }
  auto t = tail_hash(fd, offset);
  return t && *t == tail;
}
}  // namespace

struct FileSource::Tailed {
  std::string path;
  std::string first_path;  // the name it had when first seen (copies are named after it)
  uint64_t key = 0;
  uint64_t serial = 0;  // owner of its checkpoint entry (a reused inode gets a new serial)
  dev_t dev = 0;
  ino_t ino = 0;
  int fd = -1;                 // -1: closed to respect max_open_files (reopened by identity)
  uint64_t offset = 0;         // next byte to read
  uint64_t line_start = 0;     // file offset of `partial`'s first byte (all before is emitted)
  std::string partial;         // bytes after the last newline
  bool partial_split = false;  // a part of the line in `partial` was already emitted (split)
  uint64_t emitted_tail = 0;   // tail hash at line_start (copytruncate detection)
  // Content hashes are taken from the bytes as they were read, never by reading the file again:
  // by then it may have been truncated and rewritten (a copytruncate right after a write).
  std::string head;        // the generation's first bytes, while read from 0 (fingerprint)
  bool head_seq = false;   // head is filled by reading from 0
  std::string back;        // the last <= kTailHashBytes bytes before back_pos, as read
  uint64_t back_pos = 0;   // == line_start when `back` is current
  uint64_t last_size = 0;  // size at the last fstat
  Fingerprint fp;          // first fingerprint_bytes (grows while the file is shorter)
  Clock::time_point last_data = Clock::now();
  Clock::time_point last_active = Clock::now();
  Clock::time_point rotated_since{};
  Clock::time_point last_growth = Clock::now();  // the size last changed (rotate_wait)
  bool deleted = false;                          // its last name was unlinked (st_nlink 0)
  bool rotated = false;     // the path no longer names this file (renamed or deleted)
  bool drain_only = false;  // found after a rotation while stopped: read to the end, release
  bool wanted = false;      // closed, but new data was signalled
  bool undecided = false;   // maybe a copy still being written: held open, not read yet
  bool rewritten = false;   // undecided because its content was replaced (same inode, same window)
  uint32_t gen = 0;         // generations on this inode since it was tracked (rewrites in place)
  size_t last_read = 0;     // bytes read in the previous cycle (sizes the next batch)
  std::unique_ptr<LineDecoder> decoder;
  std::unique_ptr<AckWindow<FileSource::Pos>> window;
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
      abandoned_bytes_(metrics().counter(
          "logship_file_abandoned_bytes_total",
          "Bytes that could not be read any more (file truncated or gone before it was drained)",
          {{"component_id", ctx_.id}})),
      copies_recognised_(metrics().counter(
          "logship_file_copies_recognised_total",
          "New files recognised as copies (copytruncate) and continued from the offset read",
          {{"component_id", ctx_.id}})),
      abandoned_generations_(metrics().counter(
          "logship_file_abandoned_generations_total",
          "Rotated generations removed before logship could open them (their size is unknown)",
          {{"component_id", ctx_.id}})),
      open_files_(metrics().gauge("logship_file_open_files", "Files held open",
                                  {{"component_id", ctx_.id}})),
      tracked_files_(metrics().gauge("logship_file_tracked_files", "Files tracked",
                                     {{"component_id", ctx_.id}})) {}

FileSource::~FileSource() {
  for (auto& p : pins_)
    if (p.fd >= 0) ::close(p.fd);
}

int FileSource::open_count() const {
  return open_fds_;
}

// When the budget is reached, close an eighth of it at once so the (sorting) trim runs rarely.
int FileSource::trim_target() const {
  int max_open = static_cast<int>(cfg_.max_open_files);
  return std::max(1, max_open - std::max(1, max_open / 8));
}

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
    uint64_t v = 0;
    if (!f["tail"].get_uint64().get(v)) sv.tail = v;
    if (!f["fp"].get_uint64().get(v)) sv.fp.hash = v;
    if (!f["fp_len"].get_uint64().get(v)) sv.fp.len = static_cast<uint32_t>(v);
    if (!f["closed_at"].get_uint64().get(v)) sv.closed_at = static_cast<int64_t>(v);
    uint64_t key = identity(static_cast<dev_t>(sv.dev), static_cast<ino_t>(sv.ino));
    restored_[key] = sv;
    std::lock_guard lk(state_mu_);
    state_[key] = sv;  // kept until the file is found again or expires
  }
  simdjson::dom::array retired;
  if (doc["retired"].get_array().get(retired) == simdjson::SUCCESS) {
    std::lock_guard lk(state_mu_);
    for (auto r : retired) {
      Retired g;
      std::string_view path;
      uint64_t v = 0;
      if (r["path"].get_string().get(path) || r["offset"].get_uint64().get(g.offset)) continue;
      g.path = std::string(path);
      if (!r["tail"].get_uint64().get(v)) g.tail = v;
      if (!r["fp"].get_uint64().get(v)) g.fp.hash = v;
      if (!r["fp_len"].get_uint64().get(v)) g.fp.len = static_cast<uint32_t>(v);
      g.when = Clock::now();
      if (retired_.size() < kMaxRetired) retired_.push_back(std::move(g));
    }
  }
}

std::string FileSource::serialize_locked() const {
  std::string out = "{\"version\":2,\"files\":[";
  bool first = true;
  for (auto& [key, s] : state_) {
    if (!first) out += ',';
    first = false;
    out += "{\"path\":\"";
    json_escape(out, s.path);
    out += fmt::format("\",\"dev\":{},\"ino\":{},\"offset\":{},\"tail\":{},\"fp\":{},\"fp_len\":{}",
                       s.dev, s.ino, s.offset, s.tail, s.fp.hash, s.fp.len);
    if (s.closed_at) out += fmt::format(",\"closed_at\":{}", s.closed_at);
    out += '}';
  }
  // Generations read before a truncation, kept for kRetiredKeep: a copy of one (copytruncate)
  // decided after a restart still continues where it was read to.
  out += "],\"retired\":[";
  first = true;
  for (auto& r : retired_) {
    if (!first) out += ',';
    first = false;
    out += "{\"path\":\"";
    json_escape(out, r.path);
    out += fmt::format("\",\"offset\":{},\"tail\":{},\"fp\":{},\"fp_len\":{}}}", r.offset, r.tail,
                       r.fp.hash, r.fp.len);
  }
  out += "]}";
  return out;
}

void FileSource::retire(Retired r) {
  std::lock_guard lk(state_mu_);
  retired_.push_back(std::move(r));
  ctx_.checkpoints->mark_dirty(ctx_.id);
}

void FileSource::start_window(Tailed& f, const Saved& sv) {
  // Acknowledged positions move this file's checkpoint entry (written by the flusher).
  uint64_t key = f.key;
  uint64_t serial = f.serial;
  f.window = std::make_unique<AckWindow<Pos>>(
      Pos{sv.offset, sv.tail, sv.fp, f.gen}, [this, key, serial](const Pos& p) {
        std::lock_guard lk(state_mu_);
        auto it = state_.find(key);
        // A released file's late acknowledgements never move the entry of a new file that
        // reuses its inode.
        if (it == state_.end() || it->second.owner != serial) return;
        if (p.gen != it->second.gen) {
          // The first position of a generation rewritten in place: the entry now describes it,
          // so the retired generation that placed it is no longer needed for a restart.
          it->second.gen = p.gen;
          drop_claims_locked(key);
        }
        it->second.offset = p.offset;
        it->second.tail = p.tail;
        it->second.fp = p.fp;  // one generation: offset, tail and fingerprint move together
        ctx_.checkpoints->mark_dirty(ctx_.id);
      });
  std::lock_guard lk(state_mu_);
  Saved owned = sv;
  owned.owner = serial;
  owned.gen = f.gen;
  save_locked(key, owned);
  drop_claims_locked(key);  // the entry describes where this file starts
}

void FileSource::drop_claims_locked(uint64_t key) {
  if (std::erase_if(retired_, [&](const Retired& r) { return r.claimed_by == key; }) > 0)
    ctx_.checkpoints->mark_dirty(ctx_.id);
}

void FileSource::save_locked(uint64_t key, const Saved& s) {
  state_[key] = s;
  ctx_.checkpoints->mark_dirty(ctx_.id);
}

void FileSource::set_position(Tailed& f, uint64_t start) {
  f.offset = f.line_start = start;
  f.back = read_back(f.fd, start);
  f.back_pos = start;
  f.emitted_tail = start ? XXH64(f.back.data(), f.back.size(), 0) : 0;
  if (start == 0) {
    // Read from its first byte: the fingerprint grows from what is read.
    f.head.clear();
    f.head_seq = true;
    f.fp = Fingerprint{};
  } else {
    f.head_seq = false;
    std::string().swap(f.head);
    f.fp =
        fingerprint_fd(f.fd, static_cast<uint32_t>(cfg_.fingerprint_bytes)).value_or(Fingerprint{});
  }
}

void FileSource::advance_back(Tailed& f, std::string_view bytes) {
  // line_start moved past `bytes` (already applied by the caller).
  if (f.back_pos + bytes.size() != f.line_start) return;
  f.back = last_bytes(f.back, bytes);
  f.back_pos = f.line_start;
  f.emitted_tail = f.line_start ? XXH64(f.back.data(), f.back.size(), 0) : 0;
}

bool FileSource::track(const std::string& path, int fd, const struct stat& st, uint64_t start,
                       bool drain_only) {
  uint64_t key = identity(st.st_dev, st.st_ino);
  auto f = std::make_unique<Tailed>();
  f->path = path;
  f->first_path = path;
  f->key = key;
  f->serial = next_serial_++;
  f->dev = st.st_dev;
  f->ino = st.st_ino;
  f->fd = fd;
  ++open_fds_;
  f->drain_only = drain_only;
  f->rotated = drain_only;
  f->rotated_since = Clock::now();
  f->last_size = static_cast<uint64_t>(st.st_size);
  f->offset = f->line_start = start;
  f->wanted = f->last_size > start;
  set_position(*f, start);
  f->decoder = make_line_decoder(cfg_.decode, m_);
  Saved sv{path,
           static_cast<uint64_t>(st.st_dev),
           static_cast<uint64_t>(st.st_ino),
           start,
           f->emitted_tail,
           f->fp,
           0,
           0};
  start_window(*f, sv);
  spdlog::info("[{}] {} {} from offset {}", ctx_.id,
               drain_only ? "finishing (rotated while stopped)" : "watching", path, start);
  files_[key] = std::move(f);
  if (watcher_) watcher_->watch_dir(dirname_of(path));
  return true;
}

std::optional<uint64_t> FileSource::start_for(const std::string& path, int fd,
                                              const struct stat& given, bool startup) {
  // The file as it is now, not as it was when its descriptor was taken: a copy rewritten in
  // place may have been truncated since.
  struct stat st = given;
  if (::fstat(fd, &st) != 0) st = given;
  uint64_t size = static_cast<uint64_t>(st.st_size);
  uint64_t key = identity(st.st_dev, st.st_ino);
  auto age =
      std::chrono::system_clock::now().time_since_epoch() -
      (std::chrono::seconds(st.st_mtim.tv_sec) + std::chrono::nanoseconds(st.st_mtim.tv_nsec));
  // Written in the last 2 s: maybe a copy still being written (cp, copytruncate).
  bool young = age <= std::chrono::seconds(2);
  auto recent = Clock::now() - std::chrono::seconds(2);
  // 1. A copy of a truncated generation (copytruncate): same first bytes, same bytes before
  //    the offset that generation was read to. It continues there.
  // The candidate's first bytes are read once per fingerprint length (usually one), however
  // many generations are retired.
  std::vector<std::pair<uint32_t, std::optional<uint64_t>>> prefixes;
  auto prefix = [&](uint32_t len) {
    for (auto& [l, h] : prefixes)
      if (l == len) return h;
    prefixes.emplace_back(len, hash_prefix(fd, len));
    return prefixes.back().second;
  };
  for (auto it = retired_.begin(); it != retired_.end(); ++it) {
    if (it->offset == 0 || it->fp.len == 0) continue;
    if (size < it->fp.len || size < it->offset) {
      // Shorter than what was read of it: a copy in progress waits (its first bytes, where
      // there are enough of them, are those of the generation).
      if (!young || it->when < recent || !looks_like_rotation_of(path, it->path)) continue;
      auto h = size >= it->fp.len ? prefix(it->fp.len) : std::optional<uint64_t>();
      if (size < it->fp.len || (h && *h == it->fp.hash)) return std::nullopt;
      continue;
    }
    auto h = prefix(it->fp.len);
    if (!h || *h != it->fp.hash) continue;
    auto t = tail_hash(fd, it->offset);
    if (!t || *t != it->tail) continue;
    uint64_t off = it->offset;
    copies_recognised_.inc();
    spdlog::info("[{}] {} is a copy of {} as it was before its truncation; continuing at offset {}",
                 ctx_.id, path, it->path, off);
    {
      // Kept until the file's checkpoint entry says where it starts (start_window(), or the
      // first acknowledged position of a generation rewritten in place).
      std::lock_guard lk(state_mu_);
      if (!it->claimed_by) it->claimed_by = key;
    }
    return off;
  }
  // 2. A copy of a live generation (rotation-like names only: two unrelated files with the same
  //    header stay two files). While it is young it waits: copytruncate truncates the live file
  //    next, and rule 1 then places the copy exactly where the live generation was read to.
  //    An older one is a backup copy: what the live file still holds is read from the live file.
  for (auto& [k, live] : files_) {
    if (k == key || live->fd < 0) continue;
    if (!looks_like_rotation_of(path, live->path) &&
        !looks_like_rotation_of(path, live->first_path))
      continue;
    // A copy of the generation being read (its first bytes as read), or of what the live file
    // holds now: it may have been truncated and written again before logship looked, and a
    // copy of that newer generation must not be read while the live file reads it too.
    auto matches = [&](const Fingerprint& g) {
      if (g.len == 0 || size < g.len) return false;
      auto h = prefix(g.len);
      return h && *h == g.hash;
    };
    bool copy = !live->undecided && matches(live->fp);
    if (!copy) {
      auto now = fingerprint_fd(live->fd, static_cast<uint32_t>(cfg_.fingerprint_bytes));
      copy = now && matches(*now);
      if (!copy && young && now && now->len > 0 && size < now->len) return std::nullopt;
    }
    if (!copy) {
      if (young && !live->undecided && size < live->fp.len) return std::nullopt;  // too short yet
      continue;
    }
    if (young) return std::nullopt;
    struct stat lst {};
    if (::fstat(live->fd, &lst) == 0 && static_cast<uint64_t>(lst.st_size) >= size) {
      auto lt = tail_hash(live->fd, size);
      auto ct = tail_hash(fd, size);
      if (lt && ct && *lt == *ct) {
        copies_recognised_.inc();
        spdlog::info("[{}] {} is a copy of {} (which still holds it); continuing at its end ({})",
                     ctx_.id, path, live->path, size);
        return size;
      }
    }
    if (live->line_start <= size) {
      auto t = tail_hash(fd, live->line_start);
      if (live->line_start == 0 || (t && *t == live->emitted_tail)) {
        copies_recognised_.inc();
        spdlog::info("[{}] {} is a copy of {}; continuing at offset {} (already read there)",
                     ctx_.id, path, live->path, live->line_start);
        return live->line_start;
      }
    }
  }
  // Nothing matched. That holds only if the file stayed put while it was examined: a copy
  // truncated and rewritten meanwhile fails every comparison and would be taken for a new file
  // (and read again from 0). It is looked at again on the next pass.
  struct stat after {};
  if (::fstat(fd, &after) != 0 || static_cast<uint64_t>(after.st_size) < size) return std::nullopt;
  for (auto& [l, h] : prefixes)
    if (hash_prefix(fd, l) != h) return std::nullopt;
  return startup && cfg_.read_from_end ? size : 0;
}

void FileSource::scan(bool startup) {
  postponed_ = false;
  std::vector<std::string> paths = discover_files(cfg_.include, cfg_.exclude);
  struct Candidate {
    std::string path;
    struct stat st;
    int fd = -1;         // already open (a known inode whose content is not the checkpointed one)
    bool known = false;  // its inode was in the checkpoint: never starts at the end
  };
  std::vector<Candidate> fresh;
  for (auto& path : paths) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) continue;
    if (!S_ISREG(st.st_mode)) {
      if (!not_regular_.count(path) && not_regular_.size() < 100000) {
        not_regular_.insert(path);  // counted and logged once per path
        report_error_for(
            m_, "discover", "not_regular_file", path, std::chrono::hours(24),
            fmt::format("{} is not a regular file (directory, FIFO or device); skipped", path));
      }
      continue;
    }
    uint64_t key = identity(st.st_dev, st.st_ino);
    if (auto it = files_.find(key); it != files_.end()) {
      Tailed& f = *it->second;
      if (f.path != path) {  // renamed: same identity, same offset
        f.path = path;
        f.rotated = false;
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
    fresh.push_back({path, st, -1, false});
  }
  // Restored files first (their identity is verified), so that what is left over can serve to
  // recognise copies among the new ones.
  std::vector<Candidate> news;
  auto open_candidate = [&](const Candidate& c) -> int {
    if (open_count() >= cfg_.max_open_files) close_idle_files(trim_target());
    int fd = ::open(c.path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
      int err = errno;
      report_error_for(m_, "open", err == EACCES ? "permission_denied" : "open_failed", c.path,
                       std::chrono::hours(1),
                       fmt::format("cannot open {}: {}; will retry", c.path, strerror(err)));
    }
    return fd;
  };
  for (auto& c : fresh) {
    uint64_t key = identity(c.st.st_dev, c.st.st_ino);
    uint64_t size = static_cast<uint64_t>(c.st.st_size);
    auto r = restored_.find(key);
    if (r == restored_.end()) {
      news.push_back(c);  // opened one at a time below, within max_open_files
      continue;
    }
    int fd = open_candidate(c);
    if (fd < 0) continue;
    const Saved& sv = r->second;
    bool same = holds_generation(fd, size, sv.fp, sv.offset, sv.tail);
    if (same) {
      track(c.path, fd, c.st, sv.offset, false);
      restored_.erase(r);
      continue;
    }
    // The inode now holds other content: a new file (inode reused), or this file was
    // truncated while logship was stopped. Its old generation may have been copied.
    if (sv.offset > size) {
      truncations_.inc();
      report_error(m_, "read", "truncated",
                   fmt::format("{} is shorter than its checkpoint ({} < {}); reading it again "
                               "from 0",
                               c.path, size, sv.offset));
    } else {
      spdlog::info("[{}] {} has new content under a known inode (reused); reading it as a new file",
                   ctx_.id, c.path);
    }
    retire({sv.fp, sv.offset, sv.tail, sv.path, Clock::now()});
    restored_.erase(r);
    // Decided with the new files, once every generation of the checkpoint is retired: it may be
    // a copy of one (copytruncate while stopped, the copy on the inode of a deleted file whose
    // entry is still kept).
    news.push_back({c.path, c.st, fd, true});
  }
  if (startup) recover_rotated_while_stopped();
  for (auto& c : news) {
    int fd = c.fd >= 0 ? c.fd : open_candidate(c);
    if (fd < 0) continue;
    uint64_t key = identity(c.st.st_dev, c.st.st_ino);
    if (const Gone* g = same_as_gone(key, fd, static_cast<uint64_t>(c.st.st_size))) {
      // A released generation back under a glob name: it continues where it was released.
      uint64_t off = g->offset;
      gone_.erase(key);
      track(c.path, fd, c.st, off, false);
      continue;
    }
    auto start = start_for(c.path, fd, c.st, startup && !c.known);
    track(c.path, fd, c.st, start.value_or(0), false);
    if (!start) hold_undecided(*files_[key]);
  }
  close_idle_files(static_cast<int>(cfg_.max_open_files));
  // Checkpoint entries of files released long ago expire; so do retired generations.
  {
    std::lock_guard lk(state_mu_);
    int64_t now = now_s();
    bool changed = false;
    for (auto it = state_.begin(); it != state_.end();) {
      bool live = files_.count(it->first) > 0;
      bool expired =
          !live && it->second.closed_at && now - it->second.closed_at > kForgetAfterSeconds;
      if (expired) {
        it = state_.erase(it);
        changed = true;
      } else {
        ++it;
      }
    }
    if (changed) ctx_.checkpoints->mark_dirty(ctx_.id);
  }
  auto cutoff = Clock::now() - kRetiredKeep;
  {
    std::lock_guard lk(state_mu_);
    if (std::erase_if(retired_, [&](const Retired& r) { return r.when < cutoff; }) > 0)
      ctx_.checkpoints->mark_dirty(ctx_.id);
    if (retired_.size() > kMaxRetired)
      retired_.erase(retired_.begin(), retired_.end() - kMaxRetired);
  }
  open_files_.set(open_count());
  tracked_files_.set(static_cast<int64_t>(files_.size()));
}

void FileSource::recover_rotated_while_stopped() {
  // Checkpointed files whose path no longer names them: renamed (or deleted but still open by
  // nobody) while logship was stopped. Look for the inode in the old directory, finish it.
  for (auto it = restored_.begin(); it != restored_.end();) {
    const Saved& sv = it->second;
    std::string dir = dirname_of(sv.path);
    bool found = false;
    if (DIR* d = ::opendir(dir.c_str())) {
      size_t n = 0;
      while (dirent* e = ::readdir(d)) {
        if (++n > kMaxDirScan) break;
        if (e->d_ino != static_cast<ino_t>(sv.ino)) continue;
        std::string p = dir + "/" + e->d_name;
        struct stat st {};
        if (::stat(p.c_str(), &st) != 0 || !S_ISREG(st.st_mode) ||
            static_cast<uint64_t>(st.st_dev) != sv.dev)
          continue;
        int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0) continue;
        if (!holds_generation(fd, static_cast<uint64_t>(st.st_size), sv.fp, sv.offset, sv.tail)) {
          ::close(fd);
          continue;
        }
        track(p, fd, st, sv.offset, true);
        found = true;
        break;
      }
      ::closedir(d);
    }
    if (!found) {
      // Gone, or truncated/rewritten: keep its generation so a copy of it can continue.
      retire({sv.fp, sv.offset, sv.tail, sv.path, Clock::now()});
      if (!sv.closed_at) {
        report_error(m_, "read", "vanished_while_stopped",
                     fmt::format("{} (checkpoint at offset {}) was not found again after the "
                                 "restart; bytes written after that offset cannot be read",
                                 sv.path, sv.offset));
        std::lock_guard lk(state_mu_);
        if (auto s = state_.find(it->first); s != state_.end()) {
          s->second.closed_at = now_s();
          ctx_.checkpoints->mark_dirty(ctx_.id);  // persisted: the entry expires
        }
      }
    }
    it = restored_.erase(it);
  }
}

void FileSource::close_idle_files(int limit) {
  // Respect max_open_files: close the files idle the longest (never a rotated file: its path is
  // gone, its descriptor is the only way to its data).
  int open = open_count();
  if (open <= limit) return;
  const int max_open = limit;
  std::vector<Tailed*> idle;
  for (auto& [k, f] : files_)
    if (f->fd >= 0 && !f->rotated) idle.push_back(f.get());
  std::sort(idle.begin(), idle.end(),
            [](Tailed* a, Tailed* b) { return a->last_active < b->last_active; });
  for (Tailed* f : idle) {
    if (open <= max_open) break;
    ::close(f->fd);
    f->fd = -1;
    --open_fds_;
    f->wanted = f->last_size > f->offset;  // known unread data: reopen it soon
    --open;
  }
}

bool FileSource::reopen(Tailed& f) {
  int fd = ::open(f.path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) return false;
  struct stat st {};
  if (::fstat(fd, &st) != 0 || st.st_dev != f.dev || st.st_ino != f.ino) {
    ::close(fd);
    return false;
  }
  f.fd = fd;
  ++open_fds_;
  return true;
}

void FileSource::restat_closed() {
  for (auto it = files_.begin(); it != files_.end();) {
    Tailed& f = *it->second;
    if (f.fd >= 0) {
      ++it;
      continue;
    }
    struct stat st {};
    bool same = ::stat(f.path.c_str(), &st) == 0 && st.st_dev == f.dev && st.st_ino == f.ino;
    if (same) {
      if (static_cast<uint64_t>(st.st_size) != f.offset) f.wanted = true;
      ++it;
      continue;
    }
    // The path no longer names it and the scan did not find it elsewhere: gone while closed.
    abandon(f, "was rotated or deleted while closed (max_open_files)");
    released_.push_back(std::move(it->second));  // kept until its acks are in
    it = files_.erase(it);
  }
}

void FileSource::abandon(Tailed& f, const char* why) {
  uint64_t lost = f.last_size > f.offset ? f.last_size - f.offset : 0;
  if (lost) abandoned_bytes_.inc(lost);
  report_error(m_, "read", "abandoned",
               fmt::format("{} {}; {} byte(s) after offset {} could not be read", f.path, why, lost,
                           f.offset));
  std::lock_guard lk(state_mu_);
  if (auto s = state_.find(f.key); s != state_.end() && s->second.owner == f.serial) {
    s->second.closed_at = now_s();
    ctx_.checkpoints->mark_dirty(ctx_.id);  // persisted: the entry expires
  }
}

awaitable<bool> FileSource::emit(Tailed& f, Fanout& out, EventBatch&& batch, uint64_t end_offset) {
  m_.received_events.inc(batch.size());
  m_.received_bytes.inc(batch.text_bytes());
  // The bytes before the position, as read (a decoder holding data ends it before line_start:
  // then the file is read for them).
  uint64_t tail = end_offset == f.back_pos ? f.emitted_tail
                  : f.fd >= 0              ? tail_hash(f.fd, end_offset).value_or(0)
                                           : 0;
  AckHandle ack = f.window->add(Pos{end_offset, tail, f.fp, f.gen});
  co_return co_await out.send(std::move(batch), std::move(ack));
}

namespace {
// Adds decoded events to the batch with the file's metadata.
}  // namespace

// Where the next emitted event starts (event_id: true): set before each decoder call.
struct EventIdState {
  std::string_view source_id;
  std::string identity;  ///< the file's fingerprint once complete, else its path
  uint64_t position = 0;
  uint32_t seq = 0;
};

namespace {

class BatchEmitter : public EventEmitter {
 public:
  BatchEmitter(EventBatch*& batch, const uint16_t* meta, const LineDecoder* decoder,
               EventIdState* ids = nullptr)
      : batch_(batch), meta_(meta), decoder_(decoder), ids_(ids) {}
  void emit(std::string_view text, int64_t time_ns, uint8_t flags) override {
    Event& e = batch_->add(text, time_ns);
    e.host = meta_[0];
    e.source = meta_[1];
    e.sourcetype = meta_[2];
    e.index = meta_[3];
    e.flags = flags;
    // Container logs keep their stream as an indexed field (cri / docker codecs).
    std::string_view stream = decoder_->last_stream();
    std::string_view fields = stream == "stdout"   ? R"({"stream":"stdout"})"
                              : stream == "stderr" ? R"({"stream":"stderr"})"
                                                   : std::string_view();
    if (ids_) {
      std::string f = with_event_id(
          fields, event_id(ids_->source_id, ids_->identity, ids_->position, ids_->seq++));
      batch_->set_fields(batch_->events().back(), f);
    } else if (!fields.empty()) {
      batch_->set_fields(e, fields);
    }
  }

 private:
  EventBatch*& batch_;
  const uint16_t* meta_;
  const LineDecoder* decoder_;
  EventIdState* ids_;
};
}  // namespace

void FileSource::id_position(Tailed& f, EventIdState& ids, uint64_t line_start) {
  ids.source_id = ctx_.id;
  if (!f.head_seq && f.fp.len >= cfg_.fingerprint_bytes) {
    ids.identity.assign(reinterpret_cast<const char*>(&f.fp.hash), sizeof f.fp.hash);
  } else {
    ids.identity = "path:" + f.path;
  }
  ids.position = f.decoder->held_from().value_or(line_start);
  ids.seq = 0;
}

awaitable<size_t> FileSource::read_some(Tailed& f, Fanout& out, bool& stopped) {
  size_t total = 0;
  EventBatch batch;
  EventBatch* bp = &batch;
  uint16_t meta[4] = {0, 0, 0, 0};
  auto new_batch = [&] {
    batch = EventBatch();
    // Size the arena from what this file gave last time, so a busy file's batch does not grow
    // (and copy) its arena several times; an idle file's stays small.
    // A file with a known backlog (a new file read from the beginning) sizes it from what is
    // left to read, so its first batch is not grown by doubling (copies, and up to twice the
    // memory: bench/run many-files).
    size_t backlog = f.last_size > f.offset ? static_cast<size_t>(f.last_size - f.offset) : 0;
    size_t hint =
        std::clamp<size_t>(std::max<size_t>(f.last_read, backlog), 4096, kBatchBytes + 64 * 1024);
    batch.reserve(std::max<size_t>(16, hint / 192), hint);
    meta[0] = batch.intern(cfg_.host);
    meta[1] = batch.intern(cfg_.source ? *cfg_.source : f.path);
    meta[2] = batch.intern(cfg_.sourcetype);
    meta[3] = batch.intern(cfg_.index);
  };
  new_batch();
  EventIdState ids;
  BatchEmitter emitter(bp, meta, f.decoder.get(), cfg_.event_id ? &ids : nullptr);
  int64_t t = now_ns();
  // The checkpoint may move to the end of the last complete line, but never past data the
  // decoder still holds (a multiline event or a partial container record in progress).
  auto end_position = [&] {
    auto held = f.decoder->held_from();
    return held ? std::min(*held, f.line_start) : f.line_start;
  };
  uint64_t committed_end = end_position();
  auto flush = [&]() -> awaitable<bool> {
    uint64_t end = end_position();
    if (batch.empty() && end == committed_end) co_return true;
    if (batch.empty()) {
      co_return true;  // only held data moved: nothing to send yet
    }
    committed_end = end;
    bool ok = co_await emit(f, out, std::move(batch), end);
    new_batch();
    co_return ok;
  };
  auto line_done = [&](std::string_view line, bool truncated, uint64_t start, uint64_t end) {
    if (cfg_.event_id) id_position(f, ids, start);
    f.decoder->line(line, truncated, start, end, t, emitter);
  };

  std::function<void()> sync_back = [] {};
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
    const uint64_t chunk_off = f.offset;
    const std::string_view chunk(buf_.data(), static_cast<size_t>(n));
    f.offset += static_cast<uint64_t>(n);
    f.last_data = f.last_active = Clock::now();
    if (f.head_seq && chunk_off == f.head.size()) {
      // The first bytes as read: the fingerprint of this generation.
      f.head.append(chunk.substr(0, cfg_.fingerprint_bytes - f.head.size()));
      f.fp =
          Fingerprint{XXH64(f.head.data(), f.head.size(), 0), static_cast<uint32_t>(f.head.size())};
      if (f.head.size() >= cfg_.fingerprint_bytes) {
        f.head_seq = false;
        std::string().swap(f.head);
      }
    }
    // The bytes just before this chunk (the line in progress included), for the tail hash of
    // positions inside it.
    const std::string pre =
        f.back_pos == f.line_start && f.line_start + f.partial.size() == chunk_off
            ? last_bytes(f.back, f.partial)
            : read_back(f.fd, chunk_off);
    sync_back = [&f, &pre, chunk_off, chunk] {
      if (f.back_pos == f.line_start || f.line_start < chunk_off) return;
      f.back = last_bytes(pre, chunk.substr(0, static_cast<size_t>(f.line_start - chunk_off)));
      f.back_pos = f.line_start;
      f.emitted_tail = f.line_start ? XXH64(f.back.data(), f.back.size(), 0) : 0;
    };
    std::string_view data = chunk;
    while (!data.empty()) {
      const char* nl = static_cast<const char*>(memchr(data.data(), '\n', data.size()));
      if (!nl) {
        // No newline: keep the tail as a partial line; split it when it grows too long, so
        // memory never grows with the line length.
        f.partial.append(data);
        while (f.partial.size() >= cfg_.max_line_bytes) {
          uint64_t start = f.line_start;
          f.line_start += cfg_.max_line_bytes;
          advance_back(f, std::string_view(f.partial).substr(0, cfg_.max_line_bytes));
          line_done(std::string_view(f.partial).substr(0, cfg_.max_line_bytes), true, start,
                    f.line_start);
          f.partial.erase(0, cfg_.max_line_bytes);
          f.partial_split = true;  // its last part is flagged too
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
      uint64_t start = f.line_start;
      uint64_t end = start + line.size() + 1;
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      bool was_split = f.partial_split;
      f.partial_split = false;
      while (line.size() > cfg_.max_line_bytes) {
        line_done(line.substr(0, cfg_.max_line_bytes), true, start, end);
        line.remove_prefix(cfg_.max_line_bytes);
        was_split = true;
      }
      line_done(line, was_split, start, end);
      f.line_start = end;
      f.partial.clear();
      data.remove_prefix(len + 1);
      if (batch.text_bytes() >= kBatchBytes || batch.size() >= kBatchEvents) {
        sync_back();
        if (!co_await flush()) {
          stopped = true;
          co_return total;
        }
      }
    }
    sync_back();
    sync_back = [] {};  // `pre` and the chunk end with this iteration
  }
  auto now = Clock::now();
  // A last line without newline is emitted after partial_line_timeout of silence.
  if (!f.partial.empty() && total == 0 && now - f.last_data >= cfg_.partial_line_timeout) {
    uint64_t start = f.line_start;
    f.line_start += f.partial.size();
    advance_back(f, f.partial);
    line_done(f.partial, f.partial_split, start, f.line_start);
    f.partial.clear();
    f.partial_split = false;
  }
  if (cfg_.event_id) id_position(f, ids, f.line_start);
  f.decoder->flush(now, false, emitter);  // multiline timeout
  if (!co_await flush()) stopped = true;
  f.last_read = total;
  co_return total;
}

bool FileSource::prefix_changed(const Tailed& f) const {
  if (f.fd < 0 || f.offset == 0 || f.fp.len == 0) return false;
  auto h = hash_prefix(f.fd, f.fp.len);
  return h && *h != f.fp.hash;
}

void FileSource::check_rotation(Tailed& f) {
  struct stat fst {};
  if (::fstat(f.fd, &fst) == 0) {
    uint64_t size = static_cast<uint64_t>(fst.st_size);
    // Truncated, or truncated and written again past our offset before we looked (copytruncate
    // followed at once by new lines): the first bytes no longer match the fingerprint.
    bool rewritten = size >= f.offset && prefix_changed(f);
    if (size < f.offset || rewritten) {
      // Truncated (copytruncate or `> file`): what was not read is lost; the generation read so
      // far is remembered so a copy of it continues where we were.
      truncations_.inc();
      // Unread bytes, plus the unterminated line already read but not emitted.
      uint64_t lost = (f.last_size > f.offset ? f.last_size - f.offset : 0) + f.partial.size();
      if (lost) abandoned_bytes_.inc(lost);
      report_error(
          m_, "read", "truncated",
          rewritten
              ? fmt::format("{} was truncated and written again (its first bytes changed); "
                            "reading it again from 0{}",
                            f.path, lost ? fmt::format(" ({} unread bytes lost)", lost) : "")
              : fmt::format("{} was truncated ({} < {}); reading it again from 0{}", f.path, size,
                            f.offset, lost ? fmt::format(" ({} unread bytes lost)", lost) : ""));
      retire({f.fp, f.line_start, f.emitted_tail, f.path, Clock::now()});
      f.partial.clear();
      f.partial_split = false;
      set_position(f, 0);
      ++f.gen;
      f.last_growth = Clock::now();
      // The new content is a new generation on the same inode, decided by content like a new
      // file: a copy written over an older copy (`cp app.log app.log.1`) continues where the
      // generation it copies was read to, instead of being read again from 0.
      f.undecided = true;
      f.rewritten = true;
      // The checkpoint entry keeps describing the old generation (offset and fingerprint) until
      // a position of the new one is acknowledged: each position carries its fingerprint.
    }
    if (size != f.last_size) f.last_growth = Clock::now();
    f.last_size = size;
    f.deleted = fst.st_nlink == 0;
  }
  if (f.drain_only) return;
  // Rotated: no glob name reaches it any more (renamed out of the globs, or deleted).
  struct stat st {};
  bool same = !f.deleted && included(f.path) && ::stat(f.path.c_str(), &st) == 0 &&
              st.st_dev == f.dev && st.st_ino == f.ino;
  if (!same && !f.rotated) {
    f.rotated = true;
    f.rotated_since = Clock::now();
  } else if (same && f.rotated) {
    f.rotated = false;
  }
}

void FileSource::on_fs_change(int kind, std::string_view path, std::string_view moved_from) {
  using C = InotifyWatcher::Change;
  auto k = static_cast<C>(kind);
  std::string p(path), from(moved_from);
  // Pin the generation at once, on the watcher's strand: a name created in the globs, or the
  // target of a move out of them (or of a move of a generation moved out earlier). By the time
  // the source loop looks, the file may have been rotated away and its inode reused.
  bool in = !p.empty() && included(p);
  bool pin = false;
  {
    std::lock_guard lk(wake_mu_);
    if (k == C::kCreated) pin = in;
    if (k == C::kMoved) pin = in || included(from) || chase_.count(from) > 0;
  }
  Pin pinned;
  int open_err = 0;
  if (pin) {
    int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
      open_err = errno;
    } else if (::fstat(fd, &pinned.st) != 0 || !S_ISREG(pinned.st.st_mode)) {
      ::close(fd);
      fd = -1;
    }
    pinned.fd = fd;
    pinned.path = p;
    pinned.from = from;
  }
  std::lock_guard lk(wake_mu_);
  auto lose = [&](const std::string& name) {
    // A generation never opened is gone under this name: its content was not read.
    auto u = unpinned_.find(name);
    if (u == unpinned_.end()) return;
    if (lost_.size() < 10000) lost_.emplace_back(u->second, name);
    unpinned_.erase(u);
  };
  if (unpinned_.size() > 4096) unpinned_.clear();
  if (chase_.size() > 4096) chase_.clear();
  switch (k) {
    case C::kRescan:
      rescan_ = true;
      break;
    case C::kCreated:
      rescan_ = true;  // discover new files at once, not at the next scan_interval
      if (pin && pinned.fd < 0 && open_err == ENOENT) unpinned_[p] = p;
      break;
    case C::kMoved: {
      rescan_ = true;
      lose(p);  // what the target name held was replaced (unlinked)
      if (included(from) || chase_.count(from)) chase_.insert(p);
      auto u = unpinned_.find(from);
      if (u != unpinned_.end()) {
        std::string first = u->second;
        unpinned_.erase(u);
        if (pinned.fd < 0) unpinned_[p] = first;  // still not opened: follow it
      }
      break;
    }
    case C::kDeleted:
      lose(p);
      chase_.erase(p);
      break;
    case C::kModified:
      break;
  }
  if (pinned.fd >= 0) {
    if (pins_.size() < 4096) {
      pins_.push_back(std::move(pinned));
    } else {
      ::close(pinned.fd);  // the scan and the re-stat still find what is reachable
      rescan_ = true;
    }
  }
  if (!p.empty() && changed_.size() < 100000) changed_.emplace(p);
  woken_ = true;
  wake_wq_.notify_all();
}

const FileSource::Gone* FileSource::same_as_gone(uint64_t key, int fd, uint64_t size) {
  auto g = gone_.find(key);
  if (g == gone_.end()) return nullptr;
  const Gone& r = g->second;
  if (holds_generation(fd, size, r.fp, r.offset, r.tail)) return &r;
  gone_.erase(g);  // the inode was reused: another file
  return nullptr;
}

void FileSource::adopt(Pin& p) {
  uint64_t key = identity(p.st.st_dev, p.st.st_ino);
  if (auto it = files_.find(key); it != files_.end()) {
    // The file we hold (its descriptor pins the inode): learn its new name.
    Tailed& f = *it->second;
    if (f.path != p.path && (!p.from.empty() && f.path == p.from)) {
      f.path = p.path;
      std::lock_guard lk(state_mu_);
      if (auto s = state_.find(key); s != state_.end()) s->second.path = p.path;
    }
    ::close(p.fd);
    return;
  }
  struct stat st {};
  if (::fstat(p.fd, &st) != 0) {
    ::close(p.fd);
    return;
  }
  uint64_t size = static_cast<uint64_t>(st.st_size);
  bool in = included(p.path);
  uint64_t start = 0;
  if (const Gone* g = same_as_gone(key, p.fd, size)) {
    // A generation already released. Back under a glob name with more data: continue where it
    // was released; elsewhere its growth is counted by watch_gone().
    if (!in || size <= g->offset) {
      ::close(p.fd);
      return;
    }
    start = g->offset;
    gone_.erase(key);
    if (open_count() >= cfg_.max_open_files) close_idle_files(trim_target());
    track(p.path, p.fd, st, start, false);
    return;
  }
  if (!in) {
    // Moved out of the globs before logship held it: a generation written while logship runs
    // is read (then released after rotate_wait); an older file that merely moved is not ours.
    if (st.st_mtim.tv_sec < started_at_) {
      ::close(p.fd);
      return;
    }
  } else if (cfg_.ignore_older_than) {
    auto age = std::chrono::system_clock::now().time_since_epoch() -
               std::chrono::seconds(st.st_mtim.tv_sec);
    if (age > *cfg_.ignore_older_than) {
      ::close(p.fd);
      return;
    }
  }
  if (open_count() >= cfg_.max_open_files) close_idle_files(trim_target());
  auto begin = start_for(p.path, p.fd, st, false);
  track(p.path, p.fd, st, begin.value_or(0), false);
  Tailed& f = *files_[key];
  if (!in) {
    f.rotated = true;
    f.rotated_since = Clock::now();
  }
  if (!begin) hold_undecided(f);
}

void FileSource::hold_undecided(Tailed& f) {
  // Held open (it may be renamed or deleted meanwhile), read once decided (decide()).
  f.undecided = true;
  postponed_ = true;
  // Not in the checkpoint until decided: a restart meanwhile examines it afresh (a checkpoint
  // at 0 would re-send a copy).
  std::lock_guard lk(state_mu_);
  state_.erase(f.key);
  ctx_.checkpoints->mark_dirty(ctx_.id);
}

void FileSource::watch_gone() {
  auto cutoff = Clock::now() - kRetiredKeep;
  for (auto it = gone_.begin(); it != gone_.end();) {
    Gone& g = it->second;
    if (g.when < cutoff) {
      it = gone_.erase(it);
      continue;
    }
    if (!g.path.empty()) {
      struct stat st {};
      if (::stat(g.path.c_str(), &st) != 0 || static_cast<uint64_t>(st.st_dev) != g.dev ||
          static_cast<uint64_t>(st.st_ino) != g.ino) {
        g.path.clear();  // renamed again or deleted: no longer observable
      } else if (static_cast<uint64_t>(st.st_size) > g.size) {
        uint64_t grew = static_cast<uint64_t>(st.st_size) - g.size;
        abandoned_bytes_.inc(grew);
        report_error_for(
            m_, "read", "written_after_release", g.path, std::chrono::minutes(10),
            fmt::format(
                "{} grew by {} byte(s) after it was released (rotated, no "
                "growth for rotate_wait {}ms); those bytes are not read: "
                "raise rotate_wait or make the writer reopen sooner",
                g.path, grew,
                std::chrono::duration_cast<std::chrono::milliseconds>(cfg_.rotate_wait).count()));
        g.size = static_cast<uint64_t>(st.st_size);
      }
    }
    ++it;
  }
  if (gone_.size() > kMaxRetired) {
    // Oldest first.
    std::vector<std::pair<Clock::time_point, uint64_t>> order;
    for (auto& [k, g] : gone_) order.emplace_back(g.when, k);
    std::sort(order.begin(), order.end());
    for (size_t i = 0; i + kMaxRetired < order.size(); ++i) gone_.erase(order[i].second);
  }
}

bool FileSource::decide(Tailed& f) {
  struct stat st {};
  if (::fstat(f.fd, &st) != 0) return false;
  auto decided = start_for(f.path, f.fd, st, false);
  if (!decided) {
    postponed_ = true;
    return false;
  }
  uint64_t start = *decided;
  spdlog::info(
      "[{}] {} ({}) starts at offset {}", ctx_.id, f.path,
      f.rewritten ? "rewritten in place" : "held while it may have been a copy in progress", start);
  f.undecided = false;
  set_position(f, start);
  if (f.rewritten) {
    // Same inode, same acknowledgement window: its positions now carry the new fingerprint.
    f.rewritten = false;
    f.wanted = true;
    return true;
  }
  start_window(f, Saved{f.path, static_cast<uint64_t>(f.dev), static_cast<uint64_t>(f.ino), start,
                        f.emitted_tail, f.fp, 0, 0});
  return true;
}

bool FileSource::included(const std::string& path) const {
  bool in = false;
  for (auto& g : cfg_.include)
    if (glob_match(g, path)) in = true;
  if (!in) return false;
  for (auto& ex : cfg_.exclude)
    if (glob_match(ex, path)) return false;
  return true;
}

void FileSource::release(std::map<uint64_t, std::unique_ptr<Tailed>>::iterator it,
                         const char* why) {
  Tailed& f = *it->second;
  {
    std::lock_guard lk(state_mu_);
    if (auto s = state_.find(f.key); s != state_.end() && s->second.owner == f.serial) {
      s->second.closed_at = now_s();
      ctx_.checkpoints->mark_dirty(ctx_.id);  // persisted: the entry expires
    }
  }
  // Remember the generation: a descriptor on the same inode later (a move, a rescan) is told
  // apart from a new file by content; growth under its current name is counted.
  Gone g;
  g.fp = f.fp;
  g.offset = f.line_start;
  g.tail = f.emitted_tail;
  g.dev = static_cast<uint64_t>(f.dev);
  g.ino = static_cast<uint64_t>(f.ino);
  g.size = f.last_size;
  g.when = Clock::now();
  struct stat st {};
  if (f.fd >= 0 && ::fstat(f.fd, &st) == 0 && st.st_nlink > 0) {
    char link[64];
    snprintf(link, sizeof link, "/proc/self/fd/%d", f.fd);
    char target[4096];
    ssize_t n = ::readlink(link, target, sizeof target - 1);
    if (n > 0 && target[0] == '/') g.path.assign(target, static_cast<size_t>(n));
    g.size = static_cast<uint64_t>(st.st_size);
  }
  spdlog::info("[{}] released {} ({}, drained to offset {})", ctx_.id,
               g.path.empty() ? f.path : g.path, why, f.offset);
  gone_[f.key] = std::move(g);
  if (f.fd >= 0) {
    ::close(f.fd);
    f.fd = -1;
    --open_fds_;
  }
  released_.push_back(std::move(it->second));  // kept until its acks are in
  files_.erase(it);
  open_files_.set(open_count());
  tracked_files_.set(static_cast<int64_t>(files_.size()));
}

awaitable<void> FileSource::run(Fanout& out) {
  ctx_.checkpoints->set_provider(ctx_.id, [this] {
    std::lock_guard lk(state_mu_);
    return serialize_locked();
  });
  if (!cfg_.poll_only) {
    watcher_ = std::make_unique<InotifyWatcher>(
        ctx_.executor, m_,
        [this](InotifyWatcher::Change c, std::string_view p, std::string_view from) {
          on_fs_change(static_cast<int>(c), p, from);
        });
    if (watcher_->open()) {
      for (auto& g : cfg_.include) watcher_->watch_dir(glob_static_dir(g));
      watcher_->start();
    } else {
      watcher_.reset();
    }
  }
  started_at_ = now_s() - 1;
  restore();
  scan(true);
  auto last_scan = Clock::now();
  while (!ctx_.lifecycle->stopping()) {
    if (ctx_.checkpoints->failing()) {
      // Checkpoints cannot be written (disk full?): pause rather than lose track.
      report_error(m_, "checkpoint", "write_failed", "checkpoint writes fail; reading is paused");
      if (co_await ctx_.lifecycle->sleep(std::chrono::seconds(1))) break;
      ctx_.checkpoints->flush_all();
      continue;
    }
    std::set<std::string> changed;
    std::vector<Pin> pins;
    std::vector<std::pair<std::string, std::string>> lost;
    bool rescan = false;
    {
      std::lock_guard lk(wake_mu_);
      changed.swap(changed_);
      pins.swap(pins_);
      lost.swap(lost_);
      rescan = rescan_;
      rescan_ = false;
      woken_ = false;
    }
    for (auto& p : pins) adopt(p);
    for (auto& [first, last] : lost) {
      abandoned_generations_.inc();
      report_error_for(
          m_, "read", "generation_lost", first, std::chrono::minutes(1),
          fmt::format("a generation of {}{} was removed before logship could open "
                      "it (rotated out faster than it was read); its content was "
                      "not read",
                      first, first == last ? "" : fmt::format(" (last named {})", last)));
    }
    if (rescan) {
      scan(false);
      rescan = false;
    }
    size_t got = 0;
    bool stopped = false;
    bool pending_timeouts = false;
    int64_t rotated_held = 0;
    for (auto& [k, f] : files_)
      if (f->rotated) ++rotated_held;
    for (auto it = files_.begin(); it != files_.end() && !stopped;) {
      Tailed& f = *it->second;
      if (f.fd < 0) {
        if (!f.wanted && !changed.count(f.path)) {
          ++it;
          continue;
        }
        if (open_count() >= cfg_.max_open_files) close_idle_files(trim_target());
        if (!reopen(f)) {
          f.wanted = false;  // restat_closed() decides at the next scan
          ++it;
          continue;
        }
        f.wanted = false;
        open_files_.set(open_count());
      }
      // New data after a truncation that was not seen (the file is already longer than our
      // offset again) would be read from the wrong place: check the first bytes first.
      if (!f.undecided && prefix_changed(f)) check_rotation(f);
      if (f.undecided && !decide(f)) {
        ++it;
        continue;
      }
      size_t n = co_await read_some(f, out, stopped);
      got += n;
      if (!f.partial.empty() || f.decoder->held_from()) pending_timeouts = true;
      if (n == 0 && !stopped) {
        check_rotation(f);
        // A rotated file is read until it did not grow for rotate_wait (writers that reopen
        // late still write through their old descriptor), counted from the rotation.
        auto since = std::max(f.last_data, std::max(f.last_growth, f.rotated_since));
        bool quiet = Clock::now() - since >= cfg_.rotate_wait;
        // Descriptor pressure: more rotated files held than max_open_files: drained ones go
        // first (their later growth is counted, where their name still reaches them).
        bool pressed =
            rotated_held > cfg_.max_open_files && f.partial.empty() && f.last_size <= f.offset;
        if (f.rotated && (quiet || pressed)) {
          if (pressed && !quiet && !pressure_warned_) {
            pressure_warned_ = true;
            spdlog::warn(
                "[{}] more rotated files held than max_open_files ({}): drained ones are "
                "released before rotate_wait",
                ctx_.id, cfg_.max_open_files);
          }
          EventBatch last;
          uint16_t meta[4] = {last.intern(cfg_.host),
                              last.intern(cfg_.source ? *cfg_.source : f.path),
                              last.intern(cfg_.sourcetype), last.intern(cfg_.index)};
          EventBatch* lp = &last;
          EventIdState ids;
          BatchEmitter em(lp, meta, f.decoder.get(), cfg_.event_id ? &ids : nullptr);
          if (!f.partial.empty()) {
            uint64_t start = f.line_start;
            f.line_start += f.partial.size();
            advance_back(f, f.partial);
            if (cfg_.event_id) id_position(f, ids, start);
            f.decoder->line(f.partial, f.partial_split, start, f.line_start, now_ns(), em);
            f.partial.clear();
            f.partial_split = false;
          }
          if (cfg_.event_id) id_position(f, ids, f.line_start);
          f.decoder->flush(Clock::now(), true, em);
          if (!last.empty() && !co_await emit(f, out, std::move(last), f.line_start)) {
            stopped = true;
            break;
          }
          --rotated_held;
          release(it++, quiet ? "rotated or deleted, quiet for rotate_wait"
                              : "rotated or deleted, released early: too many rotated files held");
          continue;
        }
      }
      ++it;
    }
    if (stopped) break;
    std::erase_if(released_,
                  [](const std::unique_ptr<Tailed>& t) { return t->window->pending() == 0; });
    auto now = Clock::now();
    if (rescan || (postponed_ && now - last_scan >= std::chrono::milliseconds(100)) ||
        now - last_scan >= cfg_.scan_interval) {
      scan(false);
      restat_closed();
      watch_gone();
      last_scan = now;
    }
    if (got == 0) {
      // Wait for inotify, the next re-stat, or a pending timeout (partial line, multiline).
      auto wait =
          watcher_ ? std::chrono::duration_cast<Clock::duration>(cfg_.scan_interval)
                   : std::chrono::duration_cast<Clock::duration>(std::min<std::chrono::nanoseconds>(
                         cfg_.scan_interval, std::chrono::milliseconds(250)));
      if (pending_timeouts || postponed_)
        wait = std::min<Clock::duration>(wait, std::chrono::milliseconds(100));
      // Bounded so a stop request (which does not signal this queue) is seen promptly.
      wait = std::min<Clock::duration>(wait, std::chrono::milliseconds(500));
      wait = std::min<Clock::duration>(wait, cfg_.scan_interval - (now - last_scan));
      if (wait > Clock::duration::zero()) {
        co_await wake_wq_.wait(
            wake_mu_, [this] { return woken_ || ctx_.lifecycle->stopping(); }, wait);
      }
      if (ctx_.lifecycle->stopping()) break;
    }
  }
  // Stop: events held by decoders (multiline in progress) are not emitted; their lines stay
  // behind the checkpoint and are read again on the next start.
  if (watcher_) watcher_->close();
  co_return;
}

}  // namespace logship
