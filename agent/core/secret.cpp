#include "agent/core/secret.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <stdexcept>

#include <fmt/format.h>

#include "agent/core/log.h"

namespace logship {

std::string Secret::check_value(std::string_view v) {
  bool blank = true;
  for (char c : v) {
    unsigned char u = static_cast<unsigned char>(c);
    if (c == '\n' || c == '\r') return "holds more than one line (a secret is one line)";
    if (u < 0x20 || u == 0x7f) return "holds a control character";
    if (c != ' ' && c != '\t') blank = false;
  }
  if (blank) return "holds only blanks";
  return "";
}

std::string Secret::read_file(const std::string& path, SecretForm form) {
  // O_NONBLOCK: opening a FIFO (or a device) must not wait for a writer; fstat refuses it.
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
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
    if (out.size() > 64 * 1024) {
      ::close(fd);
      throw std::runtime_error("secret file " + path + " is larger than 64KiB");
    }
  }
  ::close(fd);
  if (form == SecretForm::kBytes && out.size() == 32) return out;  // a raw 256-bit key
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  if (out.empty()) throw std::runtime_error("secret file " + path + " is empty");
  if (form == SecretForm::kBytes) return out;
  if (form == SecretForm::kLine) {
    std::string bad = check_value(out);
    if (!bad.empty()) throw std::runtime_error("secret file " + path + " " + bad);
  } else {
    size_t n = 0;
    for (auto line : secret_lines(out)) {
      ++n;
      std::string bad = check_value(line);
      if (!bad.empty())
        throw std::runtime_error(fmt::format("secret file {}: the secret on line {} {}", path, n, bad));
    }
  }
  return out;
}

std::string Secret::reload() {
  if (file_.empty()) return "";
  try {
    std::string v = read_file(file_, form_);
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

std::shared_ptr<Secret> SecretStore::add(std::string value, std::string file, SecretForm form) {
  auto s = std::make_shared<Secret>(std::move(value), std::move(file), form);
  std::lock_guard lk(mu_);
  if (!s->file().empty()) secrets_.push_back(s);
  std::erase_if(all_, [](const std::weak_ptr<Secret>& w) { return w.expired(); });
  all_.push_back(s);
  return s;
}

std::vector<std::string> SecretStore::values() {
  std::vector<std::shared_ptr<Secret>> live;
  {
    std::lock_guard lk(mu_);
    for (auto& w : all_)
      if (auto s = w.lock()) live.push_back(s);
  }
  std::vector<std::string> out;
  for (auto& s : live) {
    std::string v = s->value();
    for (auto line : secret_lines(v))
      if (line.size() >= 4) out.emplace_back(line);  // shorter ones would blank ordinary words
  }
  // Longest first: a secret that contains another is removed whole.
  std::sort(out.begin(), out.end(), [](auto& a, auto& b) { return a.size() > b.size(); });
  return out;
}

namespace {
bool ieq_prefix(std::string_view s, size_t at, std::string_view word) {
  if (s.size() - at < word.size()) return false;
  for (size_t i = 0; i < word.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(s[at + i])) != std::tolower(static_cast<unsigned char>(word[i])))
      return false;
  return true;
}
}  // namespace

std::string scrub(std::string_view text, size_t max_len) {
  std::string out(text.substr(0, std::min(text.size(), max_len * 4)));
  // 1. Every configured secret.
  for (auto& v : SecretStore::instance().values()) {
    for (size_t p = out.find(v); p != std::string::npos; p = out.find(v, p + 10))
      out.replace(p, v.size(), "[REDACTED]");
  }
  // 2. Credential-shaped values: a credential word, an optional quote, `:` or `=`, then the
  //    value (an Authorization header's value runs to the end of the line or the quote).
  static constexpr std::string_view kWords[] = {"authorization", "x-amz-security-token",
                                                "signature", "credential", "token",
                                                "secretaccesskey", "sessiontoken"};
  std::string res;
  res.reserve(out.size());
  for (size_t i = 0; i < out.size();) {
    bool hit = false;
    for (std::string_view w : kWords) {
      if (!ieq_prefix(out, i, w)) continue;
      if (i > 0 && (std::isalnum(static_cast<unsigned char>(out[i - 1])) || out[i - 1] == '_'))
        continue;
      size_t j = i + w.size();
      if (j < out.size() && out[j] == '"') ++j;
      if (j >= out.size() || (out[j] != ':' && out[j] != '=')) continue;
      ++j;
      while (j < out.size() && (out[j] == ' ' || out[j] == '"')) ++j;
      bool quoted = j > 0 && out[j - 1] == '"';
      size_t end = j;
      if (w == "authorization") {
        while (end < out.size() && out[end] != '\n' && out[end] != '\r' &&
               !(quoted && out[end] == '"'))
          ++end;
      } else {
        while (end < out.size() && !std::isspace(static_cast<unsigned char>(out[end])) &&
               out[end] != '&' && out[end] != ',' && out[end] != '"' && out[end] != '\'' &&
               out[end] != '<' && out[end] != ';')
          ++end;
      }
      res.append(out, i, j - i);
      if (end > j) res += "[REDACTED]";
      i = end;
      hit = true;
      break;
    }
    if (!hit) res += out[i++];
  }
  for (char& c : res)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = ' ';
  if (res.size() > max_len) {
    res.resize(max_len);
    res += "…";
  }
  return res;
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
