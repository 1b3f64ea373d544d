// logship: run | check | version. Exit codes: 0 ok, 1 runtime failure, 2 bad config or usage.
#include <malloc.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>

#include <CLI/CLI.hpp>

#include "agent/cli/replay.h"
#include "agent/cli/runtime.h"
#include "agent/cli/version.h"
#include "agent/config/config.h"
#include "agent/core/log.h"
#include "agent/core/units.h"

using namespace logship;

int main(int argc, char** argv) {
  // Batches (~1 MiB) are built on one thread and freed on another. glibc's default of one arena
  // per thread (up to 8 per core) keeps the freed blocks of each arena. A single arena bounds that
  // retention; one arena is enough for our few threads (bench/run file-to-hec, 512 MiB: peak RSS
  // 75.4 -> 54.5 MiB, CPU 3.0 s/GiB either way). GLIBC_TUNABLES wins.
  if (!std::getenv("GLIBC_TUNABLES")) mallopt(M_ARENA_MAX, 1);
  CLI::App app{"logship: ships logs to Splunk HEC"};
  app.require_subcommand(1);
  app.set_version_flag("-V,--version", [] {
    std::string v = version_text();
    if (!v.empty() && v.back() == '\n') v.pop_back();  // CLI11 ends the text with its own newline
    return v;
  }, "Print the version and the linked libraries");
  std::string run_config, check_config, log_level_override;
  std::string drain = "10s";
  auto* run = app.add_subcommand("run", "Run the pipeline described by a configuration file");
  run->add_option("-c,--config", run_config, "Configuration file (YAML)")->required();
  run->add_option("--drain-timeout", drain, "Time allowed to drain on SIGTERM (default 10s)");
  run->add_option("--log-level", log_level_override, "Overrides log.level");
  auto* check = app.add_subcommand("check", "Validate a configuration and print the topology");
  check->add_option("-c,--config", check_config, "Configuration file (YAML)")->required();
  std::string dl_config, dl_sink;
  bool dl_follow = false;
  auto* dl = app.add_subcommand("dead-letters", "Print a sink's dead letters (decrypted)");
  dl->add_option("-c,--config", dl_config, "Configuration file (YAML)")->required();
  dl->add_option("--sink", dl_sink, "Sink id")->required();
  dl->add_flag("--follow", dl_follow, "Keep printing new dead letters until interrupted");
  app.add_subcommand("version", "Print the version and the linked libraries");
  ReplayArgs ra;
  auto* rp =
      app.add_subcommand("replay",
                         "Backfill archived logs (S3 prefixes, local files) through a source's "
                         "settings, transforms and sinks (docs/replay.md)");
  rp->add_option("-c,--config", ra.config, "Configuration file (YAML)")->required();
  rp->add_option("--source", ra.source, "Id of the s3 or file source whose settings apply");
  rp->add_option("--from", ra.from,
                 "s3://bucket/prefix, or local paths and globs (.gz, .zst, plain)");
  rp->add_option("--since", ra.since, "Oldest event time: RFC 3339 or a date (2026-11-01)");
  rp->add_option("--until", ra.until, "Events before this time: RFC 3339 or a date");
  rp->add_option("--sink", ra.sinks, "Only these sinks (default: every sink the source feeds)");
  rp->add_option("--rate", ra.rate, "Event bytes per second, e.g. 2MiB/s");
  rp->add_option("--events-rate", ra.events_rate, "Events per second");
  rp->add_flag("--dry-run", ra.dry_run, "List and count what would be sent; send nothing");
  rp->add_option("--resume", ra.resume, "Continue an interrupted run");
  rp->add_option("--run-id", ra.run_id, "Name of the run (default <source>-<UTC time>)");
  rp->add_flag("--no-mark", ra.no_mark, "Do not add the indexed field logship_replay=<run id>");
  rp->add_option("--summary-json", ra.summary_json, "Also write the summary as JSON to this file");
  rp->add_option("--log-level", ra.log_level, "Overrides log.level");
  rp->add_option("--drain-timeout", ra.drain, "Time allowed to drain on Ctrl-C (default 30s)");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }

  if (app.got_subcommand("replay")) {
    try {
      return replay_command(ra);
    } catch (const std::exception& e) {
      std::cerr << "logship replay: " << e.what() << "\n";
      return 1;
    }
  }
  if (app.got_subcommand("version")) {
    std::cout << version_text();
    return 0;
  }

  const std::string& path = app.got_subcommand("run")            ? run_config
                            : app.got_subcommand("dead-letters") ? dl_config
                                                                 : check_config;
  try {
    // Every error is reported: the loader's and then the components' (Runtime throws them all).
    Config cfg = load_config(path, /*defer_errors=*/true);
    if (app.got_subcommand("dead-letters")) {
      init_logging("warn", "text");
      Runtime rt(std::move(cfg));
      return rt.dead_letters(dl_sink, dl_follow);
    }
    if (app.got_subcommand("check")) {
      init_logging("warn", "text");
      Runtime rt(std::move(cfg));
      std::cout << rt.describe();
      return 0;
    }
    init_logging(log_level_override.empty() ? cfg.log_level : log_level_override, cfg.log_format);
    auto d = parse_duration_arg(drain);
    if (!d) {
      std::cerr << "logship: --drain-timeout: invalid duration \"" << drain
                << "\"; expected a duration such as 10s (a bare number is seconds)\n";
      return 2;
    }
    Runtime rt(std::move(cfg));
    return rt.run(std::chrono::duration_cast<std::chrono::milliseconds>(*d));
  } catch (const ConfigError& e) {
    std::cerr << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "logship: " << e.what() << "\n";
    return 1;
  }
}
