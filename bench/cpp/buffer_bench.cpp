// Disk buffer write and read alone (bench/README.md "disk buffer"): batches of ~250-byte JSON
// log lines (the file-to-hec input) go through DiskBuffer's writer into segments (zstd, then
// AES-256-GCM, fdatasync every 100 ms), then a new DiskBuffer over the same directory reads them
// back (decrypt, decompress, rebuild batches) into a consumer that acknowledges them.
//
//   build/bench/buffer_bench [MiB=1024] [dir=$TMPDIR]     prints MiB/s, MiB/s per CPU core, CPU s/GiB, peak RSS
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>

#include <fmt/format.h>

#include "agent/buffer/disk_buffer.h"
#include "agent/core/log.h"

using namespace logship;

namespace {
double cpu_seconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return double(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         double(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}
double peak_rss_mib() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return double(ru.ru_maxrss) / 1024.0;
}

std::vector<BatchPtr> make_batches(size_t count) {
  std::mt19937_64 rng(42);
  const char* paths[] = {"/api/v1/users", "/api/v1/orders", "/healthz", "/static/app.js", "/login"};
  const char* methods[] = {"GET", "POST", "PUT", "DELETE"};
  std::vector<BatchPtr> out;
  uint64_t seq = 0;
  for (size_t b = 0; b < count; ++b) {
    auto batch = std::make_shared<EventBatch>();
    batch->reserve(4200, 1100000);
    while (batch->text_bytes() < (1u << 20) - 300) {
      std::string line = fmt::format(
          "{{\"ts\":\"2026-11-01T12:{:02}:{:02}.{:03}Z\",\"level\":\"info\",\"seq\":{},\"method\":\"{}\","
          "\"path\":\"{}\",\"status\":{},\"bytes\":{},\"latency_ms\":{:.2f},\"trace\":\"{:016x}\","
          "\"user\":\"user{}@example.com\",\"msg\":\"request served\"}}",
          seq / 60000 % 60, seq / 1000 % 60, seq % 1000, seq, methods[rng() % 4], paths[rng() % 5],
          rng() % 10 ? 200 : 500, rng() % 100000, double(rng() % 100000) / 100.0, rng(),
          rng() % 5000);
      ++seq;
      Event& e = batch->add(line, 1761998400000000000 + int64_t(seq) * 1000000);
      e.flags = Event::kJsonValue;
      e.host = batch->intern("bench-host");
      e.source = batch->intern("/var/log/app/app.log");
    }
    out.push_back(std::move(batch));
  }
  return out;
}
}  // namespace

int main(int argc, char** argv) {
  init_logging("warn", "text");
  size_t mib = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 1024;
  std::string base = argc > 2 ? argv[2] : (std::getenv("TMPDIR") ? std::getenv("TMPDIR") : "/tmp");
  std::string dir = base + "/logship-buffer-bench-" + std::to_string(::getpid());
  auto ring = std::make_shared<crypto::KeyRing>();
  ring->set_current(std::make_shared<crypto::MasterKey>(crypto::random_bytes(32)));
  DiskBufferConfig cfg;
  cfg.path = dir;
  cfg.max_bytes = 64ull << 30;
  auto batches = make_batches(64);
  size_t per_batch = batches[0]->text_bytes();
  size_t n = mib * (1u << 20) / per_batch;
  uint64_t events = 0, bytes = 0;
  for (size_t i = 0; i < n; ++i) {
    events += batches[i % batches.size()]->size();
    bytes += batches[i % batches.size()]->text_bytes();
  }
  fmt::print("disk buffer bench: {} batches, {} events, {:.0f} MiB of event text, {} (zstd, AES-256-GCM, sync 100ms)\n",
             n, events, double(bytes) / (1 << 20), dir);

  auto phase = [&](const char* name, bool write) {
    asio::io_context ioc;
    DiskBuffer buf(cfg, ring, "bench", "blackhole");
    buf.open();
    BatchChannel in(8u << 20, 1u << 20), out(8u << 20, 1u << 20);
    Lifecycle abort;
    uint64_t acked = 0;
    asio::co_spawn(ioc, buf.run_writer(in, out, abort), asio::detached);
    if (write) {
      asio::co_spawn(
          ioc,
          [&]() -> awaitable<void> {
            for (size_t i = 0; i < n; ++i) {
              BatchRef ref;
              ref.batch = batches[i % batches.size()];
              ref.ack = AckHandle::make([&](DeliveryStatus) { ++acked; });
              size_t sz = ref.batch->byte_size();
              co_await in.send(std::move(ref), sz);
            }
            in.close();
          },
          asio::detached);
    } else {
      asio::co_spawn(ioc, buf.run_reader(out), asio::detached);
      asio::co_spawn(
          ioc,
          [&]() -> awaitable<void> {
            uint64_t seen = 0;
            while (seen < events) {
              auto item = co_await out.receive();
              if (!item) break;
              seen += item->batch->size();
              item->ack.finish(DeliveryStatus::kDelivered);
              ++acked;
            }
            in.close();
          },
          asio::detached);
    }
    auto t0 = std::chrono::steady_clock::now();
    double c0 = cpu_seconds();
    ioc.run();
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    double cpu = cpu_seconds() - c0;
    buf.close();
    uint64_t disk = 0;
    for (auto& de : std::filesystem::directory_iterator(dir)) disk += de.file_size();
    double m = double(bytes) / (1 << 20);
    fmt::print("{:5}: {:7.1f} MiB/s, {:7.1f} MiB/s per core, {:.2f} CPU s/GiB, {:.2f} s, {} batches acked, "
               "{:.0f} MiB on disk after, peak RSS {:.1f} MiB\n",
               name, m / secs, m / cpu, cpu / (m / 1024), secs, acked, double(disk) / (1 << 20),
               peak_rss_mib());
  };
  phase("write", true);
  phase("read", false);
  std::filesystem::remove_all(dir);
  fmt::print("command: {} {} {}\n", argv[0], mib, base);
  return 0;
}
