// Registers the `splunk_hec` source (an HEC receiver).
#include "agent/config/config.h"
#include "agent/pipeline/registry.h"
#include "plugins/sources/splunk_hec/config.h"
#include "plugins/sources/splunk_hec/source.h"

namespace logship {

void register_sources_splunk_hec(Registry& r) {
  r.add_source("splunk_hec", [](ConfigNode& cfg, const ComponentContext& ctx) {
    auto c = hec_receiver::parse_hec_source_config(cfg);
    cfg.throw_if_errors();
    return hec_receiver::make_hec_source(std::move(c), ctx);
  });
}

}  // namespace logship
