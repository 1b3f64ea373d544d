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
  std::string bucket;     ///< "" = the configured bucket (poll mode); set from notifications (sqs)
  std::string sequencer;  ///< sqs: orders the events of one key (identifies a version without ETag)
  /// The object's name in the source's state: the key, prefixed by the bucket when it is set.
  std::string state_key() const { return bucket.empty() ? key : bucket + "/" + key; }
  /// What identifies this version: the ETag, else the notification's sequencer.
  std::string version() const {
    return etag.empty() && !sequencer.empty() ? "seq:" + sequencer : etag;
  }
};

struct ListPage {
  std::vector<ObjectInfo> objects;
  bool truncated = false;
  std::string next_token;  ///< NextContinuationToken
  /// `<CommonPrefixes><Prefix>`: the "directories" of a listing made with a delimiter.
  std::vector<std::string> common_prefixes;
};

/// Parses a ListBucketResult; nullopt (with `error` set) when it is not one.
std::optional<ListPage> parse_list_objects_v2(std::string_view xml, std::string* error);

}  // namespace logship::s3
