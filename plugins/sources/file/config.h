#pragma once
// `file` source configuration (CONFIG.md "Source file"). Parsing is pure: no file is touched.
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "plugins/sources/file/decoder.h"

namespace logship {
class ConfigNode;
struct Config;

/// Refuses a configuration in which a `file` source would read logship's own output: a `file`
/// sink's path matched by a source's include globs (and not excluded), or an include glob that
/// covers data_dir. The ConfigError names both positions.
void check_file_sources_against_outputs(const Config& cfg);

struct FileSourceConfig {
  std::vector<std::string> include;            ///< required; absolute globs
  std::vector<std::string> exclude;            ///< default []
  bool read_from_end = false;                  ///< read_from: beginning (default) | end
  std::optional<std::chrono::nanoseconds> ignore_older_than;  ///< default unset
  uint64_t fingerprint_bytes = 1024;           ///< default 1KiB
  std::chrono::nanoseconds scan_interval = std::chrono::seconds(1);  ///< default 1s
  bool poll_only = false;                      ///< default false
  uint64_t max_line_bytes = 1 << 20;           ///< default 1MiB
  std::chrono::nanoseconds partial_line_timeout = std::chrono::seconds(5);  ///< default 5s
  int64_t max_open_files = 1024;               ///< default 1024
  /// A file renamed out of the globs or deleted is read until it did not grow for this long.
  std::chrono::nanoseconds rotate_wait = std::chrono::seconds(10);  ///< default 10s
  FileDecodeConfig decode;                     ///< codec, timestamp, multiline (decoder.h)
  std::string host;                            ///< default: the machine's hostname
  std::optional<std::string> source;           ///< default: the file path
  std::string sourcetype;                      ///< default unset
  std::string index;                           ///< default unset
  bool event_id = false;                       ///< attach logship_event_id (event_id.h)

  static FileSourceConfig parse(ConfigNode& cfg);
};

}  // namespace logship
