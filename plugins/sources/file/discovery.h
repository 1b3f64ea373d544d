#pragma once
// Glob discovery for the `file` source: `*`, `?`, `[..]` through glob(3); `**` (any depth)
// by a bounded recursive walk of the pattern's static prefix. `exclude` globs are matched
// against the full path (fnmatch, `*` crossing `/`).
#include <string>
#include <vector>

namespace logship {

/// Every path matching one of `include` and none of `exclude` (unsorted, unique).
std::vector<std::string> discover_files(const std::vector<std::string>& include,
                                        const std::vector<std::string>& exclude);
/// The directory a glob's matches live under, up to its first wildcard (for inotify watches).
std::string glob_static_dir(const std::string& pattern);
/// fnmatch-style match where `**` matches across `/` (and `*` does not).
bool glob_match(const std::string& pattern, const std::string& path);

}  // namespace logship
