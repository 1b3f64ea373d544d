#pragma once
// `logship replay`: backfills archived logs (an S3 prefix or local files) through a configured
// source's settings, transforms and sinks, with a time window, rate limits, progress, a summary
// and resume (docs/replay.md).
#include <optional>
#include <string>
#include <vector>

namespace logship {

struct ReplayArgs {
  std::string config;
  std::string source;
  std::vector<std::string> from;
  std::string since, until;
  std::vector<std::string> sinks;
  std::string rate, events_rate;
  bool dry_run = false;
  std::string resume;
  std::string run_id;
  bool no_mark = false;
  std::string summary_json;
  std::string log_level;
  std::string drain = "30s";
};

/// Runs the command; returns the exit status (0 all delivered, 1 something failed, 2 usage or
/// configuration, 130 interrupted).
int replay_command(const ReplayArgs& args);

}  // namespace logship
