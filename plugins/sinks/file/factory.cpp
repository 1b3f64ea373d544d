#include "agent/config/config.h"
#include "agent/pipeline/registry.h"
#include "plugins/sinks/file/json_lines_sink.h"

namespace logship {
void register_sinks_file(Registry& r) {
  r.add_sink("file", [](ConfigNode& cfg, const ComponentContext& ctx) -> std::unique_ptr<Sink> {
    std::string path = cfg.str("path");
    if (path.empty()) cfg.error("path", "path must not be empty");
    cfg.throw_if_errors();
    return std::make_unique<JsonLinesSink>(path, ctx);
  });
}
}  // namespace logship
