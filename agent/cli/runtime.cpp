#include "agent/cli/runtime.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/file.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include <boost/asio/bind_executor.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/thread_pool.hpp>
#include <fmt/format.h>

#include "agent/buffer/disk_buffer.h"
#include "agent/cli/dead_letters.h"
#include "agent/core/log.h"
#include "agent/crypto/kms_key.h"
#include "agent/core/secret.h"
#include "agent/core/units.h"
#include "agent/observe/admin_server.h"
#include "agent/pipeline/checkpoints.h"
#include "agent/replay/replay.h"
#include "plugins/sources/file/config.h"
#include "agent/pipeline/registry.h"

namespace logship {

int default_thread_count() {
  int cpus = static_cast<int>(std::thread::hardware_concurrency());
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) == 0) cpus = CPU_COUNT(&set);
  // cgroup v2: "max 100000" or "<quota> <period>"; v1: cfs_quota_us / cfs_period_us.
  std::ifstream v2("/sys/fs/cgroup/cpu.max");
  std::string quota;
  long period = 0;
  if (v2 >> quota >> period && quota != "max" && period > 0) {
    double q = std::stod(quota) / static_cast<double>(period);
    cpus = std::min(cpus, std::max(1, static_cast<int>(std::ceil(q))));
  } else {
    std::ifstream q1("/sys/fs/cgroup/cpu/cpu.cfs_quota_us"), p1("/sys/fs/cgroup/cpu/cpu.cfs_period_us");
    long q = -1, p = 0;
    if (q1 >> q && p1 >> p && q > 0 && p > 0)
      cpus = std::min(cpus, std::max(1, static_cast<int>(std::ceil(double(q) / double(p)))));
  }
  return std::max(1, cpus);
}

struct Runtime::Impl {
  Config cfg;
  asio::io_context ioc;
  Lifecycle stop;        // sources stop reading
  Lifecycle abort;       // drain deadline: sinks give up
  Lifecycle flush_stop;  // checkpoint flusher's final flush
  std::unique_ptr<CheckpointStore> checkpoints;
  struct SinkEntry {
    ComponentContext ctx;
    // Declared before the channels: batches left in them at the end release their blocks.
    std::unique_ptr<DiskBuffer> disk;
    std::unique_ptr<Sink> sink;
    std::unique_ptr<BatchChannel> in;
    std::unique_ptr<BatchChannel> out;  ///< disk buffer: what the buffer's reader feeds the sink
    std::vector<std::string> inputs;
    bool drop_newest = false;
    std::string buffer_desc;
    std::unique_ptr<ComponentMetrics> buffer_metrics;
  };
  struct SourceEntry {
    ComponentContext ctx;
    std::unique_ptr<Source> source;
    Fanout out;
  };
  struct TransformEntry {
    ComponentContext ctx;
    std::unique_ptr<Transform> transform;
    std::unique_ptr<BatchChannel> in;
    std::vector<std::string> inputs;
    std::vector<std::string> output_names;  ///< "" (the transform's id) or route names
    std::vector<Fanout> outs;                ///< one per output name
    std::unique_ptr<ComponentMetrics> metrics;
  };
  std::vector<SinkEntry> sinks;
  std::vector<SourceEntry> sources;
  std::vector<TransformEntry> transforms;

  std::optional<ReplaySpec> replay;

  explicit Impl(Config c, std::optional<ReplaySpec> rs = std::nullopt) : cfg(std::move(c)), replay(std::move(rs)) {
    // A replay keeps its checkpoints (and spool files, default dead letters) in its own
    // directory: the live pipeline's are never touched.
    const std::string data_dir = replay ? replay->run_dir : cfg.data_dir;
    checkpoints = std::make_unique<CheckpointStore>(data_dir);
    const Registry& reg = builtin_registry();
    auto make_ctx = [&](const ComponentDecl& d) {
      ComponentContext ctx;
      ctx.id = d.id;
      ctx.type = d.type;
      ctx.kind = d.kind;
      ctx.data_dir = data_dir;
      if (replay) ctx.dead_letter_suffix = ".replay-" + replay->ctx->run_id;
      ctx.executor = ioc.get_executor();
      ctx.lifecycle = &stop;
      ctx.abort = &abort;
      ctx.checkpoints = checkpoints.get();
      ctx.at_rest = cfg.at_rest;
      return ctx;
    };
    // While the load's errors are collecting, each component's errors are recorded and the
    // others are still checked; all of them are thrown at the end.
    ConfigErrors* errors = cfg.errors && cfg.errors->collecting() ? cfg.errors.get() : nullptr;
    // A component whose keys were all read (its factory stopped at throw_if_errors()) is still
    // checked for unknown keys; one that fail() stopped midway is not (unread keys are not
    // unknown).
    auto guarded = [&](auto&& fn, ConfigNode* node = nullptr) {
      if (!errors) return fn();
      try {
        fn();
      } catch (const ConfigError& e) {
        errors->absorb(e);
        if (node && !node->aborted()) node->finish();
      }
    };
    for (auto& d : cfg.transforms) {
      guarded(
          [&] {
            const TransformFactory* f = reg.transform(d.type);
            if (!f)
              d.node->fail("type",
                           fmt::format("unknown transform type \"{}\"; expected one of: {}", d.type,
                                       fmt::join(reg.transform_types(), ", ")));
            TransformEntry e;
            e.ctx = make_ctx(d);
            e.inputs = d.inputs;
            e.transform = (*f)(*d.node, e.ctx);
            d.node->finish();
            e.output_names = e.transform->outputs();
            e.outs.resize(e.output_names.size());
            // A transform works on one batch at a time; its input holds a few more.
            e.in = std::make_unique<BatchChannel>(8u << 20, 1024);
            e.metrics = std::make_unique<ComponentMetrics>(d.id, d.type, "transform");
            transforms.push_back(std::move(e));
          },
          d.node.get());
    }
    for (auto& d : cfg.sinks) {
      guarded(
          [&] {
            const SinkFactory* f = reg.sink(d.type);
            if (!f)
              d.node->fail("type", fmt::format("unknown sink type \"{}\"; expected one of: {}",
                                               d.type, fmt::join(reg.sink_types(), ", ")));
            SinkEntry e;
            e.ctx = make_ctx(d);
            e.inputs = d.inputs;
            // The sink's buffer is its bounded input channel (CONFIG.md `buffer`), or a disk
            // buffer between two small channels.
            uint64_t max_bytes = 16ull << 20;
            std::string when_full = "block";
            std::optional<DiskBufferConfig> disk;
            if (auto b = d.node->map("buffer")) {
              std::string type = b->choice("type", "memory", {"memory", "disk"});
              if (type == "disk") {
                disk.emplace();
                max_bytes = disk->max_bytes;
                disk->path = b->str("path", cfg.data_dir + "/buffer/" + d.id);
                disk->segment_bytes = b->size("segment_bytes", disk->segment_bytes);
                if (disk->segment_bytes < (1u << 20)) {
                  b->error("segment_bytes", "buffer.segment_bytes must be at least 1MiB");
                  disk->segment_bytes = 1u << 20;
                }
                if (b->has("sync") && b->str("sync", std::string()) == "always") {
                  disk->sync_always = true;
                } else {
                  auto sd = b->duration("sync", std::chrono::milliseconds(100));
                  disk->sync_interval =
                      std::max(std::chrono::milliseconds(1),
                               std::chrono::duration_cast<std::chrono::milliseconds>(sd));
                }
                disk->max_age = b->opt_duration("max_age");
                disk->zstd = b->choice("compression", "zstd", {"zstd", "none"}) == "zstd";
                if (!cfg.at_rest)
                  b->error("type",
                           "a disk buffer requires the top-level encryption key "
                           "(encryption.key_file or encryption.kms_key_id): its blocks are "
                           "AES-256-GCM encrypted, nothing of an event is written in clear text");
              }
              max_bytes = b->size("max_bytes", max_bytes);
              if (max_bytes < 4096) {
                b->error("max_bytes", "buffer.max_bytes must be at least 4KiB");
                max_bytes = 4096;
              }
              when_full = b->choice("when_full", "block", {"block", "drop_newest"});
              b->finish();
            }
            if (disk && replay) {
              // A replay reads its input again whenever it must: memory is enough, and the live
              // process owns the disk buffer's files.
              max_bytes = std::min<uint64_t>(max_bytes, 64ull << 20);
              disk.reset();
            }
            if (disk) {
              disk->max_bytes = std::max<uint64_t>(max_bytes, 2 * (1u << 20));
              disk->segment_bytes = std::min(disk->segment_bytes,
                                             std::max<uint64_t>(disk->max_bytes / 4, 1u << 20));
              disk->drop_newest = when_full == "drop_newest";
              e.disk = std::make_unique<DiskBuffer>(*disk, cfg.at_rest, d.id, d.type);
              e.buffer_desc = e.disk->describe();
              // The writer takes batches as fast as the disk does; the reader reads ahead 8 MiB.
              e.in = std::make_unique<BatchChannel>(8u << 20, 1u << 20);
              e.out = std::make_unique<BatchChannel>(8u << 20, 1u << 20);
            } else {
              // A replay is never in a hurry: it waits for a full buffer rather than dropping.
              if (replay) when_full = "block";
              e.drop_newest = when_full == "drop_newest";
              e.buffer_desc = fmt::format("memory {} {}", format_size(max_bytes), when_full);
              e.in = std::make_unique<BatchChannel>(max_bytes, 1u << 20);
            }
            e.sink = (*f)(*d.node, e.ctx);
            d.node->finish();
            e.buffer_metrics = std::make_unique<ComponentMetrics>(d.id, d.type, "sink");
            sinks.push_back(std::move(e));
          },
          d.node.get());
    }
    guarded([&] { check_file_sources_against_outputs(cfg); });
    for (auto& d : cfg.sources) {
      guarded(
          [&] {
            const SourceFactory* f = reg.source(d.type);
            if (!f)
              d.node->fail("type", fmt::format("unknown source type \"{}\"; expected one of: {}",
                                               d.type, fmt::join(reg.source_types(), ", ")));
            SourceEntry e;
            e.ctx = make_ctx(d);
            if (replay && d.id == replay->source_id) e.ctx.replay = replay->ctx;
            e.source = (*f)(*d.node, e.ctx);
            d.node->finish();
            sources.push_back(std::move(e));
          },
          d.node.get());
    }
    if (errors) errors->finish();  // throws every error of the configuration, in file order
    if (replay) keep_replayed();
    // Every output by the name consumers list in `inputs`: a source's id, a transform's id, or
    // `<route id>.<route name>`.
    std::map<std::string, Fanout*> producers;
    for (auto& s : sources) producers[s.ctx.id] = &s.out;
    for (auto& t : transforms)
      for (size_t i = 0; i < t.output_names.size(); ++i)
        producers[t.output_names[i].empty() ? t.ctx.id : t.ctx.id + "." + t.output_names[i]] =
            &t.outs[i];
    for (auto& t : transforms)
      for (const auto& in : t.inputs)
        if (auto it = producers.find(in); it != producers.end()) it->second->add(t.in.get());
    for (auto& k : sinks)
      for (const auto& in : k.inputs)
        if (auto it = producers.find(in); it != producers.end())
          it->second->add(k.in.get(), k.drop_newest,
                          k.drop_newest ? &k.buffer_metrics->dropped("buffer_full") : nullptr);
  }

  /// Replay mode: keeps the replayed source and the transforms and sinks it feeds (only the
  /// --sink ones when given); the others are built (their configuration checked), never run.
  void keep_replayed() {
    const std::string& id = replay->source_id;
    auto src = std::find_if(sources.begin(), sources.end(), [&](auto& s) { return s.ctx.id == id; });
    if (src == sources.end()) {
      std::vector<std::string> ids;
      for (auto& s : sources) ids.push_back(s.ctx.id);
      throw UsageError(fmt::format("--source {}: no such source in {} (sources: {})", id, cfg.file,
                                   ids.empty() ? std::string("none") : fmt::format("{}", fmt::join(ids, ", "))));
    }
    if (src->ctx.type != "s3" && src->ctx.type != "file")
      throw UsageError(fmt::format("--source {}: a {} source cannot be replayed (only s3 and file sources)", id,
                                   src->ctx.type));
    bool s3_uris = !replay->ctx->from.empty() && replay->ctx->from.front().starts_with("s3://");
    if (src->ctx.type == "s3" && !s3_uris)
      throw UsageError(fmt::format("--source {} is an s3 source: --from takes s3://bucket/prefix", id));
    if (src->ctx.type == "file" && s3_uris)
      throw UsageError(fmt::format("--source {} is a file source: --from takes local paths or globs", id));
    std::set<std::string> reach{id};
    std::set<std::string> kept_t;  // transform ids
    for (bool grew = true; grew;) {
      grew = false;
      for (auto& t : transforms) {
        if (kept_t.count(t.ctx.id)) continue;
        if (std::none_of(t.inputs.begin(), t.inputs.end(), [&](auto& in) { return reach.count(in) > 0; }))
          continue;
        kept_t.insert(t.ctx.id);
        grew = true;
        for (auto& o : t.output_names) reach.insert(o.empty() ? t.ctx.id : t.ctx.id + "." + o);
      }
    }
    for (auto& want : replay->sinks) {
      auto k = std::find_if(sinks.begin(), sinks.end(), [&](auto& e) { return e.ctx.id == want; });
      if (k == sinks.end())
        throw UsageError(fmt::format("--sink {}: no such sink in {}", want, cfg.file));
      if (std::none_of(k->inputs.begin(), k->inputs.end(), [&](auto& in) { return reach.count(in) > 0; }))
        throw UsageError(fmt::format("--sink {}: it does not receive the events of source {}", want, id));
    }
    std::erase_if(sources, [&](auto& s) { return s.ctx.id != id; });
    std::erase_if(transforms, [&](auto& t) { return !kept_t.count(t.ctx.id); });
    std::erase_if(sinks, [&](auto& k) {
      if (!replay->sinks.empty() &&
          std::find(replay->sinks.begin(), replay->sinks.end(), k.ctx.id) == replay->sinks.end())
        return true;
      return std::none_of(k.inputs.begin(), k.inputs.end(), [&](auto& in) { return reach.count(in) > 0; });
    });
    if (sinks.empty()) throw UsageError(fmt::format("--source {}: it feeds no sink", id));
  }

  /// Consumers of `name` (a source, a transform or `<route>.<name>`), for describe().
  std::vector<std::string> consumers_of(const std::string& name) const {
    std::vector<std::string> to;
    for (auto& t : transforms)
      if (std::find(t.inputs.begin(), t.inputs.end(), name) != t.inputs.end())
        to.push_back(t.ctx.id);
    for (auto& k : sinks)
      if (std::find(k.inputs.begin(), k.inputs.end(), name) != k.inputs.end())
        to.push_back(k.ctx.id);
    return to;
  }

  /// One transform's loop: a batch in, its outputs out, the input's acknowledgement finished
  /// once every output holds its own share of it.
  awaitable<void> run_transform(TransformEntry& t, std::function<void(const std::string&)> fatal) {
    std::vector<BatchPtr> outs(t.outs.size());
    bool broken = false;
    for (;;) {
      auto item = co_await t.in->receive();
      if (!item) break;
      const EventBatch& in = *item->batch;
      t.metrics->received_events.inc(in.size());
      t.metrics->received_bytes.inc(in.text_bytes());
      std::fill(outs.begin(), outs.end(), nullptr);
      if (!broken) {
        try {
          t.transform->apply(item->batch, outs);
        } catch (const std::exception& e) {
          // A bug, never bad data: nothing of this batch goes on (a redact transform must not
          // let clear text through); the sources keep it and the process stops.
          broken = true;
          fatal(fmt::format("transform {} failed: {}", t.ctx.id, e.what()));
        }
      }
      if (broken) {
        item->ack.finish(DeliveryStatus::kErrored);
        continue;
      }
      for (size_t i = 0; i < outs.size(); ++i) {
        if (!outs[i] || outs[i]->empty()) continue;
        if (t.outs[i].size() == 0) {
          t.metrics->dropped(t.output_names[i] == "_unmatched" ? "unrouted" : "no_consumer")
              .inc(outs[i]->size());
          continue;
        }
        t.metrics->sent_events.inc(outs[i]->size());
        t.metrics->sent_bytes.inc(outs[i]->text_bytes());
        AckHandle share = item->ack.share();
        co_await t.outs[i].send(std::move(outs[i]), std::move(share));
      }
      item->ack.finish(DeliveryStatus::kDelivered);
    }
    for (auto& f : t.outs) f.producer_done();
  }

  /// KMS-made at-rest keys (encryption.kms_key_id): unwrapped (or made) now, on a loop of their
  /// own, before any component runs. False with `err` when they cannot be.
  bool load_keys(std::string& err) {
    if (cfg.kms_key_id.empty() || !cfg.at_rest || !cfg.at_rest->empty()) return true;
    asio::io_context kio;
    std::exception_ptr failure;
    asio::co_spawn(kio,
                   crypto::load_kms_keys(kio.get_executor(), cfg.data_dir, cfg.kms_key_id,
                                         *cfg.at_rest),
                   [&](std::exception_ptr e) { failure = e; });
    kio.run();
    if (failure) {
      try {
        std::rethrow_exception(failure);
      } catch (const std::exception& e) {
        err = e.what();
      }
      return false;
    }
    if (cfg.at_rest->empty()) {
      err = "encryption.kms_key_id: no at-rest data key";
      return false;
    }
    return true;
  }

  std::string describe() const {
    std::string out = fmt::format("configuration {} is valid\ndata_dir: {}\n", cfg.file, cfg.data_dir);
    if (cfg.admin_address) out += fmt::format("admin: http://{}/metrics\n", *cfg.admin_address);
    out += "sources:\n";
    for (auto& s : sources) {
      std::vector<std::string> to = consumers_of(s.ctx.id);
      out += fmt::format("  {} ({}) -> {}\n", s.ctx.id, s.ctx.type,
                         to.empty() ? std::string("(unused)") : fmt::format("{}", fmt::join(to, ", ")));
    }
    if (!transforms.empty()) out += "transforms:\n";
    for (auto& t : transforms) {
      std::vector<std::string> parts;
      for (const auto& o : t.output_names) {
        std::string name = o.empty() ? t.ctx.id : t.ctx.id + "." + o;
        std::vector<std::string> to = consumers_of(name);
        std::string dest = to.empty() ? std::string("(dropped)") : fmt::format("{}", fmt::join(to, ", "));
        parts.push_back(o.empty() ? dest : fmt::format("{}: {}", o, dest));
      }
      out += fmt::format("  {} ({}) <- {} -> {}\n", t.ctx.id, t.ctx.type, fmt::join(t.inputs, ", "),
                         fmt::join(parts, "; "));
    }
    out += "sinks:\n";
    for (auto& k : sinks)
      out += fmt::format("  {} ({}) <- {}  [buffer: {}]\n", k.ctx.id, k.ctx.type,
                         fmt::join(k.inputs, ", "), k.buffer_desc);
    return out;
  }
};

Runtime::Runtime(Config cfg) : impl_(std::make_unique<Impl>(std::move(cfg))) {}
Runtime::Runtime(Config cfg, ReplaySpec spec) : impl_(std::make_unique<Impl>(std::move(cfg), std::move(spec))) {}

uint64_t Runtime::dead_lettered() const {
  uint64_t n = 0;
  for (auto& k : impl_->sinks) n += ComponentMetrics(k.ctx.id, k.ctx.type, "sink").dropped("dead_letter").value();
  return n;
}

std::vector<std::string> Runtime::sink_ids() const {
  std::vector<std::string> ids;
  for (auto& k : impl_->sinks) ids.push_back(k.ctx.id);
  return ids;
}
Runtime::~Runtime() = default;
std::string Runtime::describe() const { return impl_->describe(); }

int Runtime::dead_letters(const std::string& sink_id, bool follow) {
  Impl& m = *impl_;
  for (auto& k : m.sinks) {
    if (k.ctx.id != sink_id) continue;
    auto files = k.sink->dead_letter_files();
    if (files.empty()) {
      spdlog::error("sink {} ({}) keeps no dead letters", sink_id, k.ctx.type);
      return 2;
    }
    std::string err;
    if (!m.load_keys(err)) {
      spdlog::error("{}", err);
      return 1;
    }
    return print_dead_letters(files, m.cfg.at_rest, follow);
  }
  std::vector<std::string> ids;
  for (auto& k : m.sinks) ids.push_back(k.ctx.id);
  spdlog::error("no sink {} in {}; sinks: {}", sink_id, m.cfg.file, fmt::join(ids, ", "));
  return 2;
}

namespace {
// Holds an exclusive flock on <data_dir>/.lock for the life of the process.
int lock_data_dir(const std::string& dir, std::string& err) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    err = fmt::format("cannot create data_dir {}: {}", dir, ec.message());
    return -1;
  }
  std::string path = dir + "/.lock";
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) {
    err = fmt::format("cannot open {}: {}", path, strerror(errno));
    return -1;
  }
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    char buf[32] = {0};
    ssize_t n = ::pread(fd, buf, sizeof buf - 1, 0);
    std::string pid = n > 0 ? std::string(buf, static_cast<size_t>(n)) : "?";
    while (!pid.empty() && (pid.back() == '\n')) pid.pop_back();
    err = fmt::format("data_dir {} is locked by another logship process (pid {}); one process per "
                      "data_dir",
                      dir, pid);
    ::close(fd);
    return -2;
  }
  std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd, 0) == 0 && ::pwrite(fd, pid.data(), pid.size(), 0) < 0) {
    // The pid is informational only.
  }
  return fd;
}
}  // namespace

int Runtime::run(std::chrono::milliseconds drain_timeout) {
  Impl& m = *impl_;
  std::string err;
  // A replay holds its own run directory's lock: it runs beside the live process.
  int lock_fd = lock_data_dir(m.replay ? m.replay->run_dir : m.cfg.data_dir, err);
  if (lock_fd < 0) {
    spdlog::error("{}", err);
    return lock_fd == -2 ? 2 : 1;
  }

  // At-rest keys (KMS) and disk buffers: recovered before anything reads input.
  if (!m.load_keys(err)) {
    spdlog::error("{}", err);
    ::close(lock_fd);
    return 1;
  }
  size_t disk_buffers = 0;
  for (auto& k : m.sinks) {
    if (!k.disk) continue;
    ++disk_buffers;
    try {
      k.disk->open();
    } catch (const std::exception& e) {
      spdlog::error("sink {}: {}", k.ctx.id, e.what());
      ::close(lock_fd);
      return 1;
    }
  }
  // Disk I/O (writes, fdatasync, reads) runs on threads of its own, never on the I/O loop's.
  asio::thread_pool buffer_pool(std::max<size_t>(1, 2 * disk_buffers));

  std::atomic<int> exit_code{0};
  std::atomic<bool> stopping{false};
  std::atomic<size_t> sinks_left{m.sinks.size()};
  std::unique_ptr<asio::steady_timer> deadline;
  std::mutex deadline_mu;  // deadline is touched from the pool's threads
  auto begin_stop = [&](const char* why) {
    if (stopping.exchange(true)) return;
    spdlog::info("{}: stopping inputs, draining in-flight data (deadline {})", why,
                 format_duration(drain_timeout));
    m.stop.request_stop();
    asio::post(m.ioc, [&] {
      std::lock_guard lk(deadline_mu);
      if (m.flush_stop.stopping()) return;  // everything already drained
      deadline = std::make_unique<asio::steady_timer>(m.ioc, drain_timeout);
      deadline->async_wait([&](const boost::system::error_code& ec) {
        if (ec) return;
        spdlog::warn("drain deadline passed; giving up on undelivered data (it stays in the "
                     "sources' checkpoints and is read again on restart)");
        m.abort.request_stop();
        for (auto& t : m.transforms) t.in->abort();
        for (auto& k : m.sinks) {
          k.in->abort();
          if (k.out) k.out->abort();
        }
        // Last resort if a component ignores the abort.
        auto hard = std::make_shared<asio::steady_timer>(m.ioc, std::chrono::seconds(3));
        hard->async_wait([&, hard](const boost::system::error_code&) { m.ioc.stop(); });
      });
    });
  };
  auto fatal = [&](const std::string& what) {
    spdlog::error("{}", what);
    exit_code = 1;
    begin_stop("fatal error");
  };

  // Admin endpoint.
  std::unique_ptr<AdminServer> admin;
  if (m.cfg.admin_address && !m.replay) {
    admin = std::make_unique<AdminServer>(m.ioc.get_executor(), *m.cfg.admin_address, [&m] {
      for (auto& s : m.sources)
        if (!s.source->ready()) return false;
      for (auto& k : m.sinks)
        if (!k.sink->ready() || (k.disk && !k.disk->accepting())) return false;
      return true;
    });
    try {
      admin->start();
    } catch (const std::exception& e) {
      spdlog::error("admin endpoint: {}", e.what());
      return 1;
    }
  }

  // Signals: TERM/INT drain and exit; HUP re-reads secret files. The handler and the final
  // cancel run on one strand with a `signals_done` flag, so a re-arm can never slip in after the
  // cancel (that left a pending wait that kept the process alive).
  asio::signal_set signals(m.ioc, SIGINT, SIGTERM, SIGHUP);
  auto signal_strand = asio::make_strand(m.ioc);
  bool signals_done = false;  // only touched on signal_strand
  std::function<void(const boost::system::error_code&, int)> on_signal =
      [&](const boost::system::error_code& ec, int sig) {
        if (ec || signals_done) return;
        if (sig == SIGHUP) {
          int failed = SecretStore::instance().reload_all();
          spdlog::info("SIGHUP: secret files re-read ({} failed)", failed);
        } else if (stopping) {
          spdlog::warn("second {}: giving up on the drain now", sig == SIGTERM ? "SIGTERM" : "SIGINT");
          m.abort.request_stop();
          for (auto& t : m.transforms) t.in->abort();
          for (auto& k : m.sinks) {
            k.in->abort();
            if (k.out) k.out->abort();
          }
        } else {
          if (m.replay) m.replay->ctx->interrupted = true;
          begin_stop(sig == SIGTERM ? "SIGTERM" : "SIGINT");
        }
        signals.async_wait(asio::bind_executor(signal_strand, on_signal));
      };
  signals.async_wait(asio::bind_executor(signal_strand, on_signal));

  auto all_done = [&] {
    std::lock_guard lk(deadline_mu);
    if (m.flush_stop.stopping()) return;
    m.flush_stop.request_stop();  // the flusher writes one last time and returns
    asio::post(signal_strand, [&] {
      signals_done = true;
      signals.cancel();
    });
    if (deadline) deadline->cancel();
    if (admin) admin->stop();
  };

  for (auto& k : m.sinks) {
    if (!k.disk) continue;
    auto on_end = [&, id = k.ctx.id](std::exception_ptr e) {
      if (!e) return;
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& ex) {
        fatal(fmt::format("disk buffer of sink {} failed: {}", id, ex.what()));
      }
    };
    asio::co_spawn(asio::make_strand(buffer_pool), k.disk->run_writer(*k.in, *k.out, m.abort),
                   on_end);
    asio::co_spawn(asio::make_strand(buffer_pool), k.disk->run_reader(*k.out), on_end);
  }
  for (auto& k : m.sinks) {
    asio::co_spawn(m.ioc, k.sink->run(k.out ? *k.out : *k.in), [&, id = k.ctx.id](std::exception_ptr e) {
      if (e) {
        try {
          std::rethrow_exception(e);
        } catch (const std::exception& ex) {
          fatal(fmt::format("sink {} failed: {}", id, ex.what()));
        }
      }
      if (--sinks_left == 0) all_done();
    });
  }
  for (auto& t : m.transforms) {
    for (size_t i = 0; i < t.outs.size(); ++i) {
      t.outs[i].register_producer();
      if (t.outs[i].size() == 0 && t.output_names[i] != "_unmatched")
        spdlog::warn("transform {}: output {} feeds nothing; its events are dropped (counted in "
                     "logship_component_dropped_events_total)",
                     t.ctx.id, t.output_names[i].empty() ? t.ctx.id : t.ctx.id + "." + t.output_names[i]);
    }
    asio::co_spawn(m.ioc, m.run_transform(t, fatal), [&, id = t.ctx.id](std::exception_ptr e) {
      if (!e) return;
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& ex) {
        fatal(fmt::format("transform {} failed: {}", id, ex.what()));
      }
    });
  }
  for (auto& s : m.sources) {
    s.out.register_producer();
    asio::co_spawn(m.ioc, s.source->run(s.out), [&, src = &s](std::exception_ptr e) {
      if (e) {
        try {
          std::rethrow_exception(e);
        } catch (const std::exception& ex) {
          fatal(fmt::format("source {} failed: {}", src->ctx.id, ex.what()));
        }
      }
      src->out.producer_done();
    });
  }
  if (m.sinks.empty()) all_done();
  asio::co_spawn(m.ioc, m.checkpoints->run(m.flush_stop), asio::detached);
  // Buffer gauges, refreshed twice a second until the end.
  asio::co_spawn(
      m.ioc,
      [&m]() -> awaitable<void> {
        struct G {
          BatchChannel* ch;
          Gauge& bytes;
          Gauge& events;
        };
        std::vector<G> gs;
        for (auto& k : m.sinks) {
          if (k.disk) continue;  // the disk buffer keeps its own gauges
          Labels l{{"component_id", k.ctx.id}};
          gs.push_back({k.in.get(),
                        metrics().gauge("logship_buffer_bytes", "Bytes queued in the sink's buffer", l),
                        metrics().gauge("logship_buffer_batches", "Batches queued in the sink's buffer", l)});
          metrics()
              .gauge("logship_buffer_max_bytes", "Capacity of the sink's buffer", l)
              .set(static_cast<int64_t>(k.in->max_bytes()));
        }
        for (;;) {
          for (auto& g : gs) {
            g.bytes.set(static_cast<int64_t>(g.ch->bytes()));
            g.events.set(static_cast<int64_t>(g.ch->size()));
          }
          if (co_await m.flush_stop.sleep(std::chrono::milliseconds(500))) co_return;
        }
      },
      asio::detached);

  int n = m.cfg.threads > 0 ? m.cfg.threads : default_thread_count();
  spdlog::info("logship {} running: {} source(s), {} transform(s), {} sink(s), {} thread(s), "
               "data_dir {}",
               LOGSHIP_VERSION, m.sources.size(), m.transforms.size(), m.sinks.size(), n,
               m.replay ? m.replay->run_dir : m.cfg.data_dir);
  std::vector<std::thread> pool;
  for (int i = 1; i < n; ++i) pool.emplace_back([&] { m.ioc.run(); });
  m.ioc.run();
  for (auto& t : pool) t.join();
  for (auto& k : m.sinks)
    if (k.disk) k.in->abort();  // a writer still holding a batch (buffer full) gives up
  buffer_pool.join();
  for (auto& k : m.sinks)
    if (k.disk) k.disk->close();

  if (!m.checkpoints->flush_all()) exit_code = 1;
  spdlog::info("stopped (exit code {})", exit_code.load());
  ::close(lock_fd);
  return exit_code;
}

}  // namespace logship
