// splunk_hec sink registration: parse + validate the config (pure), build the sink (no I/O).
#include "agent/config/config.h"
#include "agent/pipeline/registry.h"
#include "plugins/sinks/splunk_hec/config.h"
#include "plugins/sinks/splunk_hec/sink.h"

namespace logship {

void register_sinks_splunk_hec(Registry& r) {
  r.add_sink("splunk_hec",
             [](ConfigNode& cfg, const ComponentContext& ctx) -> std::unique_ptr<Sink> {
               HecSinkConfig c = parse_hec_sink_config(cfg, ctx.data_dir, ctx.id);
               cfg.throw_if_errors();
               if (!ctx.dead_letter_suffix.empty() &&
                   c.dead_letter_path != ctx.data_dir + "/dead_letter/" + ctx.id + ".jsonl")
                 c.dead_letter_path += ctx.dead_letter_suffix;
               return std::make_unique<HecSink>(std::move(c), ctx);
             });
}

}  // namespace logship
