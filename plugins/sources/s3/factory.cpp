// Registers the `s3` source.
#include "agent/config/config.h"
#include "agent/pipeline/registry.h"
#include "plugins/sources/s3/config.h"
#include "plugins/sources/s3/s3_source.h"

namespace logship {

void register_sources_s3(Registry& r) {
  r.add_source("s3", [](ConfigNode& cfg, const ComponentContext& ctx) {
    S3SourceConfig c = S3SourceConfig::parse(cfg);
    cfg.throw_if_errors();
    return s3::make_s3_source(std::move(c), ctx);
  });
}

}  // namespace logship
