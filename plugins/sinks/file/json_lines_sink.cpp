#include "plugins/sinks/file/json_lines_sink.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include <fmt/format.h>

#include "agent/core/blocking.h"
#include "agent/core/log.h"
#include "plugins/sinks/splunk_hec/encoder.h"

namespace logship {
namespace {
constexpr size_t kWriteBytes = 4 << 20;  // group batches into writes of up to 4 MiB
}

JsonLinesSink::JsonLinesSink(std::string path, ComponentContext ctx)
    : path_(std::move(path)), ctx_(std::move(ctx)), m_(ctx_.id, ctx_.type, "sink") {}

JsonLinesSink::~JsonLinesSink() {
  if (fd_ > 2) ::close(fd_);
}

bool JsonLinesSink::open_output() {
  if (path_.empty()) {
    fd_ = STDOUT_FILENO;
    return true;
  }
  std::error_code ec;
  auto parent = std::filesystem::path(path_).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent, ec);
  fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  if (fd_ < 0) {
    report_error(m_, "open", "open_failed",
                 fmt::format("cannot open {}: {}; retrying", path_, strerror(errno)));
    return false;
  }
  return true;
}

bool JsonLinesSink::write_all(const std::string& buf, size_t& off) {
  while (off < buf.size()) {
    ssize_t n = ::write(fd_, buf.data() + off, buf.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    off += static_cast<size_t>(n);
  }
  return true;
}

awaitable<void> JsonLinesSink::run(BatchChannel& in) {
  while (fd_ < 0 && !open_output()) {
    if (co_await ctx_.abort->sleep(std::chrono::seconds(1))) co_return;
  }
  std::string buf;
  std::vector<BatchRef> pending;
  for (;;) {
    auto first = co_await in.receive();
    if (!first) break;
    pending.push_back(std::move(*first));
    // Take whatever else is queued, up to the write size.
    size_t bytes = pending.back().batch->text_bytes();
    while (bytes < kWriteBytes) {
      auto more = in.try_receive();
      if (!more) break;
      bytes += more->batch->text_bytes();
      pending.push_back(std::move(*more));
    }
    buf.clear();
    size_t events = 0, text = 0, replaced = 0;
    for (auto& ref : pending) {
      const EventBatch& b = *ref.batch;
      for (const Event& e : b.events()) {
        HecMetadata md{b.meta(e.host), b.meta(e.source), b.meta(e.sourcetype), b.meta(e.index)};
        size_t at = buf.size();
        replaced += HecEncoder::encode_envelope(buf, b, e, md);
        // An embedded JSON value may be pretty-printed; raw CR/LF can only be insignificant
        // whitespace there (JSON strings escape them), so they become spaces: one line each.
        if (e.flags & Event::kJsonValue)
          for (size_t i = at; i < buf.size(); ++i)
            if (buf[i] == '\n' || buf[i] == '\r') buf[i] = ' ';
        buf += '\n';
      }
      events += b.size();
      text += b.text_bytes();
    }
    m_.received_events.inc(events);
    m_.received_bytes.inc(text);
    if (replaced)
      report_error(m_, "encode", "invalid_utf8",
                   fmt::format("{} invalid UTF-8 sequences replaced by U+FFFD", replaced), replaced);
    // Retry a failing write (disk full) until it succeeds or the drain deadline passes; a retry
    // resumes after the bytes already written (no line twice, none torn).
    size_t written = 0;
    while (!write_all(buf, written)) {
      report_error(m_, "write", errno == ENOSPC ? "disk_full" : "write_failed",
                   fmt::format("cannot write {}: {}; retrying", path_.empty() ? "stdout" : path_,
                               strerror(errno)));
      if (co_await ctx_.abort->sleep(std::chrono::seconds(1))) co_return;  // acks report errored
    }
    // Delivered means on disk: the data reaches stable storage before the acknowledgement lets
    // sources move their checkpoints (one fdatasync per group of batches, not per batch).
    DeliveryStatus status = DeliveryStatus::kDelivered;
    int sync_err = 0;
    if (!path_.empty()) {
      // Off the I/O loop's threads: a sync on a busy disk must not stall the sources.
      auto sync = [fd = fd_] { return ::fdatasync(fd) == 0 ? 0 : errno; };
      sync_err = co_await run_blocking(std::move(sync));
    }
    if (sync_err != 0 && sync_err != EINVAL && sync_err != EROFS) {
      errno = sync_err;
      // After a failed sync the kernel may have dropped the pages: the data is not acknowledged,
      // so the sources keep their checkpoints and read it again after a restart (duplicates,
      // never loss).
      report_error(m_, "write", "sync_failed",
                   fmt::format("cannot sync {}: {}; its events are not acknowledged", path_,
                               strerror(errno)));
      status = DeliveryStatus::kErrored;
    } else {
      m_.sent_events.inc(events);
      m_.sent_bytes.inc(text);
    }
    for (auto& ref : pending) ref.ack.finish(status);
    pending.clear();
  }
}

}  // namespace logship
