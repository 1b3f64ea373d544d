#pragma once
// S3 ListObjectsV2 responses (AWS.md §3), parsed with the small XML reader of agent/aws.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace logship::s3 {

struct ObjectInfo {
  std::string key;
  std::string etag;  ///< as S3 sends it, quotes removed
  int64_t last_modified_ns = 0;
  uint64_t size = 0;
};

struct ListPage {
  std::vector<ObjectInfo> objects;
  bool truncated = false;
  std::string next_token;  ///< NextContinuationToken
};

/// Parses a ListBucketResult; nullopt (with `error` set) when it is not one.
std::optional<ListPage> parse_list_objects_v2(std::string_view xml, std::string* error);

}  // namespace logship::s3
