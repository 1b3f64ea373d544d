#include "plugins/sources/file/config.h"

#include <fnmatch.h>
#include <unistd.h>

#include <fmt/format.h>

#include "agent/config/config.h"
#include "plugins/sources/file/decoder.h"
#include "plugins/sources/file/discovery.h"

namespace logship {

FileSourceConfig FileSourceConfig::parse(ConfigNode& cfg) {
  FileSourceConfig c;
  c.include = cfg.list("include");
  if (c.include.empty()) cfg.error("include", "include must list at least one glob");
  for (auto& g : c.include)
    if (g.empty() || g[0] != '/')
      cfg.error("include", "include globs must be absolute paths (\"" + g + "\")");
  c.exclude = cfg.list("exclude", std::vector<std::string>{});
  c.read_from_end = cfg.choice("read_from", "beginning", {"beginning", "end"}) == "end";
  c.ignore_older_than = cfg.opt_duration("ignore_older_than");
  c.fingerprint_bytes = cfg.size("fingerprint_bytes", 1024);
  if (c.fingerprint_bytes < 16 || c.fingerprint_bytes > (1 << 20))
    cfg.error("fingerprint_bytes", "fingerprint_bytes must be between 16 and 1MiB");
  c.scan_interval = cfg.duration("scan_interval", std::chrono::seconds(1));
  if (c.scan_interval < std::chrono::milliseconds(10))
    cfg.error("scan_interval", "scan_interval must be at least 10ms");
  c.poll_only = cfg.boolean("poll_only", false);
  c.max_line_bytes = cfg.size("max_line_bytes", 1 << 20);
  if (c.max_line_bytes < 64 || c.max_line_bytes > (64ull << 20))
    cfg.error("max_line_bytes", "max_line_bytes must be between 64 and 64MiB");
  c.partial_line_timeout = cfg.duration("partial_line_timeout", std::chrono::seconds(5));
  c.max_open_files = cfg.integer("max_open_files", 1024, 1, 1 << 20);
  c.rotate_wait = cfg.duration("rotate_wait", std::chrono::seconds(10));
  if (c.rotate_wait > std::chrono::hours(24))
    cfg.error("rotate_wait", "rotate_wait must be at most 24h");
  c.decode = FileDecodeConfig::parse(cfg, c.max_line_bytes);
  char hn[256] = {0};
  if (::gethostname(hn, sizeof hn - 1) != 0) hn[0] = 0;
  c.host = cfg.str("host", std::string(hn));
  c.source = cfg.opt_str("source");
  c.sourcetype = cfg.str("sourcetype", std::string());
  c.index = cfg.str("index", std::string());
  c.event_id = cfg.boolean("event_id", false);
  return c;
}

}  // namespace logship

namespace logship {
namespace {
std::vector<std::string> segments(const std::string& p) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < p.size()) {
    size_t j = p.find('/', i);
    if (j == std::string::npos) j = p.size();
    if (j > i) out.push_back(p.substr(i, j - i));
    i = j + 1;
  }
  return out;
}
// True when `pattern` can match a file somewhere below directory `dir`.
bool glob_reaches_under(const std::string& pattern, const std::string& dir) {
  auto ps = segments(pattern), ds = segments(dir);
  for (size_t i = 0; i < ds.size(); ++i) {
    if (i >= ps.size()) return false;
    if (ps[i].find("**") != std::string::npos) return true;
    if (::fnmatch(ps[i].c_str(), ds[i].c_str(), FNM_PERIOD) != 0) return false;
  }
  return ps.size() > ds.size();
}
bool excluded(const std::vector<std::string>& exclude, const std::string& p) {
  for (auto& ex : exclude)
    if (ex.find("**") != std::string::npos ? glob_match(ex, p)
                                           : ::fnmatch(ex.c_str(), p.c_str(), 0) == 0)
      return true;
  return false;
}
std::vector<std::pair<std::string, std::string>> globs_of(const ComponentDecl& d,
                                                          const char* key) {
  // (glob, position) of a scalar or list key, interpolated.
  std::vector<std::pair<std::string, std::string>> out;
  YAML::Node n = d.node->raw()[key];
  auto add = [&](const YAML::Node& e) {
    if (!e.IsScalar()) return;
    try {
      out.emplace_back(interpolate(e.Scalar()), d.node->where_node(e));
    } catch (const std::exception&) {
      // reported where the source parsed it
    }
  };
  if (n.IsSequence()) {
    for (const auto& e : n) add(e);
  } else {
    add(n);
  }
  return out;
}
}  // namespace

void check_file_sources_against_outputs(const Config& cfg) {
  std::string data_dir = cfg.data_dir;
  while (data_dir.size() > 1 && data_dir.back() == '/') data_dir.pop_back();
  for (auto& src : cfg.sources) {
    if (src.type != "file") continue;
    auto includes = globs_of(src, "include");
    std::vector<std::string> exclude;
    for (auto& [g, at] : globs_of(src, "exclude")) exclude.push_back(g);
    for (auto& [glob, at] : includes) {
      for (auto& sink : cfg.sinks) {
        if (sink.type != "file") continue;
        auto paths = globs_of(sink, "path");
        if (paths.empty()) continue;
        auto& [path, path_at] = paths.front();
        if (glob_match(glob, path) && !excluded(exclude, path))
          throw ConfigError(fmt::format(
              "{}: the file sink \"{}\" writes {}, which the file source \"{}\" reads (include "
              "\"{}\" at {}): logship would read back its own output without end; expected a sink "
              "path outside the source's globs, or an exclude for it",
              path_at, sink.id, path, src.id, glob, at));
      }
      if (glob_reaches_under(glob, data_dir))
        throw ConfigError(fmt::format(
            "{}: the include glob \"{}\" of the file source \"{}\" covers data_dir {} ({}): "
            "logship would read its own checkpoints and dead letters; expected globs outside "
            "data_dir",
            at, glob, src.id, data_dir, cfg.data_dir_at));
    }
  }
}

}  // namespace logship
