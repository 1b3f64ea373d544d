#pragma once
// The `s3` source, `mode: poll`: lists the configured prefixes every `poll_interval`, and reads
// each new object (key + ETag not yet handled within `lookback`) as a stream of ranged GETs
// pinned to its ETag, through decompression and the format parser, batch by batch. Memory does
// not depend on object size. Progress per object is the number of records whose delivery was
// acknowledged, so a restart resumes after the last of them. The SQS mode will feed the same
// object reader from event notifications.
#include <memory>

#include "agent/pipeline/component.h"
#include "plugins/sources/s3/config.h"

namespace logship::s3 {

std::unique_ptr<Source> make_s3_source(S3SourceConfig cfg, const ComponentContext& ctx);

}  // namespace logship::s3
