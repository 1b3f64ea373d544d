#pragma once
// The `splunk_hec` source: an HEC-compatible HTTP(S) receiver (implemented in server.cpp, the
// only translation unit of this plugin that includes Boost.Beast).
#include <memory>

#include "agent/pipeline/component.h"
#include "plugins/sources/splunk_hec/config.h"

namespace logship::hec_receiver {

/// Builds the source; does no I/O (binding and certificate loading happen in run(), which throws
/// std::runtime_error naming the address or file on failure).
std::unique_ptr<Source> make_hec_source(HecSourceConfig cfg, const ComponentContext& ctx);

}  // namespace logship::hec_receiver
