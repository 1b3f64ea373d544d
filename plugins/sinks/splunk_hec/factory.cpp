// Placeholder until the plugin lands (owned by a helper; will be replaced).
#include "agent/pipeline/registry.h"
namespace logship {
void register_sinks_splunk_hec(Registry&) {}
}  // namespace logship
