#include "agent/config/config.h"
#include "agent/pipeline/registry.h"
#include "plugins/sources/file/file_source.h"
#include "plugins/sources/file/replay_source.h"

namespace logship {
void register_sources_file(Registry& r) {
  r.add_source("file", [](ConfigNode& cfg, const ComponentContext& ctx) -> std::unique_ptr<Source> {
    FileSourceConfig c = FileSourceConfig::parse(cfg);
    cfg.throw_if_errors();
    if (ctx.replay) return make_file_replay_source(std::move(c), ctx);
    return std::make_unique<FileSource>(std::move(c), ctx);
  });
}
}  // namespace logship
