#include "agent/pipeline/event_id.h"

#include <cstring>

#include <xxhash.h>

namespace logship {

std::string event_id(std::string_view source_id, std::string_view identity, uint64_t position,
                     uint32_t seq) {
  // Length-prefixed parts: no two different inputs hash the same bytes.
  std::string buf;
  buf.reserve(source_id.size() + identity.size() + 28);
  auto put = [&buf](const void* p, size_t n) { buf.append(static_cast<const char*>(p), n); };
  uint64_t n = source_id.size();
  put(&n, sizeof n);
  buf.append(source_id);
  n = identity.size();
  put(&n, sizeof n);
  buf.append(identity);
  put(&position, sizeof position);
  put(&seq, sizeof seq);
  XXH128_hash_t h = XXH3_128bits(buf.data(), buf.size());
  XXH128_canonical_t c;
  XXH128_canonicalFromHash(&c, h);
  static const char* kHex = "0123456789abcdef";
  std::string out(32, '0');
  for (size_t i = 0; i < 16; ++i) {
    out[2 * i] = kHex[c.digest[i] >> 4];
    out[2 * i + 1] = kHex[c.digest[i] & 15];
  }
  return out;
}

std::string with_field(std::string_view fields, std::string_view key, std::string_view value) {
  std::string out;
  size_t close = fields.rfind('}');
  if (fields.empty() || close == std::string_view::npos) {
    out = "{";
  } else {
    out.assign(fields.substr(0, close));
    if (out.find_first_not_of(" \t\r\n{") != std::string::npos) out += ',';
  }
  out += '"';
  out += key;
  out += "\":\"";
  out += value;
  out += "\"}";
  return out;
}

std::string with_event_id(std::string_view fields, std::string_view id) {
  return with_field(fields, "logship_event_id", id);
}

}  // namespace logship
