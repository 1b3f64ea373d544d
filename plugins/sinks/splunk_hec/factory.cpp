// splunk_hec sink registration: parse + validate the config (pure), build the sink (no I/O).
#include "agent/config/config.h"
#include "agent/pipeline/registry.h"
#include "plugins/sinks/splunk_hec/config.h"
#include "plugins/sinks/splunk_hec/sink.h"

namespace logship {

void register_sinks_splunk_hec(Registry& r) {
  r.add_sink(
      "splunk_hec", [](ConfigNode& cfg, const ComponentContext& ctx) -> std::unique_ptr<Sink> {
        return std::make_unique<HecSink>(parse_hec_sink_config(cfg, ctx.data_dir, ctx.id), ctx);
      });
}

}  // namespace logship
