#pragma once
// File identity helpers (xxHash64). A file is identified by (device, inode) while it lives; the
// fingerprint (hash of its first `fingerprint_bytes`, or of all it has while shorter) and the
// tail hash (hash of the bytes just before an offset) tell a reused inode from the file a
// checkpoint was taken on, and recognise a copy made by copytruncate.
#include <cstdint>
#include <optional>

namespace logship {

struct Fingerprint {
  uint64_t hash = 0;
  uint32_t len = 0;  ///< bytes hashed (< fingerprint_bytes while the file is shorter)
  bool operator==(const Fingerprint&) const = default;
};

/// Bytes hashed before an offset by tail_hash().
constexpr uint32_t kTailHashBytes = 1024;  // more than one typical line: lines often end alike

/// Hash of the first min(size, max_bytes) bytes of `fd` (pread; the file position is untouched).
std::optional<Fingerprint> fingerprint_fd(int fd, uint32_t max_bytes);
/// Hash of exactly `len` bytes at the start of `fd`; nullopt when the file is shorter.
std::optional<uint64_t> hash_prefix(int fd, uint32_t len);
/// Hash of the up to kTailHashBytes bytes before `offset` (0 for offset 0); nullopt on a short
/// read (the file is shorter than `offset`).
std::optional<uint64_t> tail_hash(int fd, uint64_t offset);

}  // namespace logship
