#include "agent/cli/dead_letters.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <thread>

#include <fmt/format.h>

namespace logship {

namespace {
std::atomic<bool> g_stop{false};
void on_signal(int) {
  g_stop = true;
}

/// Prints the complete records of `buf` (blocks and lines); returns how many bytes it consumed
/// (a partial record at the end is left for later). `final`: the file will not grow, a partial
/// record is printed (a line) or reported (a block).
size_t print_records(const std::string& name, uint64_t base, std::string_view buf,
                     crypto::BlockOpener* opener, bool final, int& rc) {
  size_t at = 0;
  std::string plain;
  while (at < buf.size()) {
    std::string_view rest = buf.substr(at);
    if (rest.size() >= 4 && rest.substr(0, 4) == "LSBK") {
      if (rest.size() < crypto::kBlockHeaderBytes) {
        if (!final) return at;
      }
      crypto::BlockHeader h;
      const auto* hp = reinterpret_cast<const uint8_t*>(rest.data());
      if (rest.size() >= crypto::kBlockHeaderBytes && crypto::BlockHeader::decode(hp, h)) {
        if (rest.size() < h.block_bytes()) {
          if (!final) return at;
          fmt::print(stderr, "logship: {}: the block at offset {} is truncated\n", name, base + at);
          rc = 1;
          return buf.size();
        }
        if (!opener) {
          fmt::print(stderr,
                     "logship: {}: holds encrypted dead letters, but no encryption key is "
                     "configured\n",
                     name);
          rc = 1;
          return buf.size();
        }
        std::string err = opener->open(
            h, hp, rest.substr(crypto::kBlockHeaderBytes, h.sealed_len + crypto::kBlockTagBytes),
            plain);
        if (!err.empty()) {
          fmt::print(stderr, "logship: {}: block at offset {}: {}\n", name, base + at, err);
          rc = 1;
        } else {
          std::fwrite(plain.data(), 1, plain.size(), stdout);
        }
        at += h.block_bytes();
        continue;
      }
      if (rest.size() < crypto::kBlockHeaderBytes) {
        fmt::print(stderr, "logship: {}: a damaged record at offset {}\n", name, base + at);
        rc = 1;
        return buf.size();
      }
    }
    size_t nl = rest.find('\n');
    if (nl == std::string_view::npos) {
      if (!final) return at;
      nl = rest.size() - 1;
    }
    std::fwrite(rest.data(), 1, nl + 1, stdout);
    at += nl + 1;
  }
  return at;
}
}  // namespace

int print_dead_letters(const std::vector<std::string>& files,
                       std::shared_ptr<const crypto::KeyRing> ring, bool follow) {
  int rc = 0;
  std::unique_ptr<crypto::BlockOpener> opener;
  if (ring && !ring->empty()) opener = std::make_unique<crypto::BlockOpener>(ring);
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  for (size_t i = 0; i < files.size(); ++i) {
    bool last = i + 1 == files.size();
    const std::string& path = files[i];
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      if (!(last && follow)) continue;
      while (fd < 0 && !g_stop) {
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
        fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
      }
      if (fd < 0) break;
    }
    std::string pending;
    uint64_t consumed = 0;
    char buf[1 << 16];
    for (;;) {
      ssize_t n = ::read(fd, buf, sizeof buf);
      if (n > 0) {
        pending.append(buf, static_cast<size_t>(n));
        size_t used = print_records(path, consumed, pending, opener.get(), false, rc);
        pending.erase(0, used);
        consumed += used;
        continue;
      }
      if (!(last && follow) || g_stop) break;
      std::fflush(stdout);
      // Rotated (the file at `path` is another one now): the rest of this one, then the new one.
      struct stat a {
      }, b{};
      if (::fstat(fd, &a) == 0 && ::stat(path.c_str(), &b) == 0 &&
          (a.st_ino != b.st_ino || a.st_dev != b.st_dev)) {
        print_records(path, consumed, pending, opener.get(), true, rc);
        pending.clear();
        consumed = 0;
        ::close(fd);
        fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0) break;
        continue;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    if (!pending.empty()) print_records(path, consumed, pending, opener.get(), true, rc);
    if (fd >= 0) ::close(fd);
  }
  std::fflush(stdout);
  return rc;
}

}  // namespace logship
