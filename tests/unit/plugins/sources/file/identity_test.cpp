// File source identity helpers and discovery.
#include <doctest/doctest.h>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "plugins/sources/file/discovery.h"
#include "plugins/sources/file/fingerprint.h"

using namespace logship;
namespace fs = std::filesystem;

namespace {
std::string temp_dir(const char* name) {
  auto p = fs::temp_directory_path() / (std::string("logship_ident_") + name + "_" +
                                        std::to_string(::getpid()));
  fs::remove_all(p);
  fs::create_directories(p);
  return p.string();
}
void write(const std::string& path, const std::string& data) {
  std::ofstream(path, std::ios::binary) << data;
}
}  // namespace

TEST_CASE("file glob: ** crosses directories, * and ? stay within one") {
  CHECK(glob_match("/var/log/**/*.log", "/var/log/a.log"));
  CHECK(glob_match("/var/log/**/*.log", "/var/log/x/y/z.log"));
  CHECK_FALSE(glob_match("/var/log/*.log", "/var/log/x/a.log"));
  CHECK(glob_match("/var/log/app-?.log", "/var/log/app-1.log"));
  CHECK_FALSE(glob_match("/var/log/app-?.log", "/var/log/app-12.log"));
  CHECK(glob_match("/var/log/[ab].log", "/var/log/b.log"));
  CHECK_FALSE(glob_match("/var/log/[!ab].log", "/var/log/a.log"));
  CHECK(glob_match("/var/log/**", "/var/log/deep/er/file"));
  CHECK(glob_static_dir("/var/log/**/*.log") == "/var/log");
  CHECK(glob_static_dir("/var/log/app.log") == "/var/log");
  CHECK(glob_static_dir("/a*") == "/");
}

TEST_CASE("file discovery: include, recursive **, and exclude on the full path") {
  std::string d = temp_dir("disc");
  fs::create_directories(d + "/sub/deeper");
  write(d + "/a.log", "a\n");
  write(d + "/b.txt", "b\n");
  write(d + "/sub/c.log", "c\n");
  write(d + "/sub/deeper/d.log", "d\n");
  write(d + "/sub/debug-e.log", "e\n");
  auto flat = discover_files({d + "/*.log"}, {});
  CHECK(flat == std::vector<std::string>{d + "/a.log"});
  auto deep = discover_files({d + "/**/*.log"}, {d + "/**/debug-*"});
  std::sort(deep.begin(), deep.end());
  CHECK(deep == std::vector<std::string>{d + "/a.log", d + "/sub/c.log", d + "/sub/deeper/d.log"});
  fs::remove_all(d);
}

TEST_CASE("file fingerprint: short files hash what they have, tail hash checks bytes before an offset") {
  std::string d = temp_dir("fp");
  write(d + "/f", "hello world\n");
  int fd = ::open((d + "/f").c_str(), O_RDONLY);
  REQUIRE(fd >= 0);
  auto fp = fingerprint_fd(fd, 1024);
  REQUIRE(fp);
  CHECK(fp->len == 12);
  CHECK(hash_prefix(fd, 12) == fp->hash);
  CHECK_FALSE(hash_prefix(fd, 13));  // shorter than asked
  auto t = tail_hash(fd, 6);
  REQUIRE(t);
  CHECK(tail_hash(fd, 0) == 0u);
  CHECK_FALSE(tail_hash(fd, 100));
  ::close(fd);
  // Same content elsewhere: same hashes (how a copy is recognised).
  write(d + "/g", "hello world\nmore\n");
  int fd2 = ::open((d + "/g").c_str(), O_RDONLY);
  CHECK(hash_prefix(fd2, 12) == fp->hash);
  CHECK(tail_hash(fd2, 6) == t);
  ::close(fd2);
  fs::remove_all(d);
}
