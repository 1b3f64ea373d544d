#include "agent/config/config.h"
#include "agent/pipeline/registry.h"
#include "plugins/sinks/file/json_lines_sink.h"

namespace logship {
void register_sinks_console(Registry& r) {
  r.add_sink("console", [](ConfigNode& cfg, const ComponentContext& ctx) -> std::unique_ptr<Sink> {
    cfg.throw_if_errors();
    return std::make_unique<JsonLinesSink>("", ctx);
  });
}
}  // namespace logship
