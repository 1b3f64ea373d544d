#include "agent/config/config.h"
#include "agent/pipeline/registry.h"
#include "plugins/sources/file/file_source.h"

namespace logship {
void register_sources_file(Registry& r) {
  r.add_source("file", [](ConfigNode& cfg, const ComponentContext& ctx) -> std::unique_ptr<Source> {
    return std::make_unique<FileSource>(FileSourceConfig::parse(cfg), ctx);
  });
}
}  // namespace logship
