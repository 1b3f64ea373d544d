#include "plugins/sources/file/discovery.h"

#include <fnmatch.h>
#include <glob.h>

#include <filesystem>
#include <unordered_set>

namespace logship {
namespace {
constexpr int kMaxDepth = 32;
constexpr size_t kMaxWalkEntries = 1000000;

// Recursive matcher: `**` = any sequence (incl. `/`), `*`/`?`/`[..]` stay within a segment.
bool match_from(const char* p, const char* s) {
  for (;;) {
    if (*p == '\0') return *s == '\0';
    if (p[0] == '*' && p[1] == '*') {
      p += 2;
      if (*p == '/') {
        // `**/` also matches zero directories.
        if (match_from(p + 1, s)) return true;
      }
      for (const char* t = s;; ++t) {
        if (match_from(p, t)) return true;
        if (*t == '\0') return false;
      }
    }
    if (*p == '*') {
      ++p;
      for (const char* t = s;; ++t) {
        if (match_from(p, t)) return true;
        if (*t == '\0' || *t == '/') return false;
      }
    }
    if (*s == '\0') return false;
    if (*p == '?') {
      if (*s == '/') return false;
      ++p;
      ++s;
      continue;
    }
    if (*p == '[') {
      const char* q = p + 1;
      bool negate = *q == '!' || *q == '^';
      if (negate) ++q;
      bool found = false;
      const char* start = q;
      while (*q && (*q != ']' || q == start)) {
        if (q[1] == '-' && q[2] && q[2] != ']') {
          if (*s >= q[0] && *s <= q[2]) found = true;
          q += 3;
        } else {
          if (*s == *q) found = true;
          ++q;
        }
      }
      if (*q != ']') {  // not a class: literal '['
        if (*s != '[') return false;
        ++p;
        ++s;
        continue;
      }
      if (found == negate || *s == '/') return false;
      p = q + 1;
      ++s;
      continue;
    }
    if (*p == '\\' && p[1]) ++p;
    if (*p != *s) return false;
    ++p;
    ++s;
  }
}
}  // namespace

bool glob_match(const std::string& pattern, const std::string& path) {
  return match_from(pattern.c_str(), path.c_str());
}

std::string glob_static_dir(const std::string& pattern) {
  size_t wild = pattern.find_first_of("*?[");
  std::string prefix = wild == std::string::npos ? pattern : pattern.substr(0, wild);
  size_t slash = prefix.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : prefix.substr(0, slash);
}

std::vector<std::string> discover_files(const std::vector<std::string>& include,
                                        const std::vector<std::string>& exclude) {
  std::vector<std::string> out;
  std::unordered_set<std::string> seen;
  auto add = [&](std::string p) {
    for (auto& ex : exclude)
      if (ex.find("**") != std::string::npos ? glob_match(ex, p)
                                             : ::fnmatch(ex.c_str(), p.c_str(), 0) == 0)
        return;
    if (seen.insert(p).second) out.push_back(std::move(p));
  };
  for (auto& pattern : include) {
    if (pattern.find("**") == std::string::npos) {
      glob_t g{};
      if (::glob(pattern.c_str(), GLOB_NOSORT, nullptr, &g) == 0)
        for (size_t i = 0; i < g.gl_pathc; ++i) add(g.gl_pathv[i]);
      ::globfree(&g);
      continue;
    }
    std::error_code ec;
    std::string base = glob_static_dir(pattern);
    namespace fs = std::filesystem;
    fs::recursive_directory_iterator it(base, fs::directory_options::skip_permission_denied, ec);
    size_t walked = 0;
    for (; !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
      if (++walked > kMaxWalkEntries) break;
      if (it.depth() > kMaxDepth) {
        it.disable_recursion_pending();
        continue;
      }
      // Every match is returned, whatever its type: the caller warns about those that are not
      // regular files (a directory named like a log), as for globs without `**`.
      std::string p = it->path().string();
      if (glob_match(pattern, p)) add(std::move(p));
    }
  }
  return out;
}

}  // namespace logship
