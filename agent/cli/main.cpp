// logship: run | check | version. Exit codes: 0 ok, 1 runtime failure, 2 bad config or usage.
#include <malloc.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>

#include <CLI/CLI.hpp>

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

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
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
    auto d = parse_duration(drain);
    if (!d) {
      std::cerr << "logship: --drain-timeout: invalid duration \"" << drain
                << "\"; expected a duration such as 10s\n";
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
