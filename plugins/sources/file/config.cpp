#include "plugins/sources/file/config.h"

#include <unistd.h>

#include "agent/config/config.h"
#include "plugins/sources/file/decoder.h"

namespace logship {

FileSourceConfig FileSourceConfig::parse(ConfigNode& cfg) {
  FileSourceConfig c;
  c.include = cfg.list("include");
  if (c.include.empty()) cfg.fail("include", "include must list at least one glob");
  for (auto& g : c.include)
    if (g.empty() || g[0] != '/')
      cfg.fail("include", "include globs must be absolute paths (\"" + g + "\")");
  c.exclude = cfg.list("exclude", std::vector<std::string>{});
  c.read_from_end = cfg.choice("read_from", "beginning", {"beginning", "end"}) == "end";
  c.ignore_older_than = cfg.opt_duration("ignore_older_than");
  c.fingerprint_bytes = cfg.size("fingerprint_bytes", 1024);
  if (c.fingerprint_bytes < 16 || c.fingerprint_bytes > (1 << 20))
    cfg.fail("fingerprint_bytes", "fingerprint_bytes must be between 16 and 1MiB");
  c.scan_interval = cfg.duration("scan_interval", std::chrono::seconds(1));
  if (c.scan_interval < std::chrono::milliseconds(10))
    cfg.fail("scan_interval", "scan_interval must be at least 10ms");
  c.poll_only = cfg.boolean("poll_only", false);
  c.max_line_bytes = cfg.size("max_line_bytes", 1 << 20);
  if (c.max_line_bytes < 64 || c.max_line_bytes > (64ull << 20))
    cfg.fail("max_line_bytes", "max_line_bytes must be between 64 and 64MiB");
  c.partial_line_timeout = cfg.duration("partial_line_timeout", std::chrono::seconds(5));
  c.max_open_files = cfg.integer("max_open_files", 1024, 1, 1 << 20);
  c.decode = FileDecodeConfig::parse(cfg, c.max_line_bytes);
  char hn[256] = {0};
  if (::gethostname(hn, sizeof hn - 1) != 0) hn[0] = 0;
  c.host = cfg.str("host", std::string(hn));
  c.source = cfg.opt_str("source");
  c.sourcetype = cfg.str("sourcetype", std::string());
  c.index = cfg.str("index", std::string());
  return c;
}

}  // namespace logship
