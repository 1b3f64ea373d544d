#include "agent/buffer/disk_buffer.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bit>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <set>
#include <stdexcept>

#include <fmt/format.h>

#include "agent/core/log.h"
#include "agent/core/units.h"

namespace logship {

namespace {

template <class T>
void put(std::string& s, T v) {
  for (size_t i = 0; i < sizeof(T); ++i)
    s.push_back(static_cast<char>(static_cast<uint64_t>(v) >> (8 * i)));
}
template <class T>
bool get(std::string_view& s, T& v) {
  if (s.size() < sizeof(T)) return false;
  uint64_t x = 0;
  for (size_t i = 0; i < sizeof(T); ++i)
    x |= static_cast<uint64_t>(static_cast<uint8_t>(s[i])) << (8 * i);
  v = static_cast<T>(x);
  s.remove_prefix(sizeof(T));
  return true;
}

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

bool pread_all(int fd, void* buf, size_t n, uint64_t off) {
  auto* p = static_cast<char*>(buf);
  while (n > 0) {
    ssize_t r = ::pread(fd, p, n, static_cast<off_t>(off));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    p += r;
    n -= static_cast<size_t>(r);
    off += static_cast<uint64_t>(r);
  }
  return true;
}

uint64_t file_size(int fd) {
  struct stat st {};
  return ::fstat(fd, &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
}

/// Finds the next offset in [from, end) where a valid block header starts; `end` when none.
uint64_t resync(int fd, uint64_t from, uint64_t end) {
  std::string buf;
  constexpr size_t kChunk = 1 << 20;
  uint64_t at = from;
  while (at + crypto::kBlockHeaderBytes <= end) {
    size_t n =
        static_cast<size_t>(std::min<uint64_t>(kChunk + crypto::kBlockHeaderBytes, end - at));
    buf.resize(n);
    if (!pread_all(fd, buf.data(), n, at)) return end;
    for (size_t i = 0; i + crypto::kBlockHeaderBytes <= n; ++i) {
      if (buf[i] != 'L' || std::memcmp(buf.data() + i, "LSBK", 4) != 0) continue;
      crypto::BlockHeader h;
      if (crypto::BlockHeader::decode(reinterpret_cast<const uint8_t*>(buf.data() + i), h))
        return at + i;
    }
    if (n < kChunk + crypto::kBlockHeaderBytes) break;
    at += kChunk;
  }
  return end;
}

constexpr char kIndexMagic[4] = {'L', 'S', 'I', 'X'};

}  // namespace

// Event records are fixed 36-byte little-endian layouts, written and read with memcpy.
static_assert(std::endian::native == std::endian::little,
              "the batch encoding assumes little-endian");
constexpr size_t kEventRecord = 36;

void encode_batch_head(const EventBatch& b, std::string& out) {
  const auto& meta = b.meta_table();
  size_t meta_bytes = 0;
  for (size_t i = 1; i < meta.size(); ++i) meta_bytes += 4 + meta[i].size();
  out.resize(16 + meta_bytes + b.size() * kEventRecord);
  char* p = out.data();
  auto w = [&](const void* v, size_t n) {
    std::memcpy(p, v, n);
    p += n;
  };
  uint32_t n = static_cast<uint32_t>(b.size()), nm = static_cast<uint32_t>(meta.size() - 1);
  uint64_t alen = b.arena().size();
  w(&n, 4);
  w(&nm, 4);
  w(&alen, 8);
  for (size_t i = 1; i < meta.size(); ++i) {
    uint32_t len = static_cast<uint32_t>(meta[i].size());
    w(&len, 4);
    w(meta[i].data(), len);
  }
  for (const Event& e : b.events()) {
    char rec[kEventRecord];
    uint32_t flags = e.flags;
    std::memcpy(rec, &e.time_ns, 8);
    std::memcpy(rec + 8, &e.offset, 4);
    std::memcpy(rec + 12, &e.length, 4);
    std::memcpy(rec + 16, &e.fields_offset, 4);
    std::memcpy(rec + 20, &e.fields_length, 4);
    std::memcpy(rec + 24, &e.host, 2);
    std::memcpy(rec + 26, &e.source, 2);
    std::memcpy(rec + 28, &e.sourcetype, 2);
    std::memcpy(rec + 30, &e.index, 2);
    std::memcpy(rec + 32, &flags, 4);
    w(rec, kEventRecord);
  }
}

void encode_batch(const EventBatch& b, std::string& out) {
  encode_batch_head(b, out);
  out.append(b.arena());
}

bool decode_batch(std::string_view in, EventBatch& out) {
  uint32_t n = 0, nmeta = 0;
  uint64_t alen = 0;
  if (!get(in, n) || !get(in, nmeta) || !get(in, alen)) return false;
  if (nmeta >= 65535 || alen > in.size()) return false;
  std::vector<std::string> meta;
  meta.reserve(nmeta + 1);
  meta.emplace_back();
  for (uint32_t i = 0; i < nmeta; ++i) {
    uint32_t len = 0;
    if (!get(in, len) || len > in.size()) return false;
    meta.emplace_back(in.substr(0, len));
    in.remove_prefix(len);
  }
  if (static_cast<uint64_t>(n) * kEventRecord + alen != in.size()) return false;
  std::vector<Event> events(n);
  const char* p = in.data();
  for (Event& e : events) {
    uint32_t flags = 0;
    std::memcpy(&e.time_ns, p, 8);
    std::memcpy(&e.offset, p + 8, 4);
    std::memcpy(&e.length, p + 12, 4);
    std::memcpy(&e.fields_offset, p + 16, 4);
    std::memcpy(&e.fields_length, p + 20, 4);
    std::memcpy(&e.host, p + 24, 2);
    std::memcpy(&e.source, p + 26, 2);
    std::memcpy(&e.sourcetype, p + 28, 2);
    std::memcpy(&e.index, p + 30, 2);
    std::memcpy(&flags, p + 32, 4);
    p += kEventRecord;
    e.flags = static_cast<uint8_t>(flags);
    if (uint64_t(e.offset) + e.length > alen || uint64_t(e.fields_offset) + e.fields_length > alen)
      return false;
    if (e.host > nmeta || e.source > nmeta || e.sourcetype > nmeta || e.index > nmeta) return false;
  }
  out = EventBatch::from_parts(std::string(p, alen), std::move(events), std::move(meta));
  return true;
}

DiskBuffer::DiskBuffer(DiskBufferConfig cfg, std::shared_ptr<const crypto::KeyRing> ring,
                       std::string sink_id, std::string sink_type)
    : cfg_(std::move(cfg)),
      ring_(std::move(ring)),
      id_(std::move(sink_id)),
      labels_{{"component_id", id_}},
      m_(id_, std::move(sink_type), "sink"),
      blocks_written_(metrics().counter("logship_buffer_blocks_written_total",
                                        "Blocks written to the disk buffer", labels_)),
      blocks_read_(metrics().counter("logship_buffer_blocks_read_total",
                                     "Blocks read back from the disk buffer", labels_)),
      corrupt_(metrics().counter("logship_buffer_corrupt_blocks_total",
                                 "Disk buffer blocks skipped because they failed authentication or "
                                 "were unreadable",
                                 labels_)),
      expired_blocks_(metrics().counter("logship_buffer_expired_blocks_total",
                                        "Disk buffer blocks deleted unsent (buffer.max_age)",
                                        labels_)),
      expired_events_(metrics().counter("logship_buffer_expired_events_total",
                                        "Events deleted unsent from the disk buffer (max_age)",
                                        labels_)),
      torn_cut_(metrics().counter("logship_buffer_torn_blocks_cut_total",
                                  "Torn last blocks cut at start (a crash during a write)",
                                  labels_)),
      bytes_written_(metrics().counter("logship_buffer_written_bytes_total",
                                       "Bytes of blocks written to the disk buffer", labels_)),
      g_bytes_(
          metrics().gauge("logship_buffer_bytes", "Bytes queued in the sink's buffer", labels_)),
      g_events_(
          metrics().gauge("logship_buffer_events", "Events queued in the sink's buffer", labels_)),
      g_age_(metrics().gauge("logship_buffer_oldest_event_age_seconds",
                             "Age of the oldest undelivered block in the buffer (write time)",
                             labels_)),
      g_disk_bytes_(metrics().gauge("logship_buffer_disk_bytes",
                                    "Bytes of the disk buffer's segment files", labels_)),
      sync_seconds_(metrics().histogram("logship_buffer_sync_seconds",
                                        "Time an fdatasync of the disk buffer took", labels_,
                                        {0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5})) {
  if (const char* f = std::getenv("LOGSHIP_FAULT_ENOSPC_FILE")) fault_file_ = f;
  metrics()
      .gauge("logship_buffer_max_bytes", "Capacity of the sink's buffer", labels_)
      .set(static_cast<int64_t>(cfg_.max_bytes));
}

DiskBuffer::~DiskBuffer() {
  if (wfd_ >= 0) ::close(wfd_);
  if (rfd_ >= 0) ::close(rfd_);
  if (dir_fd_ >= 0) ::close(dir_fd_);
}

std::string DiskBuffer::seg_path(uint64_t id) const {
  return fmt::format("{}/{:016x}.seg", cfg_.path, id);
}

std::string DiskBuffer::describe() const {
  return fmt::format(
      "disk {} {} {}, segments {}, sync {}{}{}", cfg_.path, format_size(cfg_.max_bytes),
      cfg_.drop_newest ? "drop_newest" : "block", format_size(cfg_.segment_bytes),
      cfg_.sync_always ? std::string("always") : format_duration(cfg_.sync_interval),
      cfg_.zstd ? ", zstd" : "", cfg_.max_age ? ", max_age " + format_duration(*cfg_.max_age) : "");
}

void DiskBuffer::open() {
  std::error_code ec;
  std::filesystem::create_directories(cfg_.path, ec);
  if (ec) throw std::runtime_error(fmt::format("cannot create {}: {}", cfg_.path, ec.message()));
  ::chmod(cfg_.path.c_str(), 0700);
  dir_fd_ = ::open(cfg_.path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd_ < 0)
    throw std::runtime_error(fmt::format("cannot open {}: {}", cfg_.path, std::strerror(errno)));

  // 1. Segment files, and leftovers of an interrupted index write.
  std::vector<uint64_t> ids;
  for (auto& de : std::filesystem::directory_iterator(cfg_.path, ec)) {
    std::string name = de.path().filename().string();
    if (name.size() == 20 && name.ends_with(".seg")) {
      try {
        ids.push_back(std::stoull(name.substr(0, 16), nullptr, 16));
      } catch (...) {
      }
    } else if (name.starts_with("index.tmp")) {
      std::filesystem::remove(de.path(), ec);
    }
  }
  std::sort(ids.begin(), ids.end());

  // 2. The index: read position and sequence, authenticated by any key of the ring.
  std::optional<Pos> idx_pos;
  uint64_t idx_seq = 0;
  std::string index_problem;
  {
    std::string path = cfg_.path + "/index";
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      if (!ids.empty()) index_problem = "missing";
    } else {
      char buf[128];
      ssize_t n = ::read(fd, buf, sizeof buf);
      ::close(fd);
      bool ok = false;
      if (n == 4 + 8 + 8 + 8 + 8 + 32 && std::memcmp(buf, kIndexMagic, 4) == 0) {
        std::string_view body(buf, 36);
        std::string_view mac(buf + 36, 32);
        std::string_view keyid(buf + 28, 8);
        for (const auto* k : ring_->all()) {
          if (std::memcmp(k->id().data(), keyid.data(), 8) != 0) continue;
          if (crypto::index_mac(*k, body) == mac) ok = true;
        }
        if (ok) {
          std::string_view s(buf + 4, 24);
          Pos p;
          get(s, p.seg);
          get(s, p.off);
          get(s, idx_seq);
          idx_pos = p;
        }
      }
      if (!ok) index_problem = "damaged (it does not authenticate under any configured key)";
    }
  }

  // 3. Scan the segments' headers (no change on disk yet).
  struct Cut {
    uint64_t seg, at;
  };
  std::vector<Cut> cuts;
  std::vector<uint64_t> obsolete;
  std::map<std::string, std::string> missing_keys;  // key id -> a segment holding it
  uint64_t max_seq = 0;
  opener_ = std::make_unique<crypto::BlockOpener>(ring_);
  for (size_t i = 0; i < ids.size(); ++i) {
    uint64_t id = ids[i];
    if (idx_pos && id < idx_pos->seg) {
      obsolete.push_back(id);
      continue;
    }
    int fd = ::open(seg_path(id).c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0)
      throw std::runtime_error(
          fmt::format("cannot open {}: {}", seg_path(id), std::strerror(errno)));
    uint64_t size = file_size(fd);
    Segment s;
    uint64_t off = 0, last_block = ~0ull;
    crypto::BlockHeader last_h;
    bool last = i + 1 == ids.size();
    uint8_t hb[crypto::kBlockHeaderBytes];
    while (off + crypto::kBlockHeaderBytes <= size) {
      crypto::BlockHeader h;
      if (!pread_all(fd, hb, sizeof hb, off) || !crypto::BlockHeader::decode(hb, h)) {
        off = resync(fd, off + 1, size);
        continue;
      }
      if (off + h.block_bytes() > size) break;  // torn
      // Only blocks still to deliver need their key (those before the index's position were
      // delivered: their key may be gone already).
      bool delivered = idx_pos && id == idx_pos->seg && off < idx_pos->off;
      if (!delivered && !ring_->find(h.key_id.data()))
        missing_keys.emplace(h.key_id_hex(), seg_path(id));
      if (s.blocks == 0) s.first_time = h.time_ns;
      s.last_time = h.time_ns;
      s.blocks++;
      s.events += h.events;
      max_seq = std::max(max_seq, h.sequence);
      last_block = off;
      last_h = h;
      off += h.block_bytes();
    }
    uint64_t end = off;
    if (last && last_block != ~0ull && ring_->find(last_h.key_id.data())) {
      // The last block of the last segment: length and tag, so a write cut by a crash is cut.
      std::string sealed(last_h.sealed_len + crypto::kBlockTagBytes, '\0');
      std::string plain;
      pread_all(fd, hb, sizeof hb, last_block);
      if (!pread_all(fd, sealed.data(), sealed.size(), last_block + crypto::kBlockHeaderBytes) ||
          !opener_->open(last_h, hb, sealed, plain).empty()) {
        end = last_block;
        s.blocks--;
        s.events -= last_h.events;
      }
    }
    ::close(fd);
    if (last && end < size) cuts.push_back({id, end});
    s.size = last ? end : size;
    segs_[id] = s;
  }
  if (!missing_keys.empty()) {
    auto it = missing_keys.begin();
    throw std::runtime_error(fmt::format(
        "disk buffer {}: {} holds blocks under key id {}, which is neither encryption's current "
        "key nor one of its previous_key_files; configure that key (as a previous key) to drain "
        "them. Nothing in the buffer was changed",
        cfg_.path, it->second, it->first));
  }

  // 4. Repairs.
  for (uint64_t id : obsolete) {
    ::unlink(seg_path(id).c_str());
  }
  for (auto& c : cuts) {
    uint64_t size = 0;
    int fd = ::open(seg_path(c.seg).c_str(), O_WRONLY | O_CLOEXEC);
    if (fd >= 0) {
      size = file_size(fd);
      if (::ftruncate(fd, static_cast<off_t>(c.at)) != 0 || ::fsync(fd) != 0)
        spdlog::error("disk buffer {}: cannot cut {}: {}", id_, seg_path(c.seg),
                      std::strerror(errno));
      ::close(fd);
    }
    torn_cut_.inc();
    spdlog::warn(
        "disk buffer {}: {} ended with a torn block (a write interrupted by a crash): "
        "cut {} bytes at offset {}",
        id_, seg_path(c.seg), size - c.at, c.at);
  }
  if (!index_problem.empty())
    spdlog::warn(
        "disk buffer {}: the index is {}; rebuilt from the {} segment(s): delivery "
        "restarts at the oldest block on disk (blocks already delivered are sent again)",
        id_, index_problem, segs_.size());

  // 5. Positions.
  frontier_ = Pos{segs_.empty() ? 0 : segs_.begin()->first, 0};
  if (idx_pos) {
    auto it = segs_.lower_bound(idx_pos->seg);
    if (it != segs_.end() && it->first == idx_pos->seg && idx_pos->off <= it->second.size)
      frontier_ = *idx_pos;
    else if (it != segs_.end())
      frontier_ = Pos{it->first, 0};
  }
  // Released parts of the frontier's segment: events are not known per block without reading,
  // so the segment is read from the frontier and its earlier events are counted as released.
  if (auto it = segs_.find(frontier_.seg); it != segs_.end() && frontier_.off > 0) {
    int fd = ::open(seg_path(it->first).c_str(), O_RDONLY | O_CLOEXEC);
    uint64_t off = 0;
    uint8_t hb[crypto::kBlockHeaderBytes];
    while (fd >= 0 && off < frontier_.off && off + crypto::kBlockHeaderBytes <= it->second.size) {
      crypto::BlockHeader h;
      if (!pread_all(fd, hb, sizeof hb, off) || !crypto::BlockHeader::decode(hb, h)) {
        off = resync(fd, off + 1, frontier_.off);
        continue;
      }
      it->second.done_events += h.events;
      off += h.block_bytes();
    }
    if (fd >= 0) ::close(fd);
    it->second.done_bytes = frontier_.off;
  }
  for (auto& [id, s] : segs_) {
    if (id < frontier_.seg) {
      s.done_bytes = s.size;
      s.done_events = s.events;
    }
    disk_bytes_ += s.size;
  }
  cursor_ = frontier_;
  next_seq_ = std::max(idx_seq, max_seq + 1);
  index_seq_written_ = idx_seq;

  // 6. A new segment for this run's writes.
  wseg_ = segs_.empty() ? 1 : segs_.rbegin()->first + 1;
  if (!roll()) throw std::runtime_error(fail_msg_);
  uint64_t events = 0, with_events = 0;
  for (auto& [id, s] : segs_) {
    events += s.events - s.done_events;
    with_events += s.events > s.done_events ? 1 : 0;
  }
  if (events > 0)
    spdlog::info("disk buffer {}: {} event(s) in {} segment(s) ({}) to deliver", id_, events,
                 with_events, format_size(disk_bytes_));
  std::lock_guard lk(mu_);
  update_gauges_locked();
}

bool DiskBuffer::roll() {
  if (wfd_ >= 0) {
    ::fdatasync(wfd_);
    ::close(wfd_);
    wfd_ = -1;
  }
  uint64_t id;
  {
    std::lock_guard lk(mu_);
    id = segs_.empty() ? std::max<uint64_t>(wseg_, 1) : std::max(wseg_, segs_.rbegin()->first + 1);
    if (segs_.count(wseg_) && segs_[wseg_].size == 0) id = wseg_;  // reuse an empty one
  }
  std::string path = seg_path(id);
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) {
    fail_msg_ = fmt::format("cannot create the buffer segment {}: {}", path, std::strerror(errno));
    return false;
  }
  ::fsync(dir_fd_);
  if (!sealer_ || &sealer_->key() != ring_->current())
    sealer_ = std::make_unique<crypto::BlockSealer>(*ring_->current(), cfg_.zstd,
                                                    crypto::random_bytes(4));
  std::lock_guard lk(mu_);
  wfd_ = fd;
  wseg_ = id;
  segs_.try_emplace(id);
  return true;
}

DiskBuffer::Append DiskBuffer::append(const EventBatch& b) {
  encode_batch_head(b, plain_);  // the arena is compressed from where it is, not copied
  block_.clear();
  std::string err;
  int64_t t = now_ns();
  if (!sealer_->seal(crypto::BlockKind::kBatch, next_seq_, t, static_cast<uint32_t>(b.size()),
                     plain_, block_, &err, b.arena())) {
    report_error(m_, "buffer", "encrypt", fmt::format("disk buffer {}: {}", id_, err));
    return Append::kFailed;
  }
  uint64_t wsize;
  {
    std::lock_guard lk(mu_);
    if (disk_bytes_ > 0 && disk_bytes_ + block_.size() > cfg_.max_bytes) return Append::kFull;
    wsize = segs_[wseg_].size;
  }
  if (wsize > 0 && wsize + block_.size() > cfg_.segment_bytes) {
    if (!roll()) {
      report_error(m_, "buffer", "segment", fail_msg_);
      return Append::kFailed;
    }
    wsize = 0;
  }
  int err_no = 0;
  if (!fault_file_.empty() && ::access(fault_file_.c_str(), F_OK) == 0) {
    err_no = ENOSPC;
  } else {
    const char* p = block_.data();
    size_t left = block_.size();
    while (left > 0) {
      ssize_t n = ::write(wfd_, p, left);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        err_no = n < 0 ? errno : EIO;
        break;
      }
      p += n;
      left -= static_cast<size_t>(n);
    }
  }
  if (err_no != 0) {
    if (::ftruncate(wfd_, static_cast<off_t>(wsize)) != 0) {
      // The next open cuts what is left (a torn block).
    }
    if (!failing_) {
      failing_ = true;
      accepting_ = false;
      report_error(m_, "buffer", err_no == ENOSPC ? "disk_full" : "write",
                   fmt::format("disk buffer {}: cannot write {}: {}{}; holding input "
                               "(backpressure), retrying every second",
                               id_, seg_path(wseg_), std::strerror(err_no),
                               err_no == ENOSPC ? " (disk full)" : ""),
                   1, true);
    }
    return Append::kFailed;
  }
  if (failing_) {
    failing_ = false;
    accepting_ = true;
    spdlog::info("disk buffer {}: writes succeed again; input resumed", id_);
  }
  ++next_seq_;
  blocks_written_.inc();
  bytes_written_.inc(block_.size());
  std::lock_guard lk(mu_);
  Segment& s = segs_[wseg_];
  if (s.blocks == 0) s.first_time = t;
  s.last_time = t;
  s.blocks++;
  s.events += b.size();
  s.size += block_.size();
  disk_bytes_ += block_.size();
  data_wq_.notify_all();
  return Append::kOk;
}

bool DiskBuffer::sync_locked_fd(std::vector<AckHandle>& unsynced) {
  if (unsynced.empty()) return true;
  auto t0 = std::chrono::steady_clock::now();
  int rc = ::fdatasync(wfd_);
  sync_seconds_.observe(
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  DeliveryStatus st = DeliveryStatus::kDelivered;
  if (rc != 0) {
    report_error(m_, "buffer", "sync",
                 fmt::format("disk buffer {}: fdatasync {} failed: {}; the batches are not "
                             "acknowledged (their sources read them again after a restart)",
                             id_, seg_path(wseg_), std::strerror(errno)));
    st = DeliveryStatus::kErrored;
  }
  for (auto& a : unsynced) a.finish(st);
  unsynced.clear();
  return rc == 0;
}

void DiskBuffer::write_index() {
  Pos f;
  {
    std::lock_guard lk(mu_);
    f = frontier_;
  }
  if (f == index_written_ && next_seq_ <= index_seq_written_ + 100000) return;
  const crypto::MasterKey* k = ring_->current();
  std::string body(kIndexMagic, 4);
  put<uint64_t>(body, f.seg);
  put<uint64_t>(body, f.off);
  // The persisted sequence runs ahead of what was used (as a reservation), so a lost tail never
  // brings a sequence number back under the same nonce prefix.
  uint64_t seq = next_seq_ + 100000;
  put<uint64_t>(body, seq);
  body.append(reinterpret_cast<const char*>(k->id().data()), 8);
  body += crypto::index_mac(*k, body);
  std::string tmp = cfg_.path + "/index.tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  bool ok = fd >= 0 && ::write(fd, body.data(), body.size()) == static_cast<ssize_t>(body.size()) &&
            ::fdatasync(fd) == 0;
  if (fd >= 0) ::close(fd);
  if (ok) ok = ::rename(tmp.c_str(), (cfg_.path + "/index").c_str()) == 0;
  if (!ok) {
    report_error_for(m_, "buffer", "index", cfg_.path, std::chrono::seconds(60),
                     fmt::format("disk buffer {}: cannot write {}/index: {}", id_, cfg_.path,
                                 std::strerror(errno)));
    ::unlink(tmp.c_str());
    return;
  }
  ::fsync(dir_fd_);
  index_written_ = f;
  index_seq_written_ = seq;
}

void DiskBuffer::housekeeping() {
  // Retention: whole segments whose newest block is older than max_age go unread.
  std::vector<uint64_t> drop;
  bool roll_now = false;
  {
    std::lock_guard lk(mu_);
    int64_t now = now_ns();
    if (cfg_.max_age) {
      int64_t cutoff = now - static_cast<int64_t>(cfg_.max_age->count());
      for (auto& [id, s] : segs_) {
        if (s.blocks == 0 || s.last_time >= cutoff) break;
        if (id == wseg_) {
          roll_now = true;
          break;
        }
        if (s.expired) continue;
        // Blocks already handed to the sink (read-ahead, requests in flight) are delivered, not
        // expired: they keep their in-flight entries and are released as usual.
        uint64_t fl_events = 0, fl_bytes = 0, fl_blocks = 0;
        for (auto it = inflight_.lower_bound(Pos{id, 0});
             it != inflight_.end() && it->first.seg == id; ++it)
          if (!it->second.done) {
            fl_events += it->second.events;
            fl_bytes += it->second.bytes;
            ++fl_blocks;
          }
        uint64_t ev = s.events - std::min(s.events, s.done_events + fl_events);
        if (ev > 0) {
          // Blocks not yet read: the segment's blocks minus those read (released or in flight)
          // is not known exactly without a scan; the events are.
          uint64_t bl =
              std::max<uint64_t>(1, s.blocks - std::min(s.blocks, fl_blocks + s.released_blocks));
          expired_events_.inc(ev);
          expired_blocks_.inc(bl);
          spdlog::warn(
              "disk buffer {}: deleted {} unsent event(s) of {} older than max_age {} "
              "(retention)",
              id_, ev, seg_path(id), format_duration(*cfg_.max_age));
        }
        s.done_events = s.events - fl_events;
        s.done_bytes = s.size - fl_bytes;
        s.expired = true;
        if (cursor_.seg <= id) {
          auto nx = segs_.upper_bound(id);
          cursor_ = Pos{nx == segs_.end() ? wseg_ : nx->first, 0};
          ++cursor_gen_;
        }
      }
      advance_frontier_locked();
    }
    // A drained write segment is rolled when its space is wanted: it is over half a segment, or
    // the buffer is full.
    const Segment& w = segs_[wseg_];
    if (w.size > 0 && frontier_ == Pos{wseg_, w.size} &&
        (w.size >= cfg_.segment_bytes / 2 || disk_bytes_ + (1 << 20) > cfg_.max_bytes))
      roll_now = true;
  }
  if (roll_now && !roll()) report_error(m_, "buffer", "segment", fail_msg_);
  {
    std::lock_guard lk(mu_);
    advance_frontier_locked();
  }
  // The index first, then the segments it passed (either order is safe at the next open).
  write_index();
  {
    std::lock_guard lk(mu_);
    for (auto& [id, s] : segs_) {
      if (id >= frontier_.seg || id >= wseg_) break;
      if (id < index_written_.seg) drop.push_back(id);
    }
  }
  for (uint64_t id : drop) {
    if (::unlink(seg_path(id).c_str()) != 0 && errno != ENOENT) {
      report_error_for(m_, "buffer", "delete", seg_path(id), std::chrono::seconds(60),
                       fmt::format("disk buffer {}: cannot delete {}: {}", id_, seg_path(id),
                                   std::strerror(errno)));
      continue;
    }
    std::lock_guard lk(mu_);
    disk_bytes_ -= segs_[id].size;
    segs_.erase(id);
  }
  std::lock_guard lk(mu_);
  update_gauges_locked();
}

void DiskBuffer::update_gauges_locked() {
  uint64_t bytes = 0, events = 0;
  int64_t oldest = 0;
  for (auto& [id, s] : segs_) {
    bytes += s.size - std::min(s.size, s.done_bytes);
    events += s.events - std::min(s.events, s.done_events);
    if (!oldest && s.events > s.done_events) oldest = s.first_time;
  }
  for (auto& [p, f] : inflight_)
    if (!f.done) {
      oldest = oldest ? std::min(oldest, f.time) : f.time;
      break;
    }
  g_bytes_.set(static_cast<int64_t>(bytes));
  g_events_.set(static_cast<int64_t>(events));
  g_disk_bytes_.set(static_cast<int64_t>(disk_bytes_));
  g_age_.set(oldest ? std::max<int64_t>(0, (now_ns() - oldest) / 1000000000) : 0);
}

uint64_t DiskBuffer::pending_bytes() const {
  std::lock_guard lk(mu_);
  uint64_t bytes = 0;
  for (auto& [id, s] : segs_) bytes += s.size - std::min(s.size, s.done_bytes);
  return bytes;
}

uint64_t DiskBuffer::pending_events() const {
  std::lock_guard lk(mu_);
  uint64_t events = 0;
  for (auto& [id, s] : segs_) events += s.events - std::min(s.events, s.done_events);
  return events;
}

void DiskBuffer::advance_frontier_locked() {
  while (!inflight_.empty() && inflight_.begin()->second.done) inflight_.erase(inflight_.begin());
  Pos f = inflight_.empty() ? cursor_ : inflight_.begin()->first;
  if (frontier_ < f) frontier_ = f;
}

void DiskBuffer::skip_locked(uint64_t seg, uint64_t from, uint64_t to, uint64_t events) {
  auto it = segs_.find(seg);
  if (it != segs_.end()) {
    it->second.done_bytes += to - from;
    it->second.done_events += events;
    it->second.released_blocks++;
  }
}

void DiskBuffer::release(Pos p, DeliveryStatus s) {
  std::lock_guard lk(mu_);
  auto it = inflight_.find(p);
  if (it == inflight_.end()) return;  // its segment expired meanwhile
  if (!is_final(s)) return;           // shutdown: it stays, and is read again at the next start
  it->second.done = true;
  skip_locked(p.seg, 0, it->second.bytes, it->second.events);
  advance_frontier_locked();
}

std::optional<DiskBuffer::ReadResult> DiskBuffer::read_next() {
  for (;;) {
    Pos at;
    uint64_t end;
    uint64_t gen;
    {
      std::lock_guard lk(mu_);
      auto it = segs_.find(cursor_.seg);
      if (it == segs_.end()) {
        auto nx = segs_.upper_bound(cursor_.seg);
        if (nx == segs_.end()) return std::nullopt;
        cursor_ = Pos{nx->first, 0};
        continue;
      }
      end = it->second.size;
      if (cursor_.off >= end) {
        if (cursor_.seg >= wseg_) return std::nullopt;  // caught up with the writer
        auto nx = segs_.upper_bound(cursor_.seg);
        if (nx == segs_.end()) return std::nullopt;
        cursor_ = Pos{nx->first, 0};
        advance_frontier_locked();
        continue;
      }
      at = cursor_;
      gen = cursor_gen_;
    }
    if (rfd_seg_ != at.seg) {
      if (rfd_ >= 0) ::close(rfd_);
      rfd_ = ::open(seg_path(at.seg).c_str(), O_RDONLY | O_CLOEXEC);
      rfd_seg_ = at.seg;
      if (rfd_ < 0) {
        report_error_for(m_, "buffer", "read", seg_path(at.seg), std::chrono::seconds(60),
                         fmt::format("disk buffer {}: cannot open {}: {}; its blocks are skipped",
                                     id_, seg_path(at.seg), std::strerror(errno)));
        rfd_seg_ = ~0ull;
        std::lock_guard lk(mu_);
        if (gen == cursor_gen_ && cursor_ == at) {
          skip_locked(at.seg, at.off, end, 0);
          cursor_.off = end;
        }
        continue;
      }
    }
    uint8_t hb[crypto::kBlockHeaderBytes];
    crypto::BlockHeader h;
    std::string problem;
    uint64_t next = 0;
    bool ok_header = pread_all(rfd_, hb, sizeof hb, at.off) && crypto::BlockHeader::decode(hb, h) &&
                     at.off + h.block_bytes() <= end;
    if (!ok_header) {
      next = resync(rfd_, at.off + 1, end);
      problem = "no valid block header";
    } else {
      next = at.off + h.block_bytes();
      rbuf_.resize(h.sealed_len + crypto::kBlockTagBytes);
      if (!pread_all(rfd_, rbuf_.data(), rbuf_.size(), at.off + crypto::kBlockHeaderBytes)) {
        problem = "short read";
      } else if (cfg_.max_age &&
                 h.time_ns < now_ns() - static_cast<int64_t>(cfg_.max_age->count())) {
        std::lock_guard lk(mu_);
        if (gen != cursor_gen_ || cursor_ != at) continue;
        expired_blocks_.inc();
        expired_events_.inc(h.events);
        report_error_for(
            m_, "buffer", "expired", id_, std::chrono::seconds(10),
            fmt::format("disk buffer {}: deleting unsent blocks older than max_age "
                        "{} (retention); first: {} event(s) at {} offset {}",
                        id_, format_duration(*cfg_.max_age), h.events, seg_path(at.seg), at.off));
        skip_locked(at.seg, at.off, next, h.events);
        cursor_.off = next;
        advance_frontier_locked();
        continue;
      } else if (auto e = opener_->open(h, hb, rbuf_, rplain_); !e.empty()) {
        problem = e;
      } else {
        EventBatch b;
        if (!decode_batch(rplain_, b)) {
          problem = "the payload is not a batch";
        } else {
          blocks_read_.inc();
          std::lock_guard lk(mu_);
          if (gen != cursor_gen_ || cursor_ != at) continue;
          cursor_.off = next;
          inflight_[at] = InFlight{h.events, h.block_bytes(), h.time_ns, false};
          ReadResult r;
          r.batch = std::move(b);
          r.pos = at;
          return r;
        }
      }
    }
    std::lock_guard lk(mu_);
    if (gen != cursor_gen_ || cursor_ != at) continue;
    corrupt_.inc();
    report_error(m_, "buffer", "corrupt_block",
                 fmt::format("disk buffer {}: skipped a block at {} offset {} ({} bytes): {}", id_,
                             seg_path(at.seg), at.off, next - at.off, problem),
                 1, true);
    skip_locked(at.seg, at.off, next, ok_header ? h.events : 0);
    cursor_.off = next;
    advance_frontier_locked();
  }
}

awaitable<void> DiskBuffer::run_writer(BatchChannel& in, BatchChannel& out, Lifecycle& abort) {
  std::vector<AckHandle> unsynced;
  std::optional<BatchRef> held;
  auto tick = cfg_.sync_interval;
  auto next_tick = std::chrono::steady_clock::now() + tick;
  bool closed = false;
  for (;;) {
    if (abort.stopping()) break;
    auto now = std::chrono::steady_clock::now();
    if (!held && !closed) {
      bool timed_out = false;
      auto left = next_tick > now ? next_tick - now : std::chrono::steady_clock::duration::zero();
      auto item = co_await in.receive_for(left, timed_out);
      if (item) {
        held = std::move(*item);
      } else if (!timed_out) {
        closed = true;
      }
    }
    if (held) {
      Append r = append(*held->batch);
      if (r == Append::kOk) {
        unsynced.push_back(std::move(held->ack));
        held.reset();
        if (full_logged_) full_logged_ = false;
        if (cfg_.sync_always) sync_locked_fd(unsynced);
      } else if (r == Append::kFull && cfg_.drop_newest) {
        m_.dropped("buffer_full").inc(held->batch->size());
        held->ack.finish(DeliveryStatus::kDropped);
        held.reset();
      } else {
        if (r == Append::kFull && !full_logged_) {
          full_logged_ = true;
          spdlog::warn(
              "disk buffer {}: full ({} of max_bytes {}); holding input until the sink "
              "delivers (when_full: block)",
              id_, format_size(disk_bytes_), format_size(cfg_.max_bytes));
        }
        sync_locked_fd(unsynced);
        housekeeping();
        next_tick = std::chrono::steady_clock::now() + tick;
        if (co_await abort.sleep(r == Append::kFailed ? std::chrono::milliseconds(1000)
                                                      : std::chrono::milliseconds(50)))
          break;
        continue;
      }
    }
    if (std::chrono::steady_clock::now() >= next_tick || closed) {
      sync_locked_fd(unsynced);
      housekeeping();
      next_tick = std::chrono::steady_clock::now() + tick;
    }
    if (closed && !held) break;
  }
  sync_locked_fd(unsynced);
  {
    std::lock_guard lk(mu_);
    writer_done_ = true;
    data_wq_.notify_all();
  }
  out.close();
  co_return;
}

awaitable<void> DiskBuffer::run_reader(BatchChannel& out) {
  for (;;) {
    {
      std::lock_guard lk(mu_);
      if (writer_done_) break;
    }
    auto r = read_next();
    if (!r) {
      co_await data_wq_.wait(
          mu_,
          [&] {
            if (writer_done_) return true;
            auto it = segs_.find(cursor_.seg);
            return (it != segs_.end() && cursor_.off < it->second.size) || cursor_.seg < wseg_;
          },
          std::chrono::milliseconds(200));
      continue;
    }
    auto batch = std::make_shared<EventBatch>(std::move(*r->batch));
    size_t bytes = batch->byte_size();
    Pos p = r->pos;
    // A named item: GCC 12 destroys a braced temporary in a co_await argument twice.
    BatchRef item;
    item.batch = std::move(batch);
    item.ack = AckHandle::make([this, p](DeliveryStatus s) { release(p, s); });
    bool sent = co_await out.send(std::move(item), bytes);
    if (!sent) break;
  }
  if (rfd_ >= 0) {
    ::close(rfd_);
    rfd_ = -1;
    rfd_seg_ = ~0ull;
  }
  co_return;
}

void DiskBuffer::close() {
  {
    std::lock_guard lk(mu_);
    advance_frontier_locked();
  }
  write_index();
  if (wfd_ >= 0) {
    ::fdatasync(wfd_);
    ::close(wfd_);
    wfd_ = -1;
  }
  // An empty write segment is not kept.
  std::lock_guard lk(mu_);
  if (auto it = segs_.find(wseg_); it != segs_.end() && it->second.size == 0) {
    ::unlink(seg_path(wseg_).c_str());
    segs_.erase(it);
  }
  update_gauges_locked();
}

}  // namespace logship
