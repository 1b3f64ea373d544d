#include "plugins/sources/file/replay_source.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <filesystem>
#include <mutex>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "agent/observe/metrics.h"
#include "agent/pipeline/checkpoints.h"
#include "agent/pipeline/event_id.h"
#include "agent/replay/replay.h"
#include "plugins/formats/decompress.h"
#include "plugins/sources/file/decoder.h"
#include "plugins/sources/file/discovery.h"
#include "plugins/sources/s3/state.h"

namespace logship {
namespace {

constexpr size_t kReadBytes = 1 << 20;
constexpr size_t kBatchBytes = 1 << 20;
constexpr size_t kBatchEvents = 10000;

struct ArchivedFile {
  std::string path;
  uint64_t size = 0;
  int64_t mtime_ns = 0;
  /// The file's name in the run's state: path, size and mtime (a file rewritten since is new).
  s3::ObjectInfo info() const {
    s3::ObjectInfo o;
    o.key = path;
    o.etag = fmt::format("{}:{}", size, mtime_ns);
    o.last_modified_ns = mtime_ns;
    o.size = size;
    return o;
  }
};

/// Delivery bookkeeping of one file: batches are acknowledged in any order; the state keeps the
/// acknowledged prefix of its events; the file is done once it was read to the end and every
/// batch is final.
struct FileProgress {
  s3::ObjectInfo obj;
  s3::State* state = nullptr;
  CheckpointStore* checkpoints = nullptr;
  std::string id;
  replay::Progress* progress = nullptr;
  std::mutex mu;
  struct Pending {
    uint64_t end;
    bool final;
  };
  std::deque<Pending> pending;
  bool complete = false, finished = false;

  void add(uint64_t end) {
    std::lock_guard lk(mu);
    pending.push_back({end, false});
  }
  void ack(uint64_t end, DeliveryStatus s) {
    std::lock_guard lk(mu);
    for (auto& p : pending)
      if (p.end == end && is_final(s)) p.final = true;
    bool moved = false;
    uint64_t acked = 0;
    while (!pending.empty() && pending.front().final) {
      acked = pending.front().end;
      pending.pop_front();
      moved = true;
    }
    if (moved) state->progress(obj, acked);
    check_done_locked();
    if (moved) checkpoints->mark_dirty(id);
  }
  void read_to_end() {
    std::lock_guard lk(mu);
    complete = true;
    check_done_locked();
  }

 private:
  void check_done_locked() {
    if (finished || !complete || !pending.empty()) return;
    finished = true;
    state->done(obj);
    checkpoints->mark_dirty(id);
    progress->units_done.fetch_add(1, std::memory_order_relaxed);
    progress->bytes_done.fetch_add(obj.size, std::memory_order_relaxed);
  }
};

class FileReplaySource final : public Source {
 public:
  FileReplaySource(FileSourceConfig cfg, const ComponentContext& ctx)
      : cfg_(std::move(cfg)), ctx_(ctx), rp_(ctx.replay), m_(ctx.id, ctx.type, ctx.kind) {
    if (rp_->limiter) {
      batch_bytes_ = rp_->limiter->batch_bytes(kBatchBytes);
      batch_events_ = rp_->limiter->batch_events(kBatchEvents);
    }
    char hn[256] = {0};
    if (cfg_.host.empty() && ::gethostname(hn, sizeof hn - 1) == 0) cfg_.host = hn;
  }

  awaitable<void> run(Fanout& out) override {
    replay::Progress& P = rp_->progress;
    std::string err;
    if (!state_.load(ctx_.checkpoints->load(ctx_.id), &err))
      spdlog::warn("[{}] replay state unreadable ({}); reading every file from its start", ctx_.id,
                   err);
    ctx_.checkpoints->set_provider(ctx_.id, [this] { return state_.serialize(); });

    std::vector<ArchivedFile> files = list_files();
    const replay::TimeWindow& w = rp_->window;
    std::vector<ArchivedFile> selected;
    for (auto& f : files) {
      // A file last written before `since` holds no event of the window.
      if (w.since_ns && f.mtime_ns < *w.since_ns) {
        P.units_outside.fetch_add(1, std::memory_order_relaxed);
        continue;
      }
      P.units_selected.fetch_add(1, std::memory_order_relaxed);
      P.bytes_selected.fetch_add(f.size, std::memory_order_relaxed);
      if (state_.status(f.info()) == s3::State::Status::kDone) {
        P.units_skipped.fetch_add(1, std::memory_order_relaxed);
        P.bytes_read.fetch_add(f.size, std::memory_order_relaxed);
        continue;
      }
      if (rp_->dry_run) {
        P.saw_time(f.mtime_ns);
        continue;
      }
      selected.push_back(std::move(f));
    }
    P.listing_done = true;
    spdlog::info("[{}] replaying {} file(s) ({} already done)", ctx_.id, selected.size(),
                 P.units_skipped.load());
    for (auto& f : selected) {
      if (ctx_.lifecycle->stopping()) break;
      co_await read_file(f, out);
    }
    ctx_.checkpoints->mark_dirty(ctx_.id);
  }

 private:
  std::vector<ArchivedFile> list_files() {
    std::vector<std::string> globs;
    for (auto& f : rp_->from) {
      std::error_code ec;
      globs.push_back(std::filesystem::is_directory(f, ec) ? (f.back() == '/' ? f : f + "/") + "*"
                                                           : f);
    }
    std::vector<ArchivedFile> files;
    for (auto& path : discover_files(globs, cfg_.exclude)) {
      struct stat st {};
      if (::stat(path.c_str(), &st) != 0) {
        rp_->progress.fail(path, fmt::format("cannot stat: {}", std::strerror(errno)));
        continue;
      }
      if (!S_ISREG(st.st_mode)) continue;
      files.push_back({path, static_cast<uint64_t>(st.st_size),
                       int64_t(st.st_mtim.tv_sec) * replay::kNsPerSec + st.st_mtim.tv_nsec});
    }
    // Rotated archives: oldest first (app.log.3.gz before app.log.2.gz), then by name.
    std::sort(files.begin(), files.end(), [](const ArchivedFile& a, const ArchivedFile& b) {
      return a.mtime_ns != b.mtime_ns ? a.mtime_ns < b.mtime_ns : a.path < b.path;
    });
    return files;
  }

  class Emitter final : public EventEmitter {
   public:
    Emitter(FileReplaySource& src, const ArchivedFile& f, const LineDecoder& dec, uint64_t skip)
        : src_(src),
          f_(f),
          dec_(dec),
          skip_(skip),
          identity_(fmt::format("{}\n{}\n{}", f.path, f.size, f.mtime_ns)) {
      start();
    }
    void start() {
      batch = EventBatch();
      batch.reserve(std::min<size_t>(1024, src_.batch_events_), src_.batch_bytes_ + 64 * 1024);
      meta_[0] = batch.intern(src_.cfg_.host);
      meta_[1] = batch.intern(src_.cfg_.source ? *src_.cfg_.source : f_.path);
      meta_[2] = batch.intern(src_.cfg_.sourcetype);
      meta_[3] = batch.intern(src_.cfg_.index);
    }
    void emit(std::string_view text, int64_t time_ns, uint8_t flags) override {
      uint64_t seq = index++;
      if (seq < skip_) return;
      if (!src_.rp_->window.contains(time_ns)) {
        src_.rp_->progress.events_outside.fetch_add(1, std::memory_order_relaxed);
        return;
      }
      src_.rp_->progress.saw_time(time_ns);
      Event& e = batch.add(text, time_ns);
      e.host = meta_[0];
      e.source = meta_[1];
      e.sourcetype = meta_[2];
      e.index = meta_[3];
      e.flags = flags;
      std::string_view stream = dec_.last_stream();
      std::string_view f = stream == "stdout"   ? R"({"stream":"stdout"})"
                           : stream == "stderr" ? R"({"stream":"stderr"})"
                                                : std::string_view();
      if (src_.cfg_.event_id) {
        fields_ = with_event_id(f, event_id(src_.ctx_.id, identity_, position, seq_in_position++));
        f = fields_;
      }
      if (!src_.rp_->mark.empty()) {
        fields_ = replay::with_mark(f, src_.rp_->mark);
        f = fields_;
      }
      if (!f.empty()) batch.set_fields(batch.events().back(), f);
      if (batch.text_bytes() >= src_.batch_bytes_ || batch.size() >= src_.batch_events_) {
        ready.emplace_back(std::move(batch), index);
        start();
      }
    }
    EventBatch batch;
    std::vector<std::pair<EventBatch, uint64_t>> ready;
    uint64_t index = 0;  ///< events decoded from the file (including skipped ones)
    uint64_t position = 0;
    uint32_t seq_in_position = 0;

   private:
    FileReplaySource& src_;
    const ArchivedFile& f_;
    const LineDecoder& dec_;
    uint64_t skip_;
    std::string identity_, fields_;
    uint16_t meta_[4] = {0, 0, 0, 0};
  };

  awaitable<void> read_file(const ArchivedFile& f, Fanout& out) {
    replay::Progress& P = rp_->progress;
    s3::ObjectInfo info = f.info();
    auto prog = std::make_shared<FileProgress>();
    prog->obj = info;
    prog->state = &state_;
    prog->checkpoints = ctx_.checkpoints;
    prog->id = ctx_.id;
    prog->progress = &P;
    const uint64_t skip = state_.resume_point(info);
    if (skip > 0)
      spdlog::info("[{}] resuming {} after event {} (delivered before)", ctx_.id, f.path, skip);
    int fd = ::open(f.path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      P.fail(f.path, fmt::format("cannot open: {}", std::strerror(errno)));
      P.units_failed.fetch_add(1, std::memory_order_relaxed);
      co_return;
    }
    ::posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    auto decoder = make_line_decoder(cfg_.decode, m_);
    Emitter em(*this, f, *decoder, skip);
    std::string failure;
    bool stopped = false;
    uint64_t pos = 0;  // decompressed offset of the next byte
    uint64_t line_start = 0;
    std::string carry;                     // the start of a line cut by the end of a piece
    const int64_t read_time = f.mtime_ns;  // events without a time of their own
    const uint64_t max_line = std::max<uint64_t>(cfg_.max_line_bytes, 1);
    auto line_out = [&](std::string_view line, bool truncated, uint64_t start, uint64_t end) {
      if (!line.empty() && line.back() == '\r' && !truncated) line.remove_suffix(1);
      em.position = decoder->held_from().value_or(start);
      em.seq_in_position = 0;
      decoder->line(line, truncated, start, end, read_time, em);
    };
    auto split = [&](std::string_view d) {
      size_t b = 0;
      while (b < d.size()) {
        size_t nl = d.find('\n', b);
        if (nl == std::string_view::npos) {
          carry.append(d.substr(b));
          pos += d.size() - b;
          while (carry.size() > max_line) {  // an overlong line goes on in pieces
            line_out(std::string_view(carry).substr(0, max_line), true, line_start,
                     line_start + max_line);
            carry.erase(0, max_line);
            line_start += max_line;
          }
          return;
        }
        std::string_view seg = d.substr(b, nl - b);
        pos += nl + 1 - b;
        std::string_view line = seg;
        if (!carry.empty()) {
          carry.append(seg);
          line = carry;
        }
        while (line.size() > max_line) {
          line_out(line.substr(0, max_line), true, line_start, line_start + max_line);
          line.remove_prefix(max_line);
          line_start += max_line;
        }
        line_out(line, false, line_start, pos);
        line_start = pos;
        carry.clear();
        b = nl + 1;
      }
    };
    auto send_ready = [&]() -> awaitable<bool> {
      for (auto& [b, end] : em.ready) {
        if (b.empty()) continue;
        uint64_t text = 0;
        for (const Event& e : b.events()) text += e.length;
        if (!co_await replay::throttle(rp_->limiter ? &*rp_->limiter : nullptr, *ctx_.lifecycle,
                                       text, b.size())) {
          em.ready.clear();
          co_return false;
        }
        P.events_sent.fetch_add(b.size(), std::memory_order_relaxed);
        P.event_bytes_sent.fetch_add(text, std::memory_order_relaxed);
        m_.received_events.inc(b.size());
        m_.received_bytes.inc(b.text_bytes());
        prog->add(end);
        AckHandle ack = AckHandle::make([prog, end = end](DeliveryStatus s) { prog->ack(end, s); });
        if (!co_await out.send(std::move(b), std::move(ack))) {
          em.ready.clear();
          co_return false;
        }
      }
      em.ready.clear();
      co_return true;
    };
    try {
      formats::Decompressor dec(formats::Compression::kAuto);
      std::string buf(kReadBytes, '\0');
      for (;;) {
        ssize_t n = ::read(fd, buf.data(), buf.size());
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
          failure = fmt::format("read error: {}", std::strerror(errno));
          break;
        }
        if (n == 0) break;
        P.bytes_read.fetch_add(static_cast<uint64_t>(n), std::memory_order_relaxed);
        dec.feed(std::string_view(buf.data(), static_cast<size_t>(n)), split);
        if (!em.ready.empty() && !co_await send_ready()) {
          stopped = true;
          break;
        }
        if (ctx_.lifecycle->stopping()) {
          stopped = true;
          break;
        }
      }
      if (failure.empty() && !stopped) {
        dec.finish(split);
        if (!carry.empty()) line_out(carry, false, line_start, pos);  // a last line without '\n'
        decoder->flush(std::chrono::steady_clock::now(), /*force=*/true, em);
      }
    } catch (const formats::DecompressError& e) {
      failure = e.what();
    }
    ::close(fd);
    if (!stopped) {
      if (!em.batch.empty()) em.ready.emplace_back(std::move(em.batch), em.index);
      stopped = !co_await send_ready();
    }
    if (!failure.empty()) {
      report_error_for(m_, "read", "failed", f.path, std::chrono::hours(1),
                       fmt::format("{} failed after {} event(s): {}", f.path, em.index, failure));
      P.fail(f.path, failure);
      P.units_failed.fetch_add(1, std::memory_order_relaxed);
      co_return;
    }
    if (!stopped) prog->read_to_end();
  }

  FileSourceConfig cfg_;
  ComponentContext ctx_;
  std::shared_ptr<replay::Context> rp_;
  ComponentMetrics m_;
  s3::State state_;
  size_t batch_bytes_ = kBatchBytes, batch_events_ = kBatchEvents;
};

}  // namespace

std::unique_ptr<Source> make_file_replay_source(FileSourceConfig cfg, const ComponentContext& ctx) {
  return std::make_unique<FileReplaySource>(std::move(cfg), ctx);
}

}  // namespace logship
