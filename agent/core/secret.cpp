#include "agent/core/secret.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <stdexcept>

#include "agent/core/log.h"

namespace logship {

std::string Secret::read_file(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw std::runtime_error("cannot open secret file " + path + ": " + strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    throw std::runtime_error("secret file " + path + " is not a regular file");
  }
  if (st.st_mode & (S_IRWXG | S_IRWXO)) {
    ::close(fd);
    throw std::runtime_error("secret file " + path +
                             " must not be group- or world-accessible (chmod 600 it)");
  }
  if (st.st_size > 64 * 1024) {
    ::close(fd);
    throw std::runtime_error("secret file " + path + " is larger than 64KiB");
  }
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      ::close(fd);
      throw std::runtime_error("cannot read secret file " + path + ": " + strerror(errno));
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  if (out.empty()) throw std::runtime_error("secret file " + path + " is empty");
  return out;
}

std::string Secret::reload() {
  if (file_.empty()) return "";
  try {
    std::string v = read_file(file_);
    std::lock_guard lk(mu_);
    value_ = std::move(v);
    return "";
  } catch (const std::exception& e) {
    return e.what();
  }
}

std::vector<std::string_view> secret_lines(std::string_view value) {
  std::vector<std::string_view> out;
  while (!value.empty()) {
    size_t nl = value.find('\n');
    std::string_view line = value.substr(0, nl);
    value = nl == std::string_view::npos ? std::string_view() : value.substr(nl + 1);
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t'))
      line.remove_suffix(1);
    while (!line.empty() && (line.front() == ' ' || line.front() == '\t')) line.remove_prefix(1);
    if (!line.empty()) out.push_back(line);
  }
  return out;
}

SecretStore& SecretStore::instance() {
  static SecretStore s;
  return s;
}

std::shared_ptr<Secret> SecretStore::add(std::string value, std::string file) {
  auto s = std::make_shared<Secret>(std::move(value), std::move(file));
  if (!s->file().empty()) {
    std::lock_guard lk(mu_);
    secrets_.push_back(s);
  }
  return s;
}

int SecretStore::reload_all() {
  std::vector<std::shared_ptr<Secret>> live;
  {
    std::lock_guard lk(mu_);
    for (auto& w : secrets_)
      if (auto s = w.lock()) live.push_back(s);
  }
  int failures = 0;
  for (auto& s : live) {
    std::string err = s->reload();
    if (!err.empty()) {
      ++failures;
      spdlog::error("SIGHUP: {}; keeping the previous value", err);
    } else {
      spdlog::info("SIGHUP: re-read secret file {}", s->file());
    }
  }
  generation_.fetch_add(1, std::memory_order_acq_rel);
  return failures;
}

}  // namespace logship
