#pragma once
// The `file` source as `logship replay` drives it: reads the archived files the run names
// (`--from` paths and globs; `.gz` / `.zst` recognised by their first bytes, anything else read
// as is), oldest first, each from start to end, through the source's codec, timestamp and
// multiline settings. Progress per file (its path, size and mtime, and the number of events
// whose delivery is acknowledged) is the run's checkpoint, so `--resume` continues after the
// last acknowledged event of a file and skips the files already done.
#include <memory>

#include "agent/pipeline/component.h"
#include "plugins/sources/file/config.h"

namespace logship {

std::unique_ptr<Source> make_file_replay_source(FileSourceConfig cfg, const ComponentContext& ctx);

}  // namespace logship
