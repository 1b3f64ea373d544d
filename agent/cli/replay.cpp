#include "agent/cli/replay.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <mutex>
#include <sstream>
#include <thread>

#include <fmt/format.h>
#include <simdjson.h>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>

#include "agent/cli/runtime.h"
#include "agent/config/config.h"
#include "agent/core/json_escape.h"
#include "agent/core/log.h"
#include "agent/core/units.h"
#include "agent/replay/replay.h"

namespace logship {
namespace {

namespace fs = std::filesystem;

/// What a run keeps in `run.json` so that `--resume` replays exactly the same selection.
struct RunRecord {
  std::string run_id, source;
  std::vector<std::string> from, sinks;
  std::optional<int64_t> since, until;
  bool mark = true;
};

std::string run_json(const RunRecord& r) {
  auto q = [](std::string_view v) {
    std::string o;
    json_quote_append(o, v);
    return o;
  };
  auto arr = [&](const std::vector<std::string>& v) {
    std::string o = "[";
    for (size_t i = 0; i < v.size(); ++i) o += (i ? "," : "") + q(v[i]);
    return o + "]";
  };
  return fmt::format(
      "{{\"version\":1,\"run_id\":{},\"source\":{},\"from\":{},\"sinks\":{},\"since\":{},"
      "\"until\":{},\"mark\":{}}}\n",
      q(r.run_id), q(r.source), arr(r.from), arr(r.sinks),
      r.since ? q(replay::format_time(*r.since)) : "null",
      r.until ? q(replay::format_time(*r.until)) : "null", r.mark);
}

std::optional<RunRecord> parse_run_json(const std::string& text, std::string& err) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (parser.parse(text).get(doc)) {
    err = "not valid JSON";
    return std::nullopt;
  }
  RunRecord r;
  std::string_view sv;
  if (doc["run_id"].get(sv)) return err = "no run_id", std::nullopt;
  r.run_id = sv;
  if (doc["source"].get(sv)) return err = "no source", std::nullopt;
  r.source = sv;
  simdjson::dom::array a;
  if (doc["from"].get(a)) return err = "no from", std::nullopt;
  for (auto v : a)
    if (!v.get(sv)) r.from.emplace_back(sv);
  if (!doc["sinks"].get(a))
    for (auto v : a)
      if (!v.get(sv)) r.sinks.emplace_back(sv);
  for (auto [key, dst] : {std::pair{"since", &r.since}, std::pair{"until", &r.until}})
    if (!doc[key].get(sv)) {
      *dst = replay::parse_time_arg(sv);
      if (!*dst) return err = std::string("bad ") + key, std::nullopt;
    }
  bool mark = true;
  if (!doc["mark"].get(mark)) r.mark = mark;
  return r;
}

int usage(const std::string& msg) {
  std::cerr << "logship replay: " << msg << "\n";
  return 2;
}

std::string default_run_id(const std::string& source) {
  std::time_t t = std::time(nullptr);
  struct tm tm {};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tm);
  return source + "-" + buf;
}

size_t terminal_width() {
  struct winsize ws {};
  if (::ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 20) return ws.ws_col;
  return 100;
}

/// Draws the progress bar on the terminal (stderr) and keeps it below the log lines: each log
/// line clears the bar, is written, and the bar is drawn again under it.
struct Terminal {
  std::mutex mu;
  std::string bar;
  void draw(const std::string& line) {
    std::lock_guard lk(mu);
    bar = line;
    std::fputs("\r\x1b[2K", stderr);
    std::fputs(bar.c_str(), stderr);
    std::fflush(stderr);
  }
  void end() {
    std::lock_guard lk(mu);
    if (!bar.empty()) std::fputs("\n", stderr);
    bar.clear();
    std::fflush(stderr);
  }
};

class BarSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  explicit BarSink(Terminal& t) : t_(t) {}

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    spdlog::memory_buf_t buf;
    formatter_->format(msg, buf);
    std::lock_guard lk(t_.mu);
    std::fputs("\r\x1b[2K", stderr);
    std::fwrite(buf.data(), 1, buf.size(), stderr);
    std::fputs(t_.bar.c_str(), stderr);
    std::fflush(stderr);
  }
  void flush_() override { std::fflush(stderr); }

 private:
  Terminal& t_;
};

}  // namespace

int replay_command(const ReplayArgs& a) {
  Config cfg;
  try {
    cfg = load_config(a.config, /*defer_errors=*/true);
  } catch (const ConfigError& e) {
    std::cerr << e.what() << "\n";
    return 2;
  }
  // ---- the run: new, or resumed from its run.json ----------------------------------------------
  RunRecord rec;
  const std::string runs_dir = cfg.data_dir + "/replay";
  if (!a.resume.empty()) {
    if (!replay::valid_run_id(a.resume))
      return usage(fmt::format("--resume {}: not a run id", a.resume));
    if (!a.since.empty() || !a.until.empty() || !a.sinks.empty() || a.no_mark || !a.run_id.empty())
      return usage(
          "--resume continues a run as it was started: --since, --until, --sink, --no-mark and "
          "--run-id cannot be given with it (--rate and --events-rate can)");
    std::string path = runs_dir + "/" + a.resume + "/run.json";
    std::ifstream in(path);
    if (!in) {
      std::string known;
      std::error_code ec;
      for (auto& e : fs::directory_iterator(runs_dir, ec))
        if (fs::exists(e.path() / "run.json"))
          known += (known.empty() ? "" : ", ") + e.path().filename().string();
      return usage(fmt::format("--resume {}: no such run in {} (runs: {})", a.resume, runs_dir,
                               known.empty() ? "none" : known));
    }
    std::stringstream ss;
    ss << in.rdbuf();
    std::string err;
    auto r = parse_run_json(ss.str(), err);
    if (!r) return usage(fmt::format("{}: {}", path, err));
    rec = std::move(*r);
    if (!a.source.empty() && a.source != rec.source)
      return usage(
          fmt::format("--source {}: run {} replays source {}", a.source, rec.run_id, rec.source));
    std::vector<std::string> given;  // as the run recorded them: local paths absolute, normalised
    for (auto& f : a.from)
      given.push_back(f.starts_with("s3://") ? f : fs::absolute(f).lexically_normal().string());
    if (!a.from.empty() && given != rec.from)
      return usage(fmt::format("--from: run {} replays other inputs ({})", rec.run_id,
                               fmt::join(rec.from, " ")));
  } else {
    if (a.source.empty())
      return usage("--source is required (the id of an s3 or file source of the configuration)");
    if (a.from.empty())
      return usage("--from is required (s3://bucket/prefix, or local paths and globs)");
    rec.source = a.source;
    rec.run_id = a.run_id.empty() ? default_run_id(a.source) : a.run_id;
    if (!replay::valid_run_id(rec.run_id))
      return usage(fmt::format(
          "--run-id {}: use 1 to 64 of A-Z a-z 0-9 . _ - (not starting with .)", rec.run_id));
    size_t s3 = 0;
    for (auto& f : a.from) {
      if (f.starts_with("s3://")) {
        std::string rest = f.substr(5);
        if (rest.empty() || rest[0] == '/')
          return usage(fmt::format("--from {}: no bucket (s3://bucket/prefix)", f));
        ++s3;
        rec.from.push_back(f);
      } else if (f.find("://") != std::string::npos) {
        return usage(fmt::format("--from {}: only s3:// URIs and local paths are read", f));
      } else {
        rec.from.push_back(fs::absolute(f).lexically_normal().string());
      }
    }
    if (s3 != 0 && s3 != a.from.size())
      return usage("--from: S3 URIs and local paths cannot be mixed in one run");
    for (auto [arg, dst] : {std::pair{&a.since, &rec.since}, std::pair{&a.until, &rec.until}}) {
      if (arg->empty()) continue;
      *dst = replay::parse_time_arg(*arg);
      if (!*dst)
        return usage(fmt::format(
            "--{} {}: not a time; use RFC 3339 (2026-11-01T12:00:00Z) or a date (2026-11-01)",
            dst == &rec.since ? "since" : "until", *arg));
    }
    if (rec.since && rec.until && *rec.until <= *rec.since)
      return usage("--until must be later than --since");
    rec.sinks = a.sinks;
    rec.mark = !a.no_mark;
    if (!a.dry_run && fs::exists(runs_dir + "/" + rec.run_id + "/run.json"))
      return usage(fmt::format(
          "run {} exists in {}; continue it with --resume {}, or choose another --run-id",
          rec.run_id, runs_dir, rec.run_id));
  }
  auto ctx = std::make_shared<replay::Context>();
  ctx->run_id = rec.run_id;
  ctx->from = rec.from;
  ctx->window.since_ns = rec.since;
  ctx->window.until_ns = rec.until;
  ctx->dry_run = a.dry_run;
  ctx->mark = rec.mark ? rec.run_id : std::string();
  double bps = 0, eps = 0;
  if (!a.rate.empty()) {
    auto r = replay::parse_rate(a.rate);
    if (!r)
      return usage(fmt::format("--rate {}: expected a size per second such as 2MiB/s", a.rate));
    bps = *r;
  }
  if (!a.events_rate.empty()) {
    char* end = nullptr;
    double v = std::strtod(a.events_rate.c_str(), &end);
    if (end == a.events_rate.c_str() || (*end && std::string_view(end) != "/s") || !(v > 0) ||
        !(v <= 1e9))
      return usage(
          fmt::format("--events-rate {}: expected events per second such as 5000", a.events_rate));
    eps = v;
  }
  if (bps > 0 || eps > 0) ctx->limiter.emplace(bps, eps);
  auto d = parse_duration_arg(a.drain);
  if (!d) return usage(fmt::format("--drain-timeout {}: expected a duration such as 30s", a.drain));

  // A dry run writes nothing: its state lives in a scratch directory removed at the end (a dry
  // run of a run being resumed reads that run's state, never writes it).
  ReplaySpec spec;
  spec.ctx = ctx;
  spec.source_id = rec.source;
  spec.sinks = rec.sinks;
  bool scratch = a.dry_run && a.resume.empty();
  spec.run_dir =
      scratch ? fmt::format("{}/.dry-run-{}", runs_dir, ::getpid()) : runs_dir + "/" + rec.run_id;

  const bool tty = ::isatty(STDERR_FILENO) == 1;
  Terminal term;
  init_logging(!a.log_level.empty() ? a.log_level : cfg.log_level, cfg.log_format);
  if (tty && cfg.log_format != "json") {
    auto sink = std::make_shared<BarSink>(term);
    sink->set_formatter(std::make_unique<spdlog::pattern_formatter>(
        "%Y-%m-%dT%H:%M:%S.%eZ %-5l %v", spdlog::pattern_time_type::utc));
    auto logger = std::make_shared<spdlog::logger>("logship", sink);
    logger->set_level(spdlog::default_logger()->level());
    spdlog::set_default_logger(logger);
  }

  std::unique_ptr<Runtime> rt;
  try {
    rt = std::make_unique<Runtime>(std::move(cfg), spec);
  } catch (const ConfigError& e) {
    std::cerr << e.what() << "\n";
    return 2;
  } catch (const UsageError& e) {
    return usage(e.what());
  }
  const bool s3 = rec.from.front().starts_with("s3://");
  if (!a.dry_run && a.resume.empty()) {
    std::error_code ec;
    fs::create_directories(spec.run_dir, ec);
    std::ofstream out(spec.run_dir + "/run.json.new");
    out << run_json(rec);
    out.close();
    fs::rename(spec.run_dir + "/run.json.new", spec.run_dir + "/run.json", ec);
    if (!out || ec) {
      std::cerr << "logship replay: cannot write " << spec.run_dir << "/run.json\n";
      return 1;
    }
  }
  spdlog::info(
      "replay {}: source {} from {}{}{}{}", rec.run_id, rec.source, fmt::join(rec.from, " "),
      rec.since ? " since " + replay::format_time(*rec.since) : "",
      rec.until ? " until " + replay::format_time(*rec.until) : "", a.dry_run ? " (dry run)" : "");

  // ---- progress: a live bar on a terminal, else a log line every 10 s --------------------------
  const char* unit = s3 ? "objects" : "files";
  std::mutex pm;
  std::condition_variable pcv;
  bool done = false;
  auto start = std::chrono::steady_clock::now();
  std::thread progress([&] {
    auto period = tty ? std::chrono::milliseconds(250) : std::chrono::milliseconds(10000);
    auto last_t = start;
    uint64_t last_b = 0, last_e = 0;
    double rb = 0, re = 0;
    std::unique_lock lk(pm);
    while (!pcv.wait_for(lk, period, [&] { return done; })) {
      auto now = std::chrono::steady_clock::now();
      auto s = replay::Snapshot::of(ctx->progress);
      double dt = std::chrono::duration<double>(now - last_t).count();
      if (dt > 0) {
        // Smoothed over about two seconds on the terminal.
        double a = tty ? std::min(1.0, dt / 2.0) : 1.0;
        rb += a * (double(s.bytes_read - last_b) / dt - rb);
        re += a * (double(s.events_sent - last_e) / dt - re);
      }
      last_t = now;
      last_b = s.bytes_read;
      last_e = s.events_sent;
      std::string line = replay::progress_line(s, unit, rb, re, tty ? terminal_width() - 1 : 160);
      if (tty) {
        term.draw(line);
      } else {
        spdlog::info("replay {}: {}", rec.run_id, line);
      }
    }
  });

  int rc = rt->run(std::chrono::duration_cast<std::chrono::milliseconds>(*d));
  {
    std::lock_guard lk(pm);
    done = true;
  }
  pcv.notify_all();
  progress.join();
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (tty) {
    term.draw(replay::progress_line(replay::Snapshot::of(ctx->progress), unit, 0, 0,
                                    terminal_width() - 1));
    term.end();
  }

  // ---- summary ----------------------------------------------------------------------------------
  const replay::Progress& P = ctx->progress;
  replay::Summary sum;
  sum.run_id = rec.run_id;
  sum.dry_run = a.dry_run;
  sum.interrupted = ctx->interrupted;
  uint64_t units = a.dry_run ? P.units_selected - P.units_skipped : P.units_done.load();
  (s3 ? sum.objects : sum.files) = units;
  sum.bytes = a.dry_run ? P.bytes_selected - std::min(P.bytes_selected.load(), P.bytes_read.load())
                        : P.bytes_done.load();
  sum.events = P.events_sent;
  sum.event_bytes = P.event_bytes_sent;
  sum.events_outside = P.events_outside;
  sum.skipped_done = P.units_skipped;
  sum.outside_window = P.units_outside;
  sum.list_requests = P.list_requests;
  if (P.first_time_ns.load() <= P.last_time_ns.load()) {
    sum.first_time = P.first_time_ns.load();
    sum.last_time = P.last_time_ns.load();
  }
  sum.failures = P.failures();
  sum.dead_lettered = rt->dead_lettered();
  sum.seconds = secs;
  rt.reset();
  if (scratch) {
    std::error_code ec;
    fs::remove_all(spec.run_dir, ec);
  }
  std::cout << replay::summary_text(sum);
  if (!a.summary_json.empty()) {
    std::ofstream out(a.summary_json);
    out << replay::summary_json(sum);
    if (!out) std::cerr << "logship replay: cannot write " << a.summary_json << "\n";
  }
  if (sum.interrupted) {
    std::cout << fmt::format("interrupted: continue with  logship replay -c {} --resume {}\n",
                             a.config, rec.run_id);
    std::cout.flush();
    return 130;
  }
  std::cout.flush();
  if (rc != 0) return rc;
  if (!sum.failures.empty() || sum.dead_lettered > 0) return 1;
  return 0;
}

}  // namespace logship
