#include "plugins/sources/file/fingerprint.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <vector>

#include <xxhash.h>

namespace logship {
namespace {
// Reads exactly `len` bytes at `offset`, or fewer at end of file; -1 on error.
ssize_t pread_full(int fd, char* buf, size_t len, uint64_t offset) {
  size_t got = 0;
  while (got < len) {
    ssize_t n = ::pread(fd, buf + got, len - got, static_cast<off_t>(offset + got));
    if (n < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  return static_cast<ssize_t>(got);
}
}  // namespace

std::optional<Fingerprint> fingerprint_fd(int fd, uint32_t max_bytes) {
  std::vector<char> buf(max_bytes);
  ssize_t n = pread_full(fd, buf.data(), max_bytes, 0);
  if (n < 0) return std::nullopt;
  return Fingerprint{XXH64(buf.data(), static_cast<size_t>(n), 0), static_cast<uint32_t>(n)};
}

std::optional<uint64_t> hash_prefix(int fd, uint32_t len) {
  std::vector<char> buf(len);
  ssize_t n = pread_full(fd, buf.data(), len, 0);
  if (n != static_cast<ssize_t>(len)) return std::nullopt;
  return XXH64(buf.data(), len, 0);
}

std::optional<uint64_t> tail_hash(int fd, uint64_t offset) {
  if (offset == 0) return 0;
  uint32_t len = static_cast<uint32_t>(std::min<uint64_t>(offset, kTailHashBytes));
  char buf[kTailHashBytes];
  ssize_t n = pread_full(fd, buf, len, offset - len);
  if (n != static_cast<ssize_t>(len)) return std::nullopt;
  return XXH64(buf, len, 0);
}

}  // namespace logship
