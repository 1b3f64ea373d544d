// Configuration loading: see config.h and CONFIG.md (normative keys).
//
// Loading runs in two passes over the text:
//  1. an event pass (YAML::Parser + EventHandler) that reports syntax errors, duplicate keys
//     (yaml-cpp's node builder keeps or drops them silently) and unset `${VAR}`s in every value
//     scalar, each at its own position, in document order;
//  2. YAML::Load, then the typed getters of ConfigNode, which check the top level and the
//     component graph. Plugin-specific keys are checked later by the plugins themselves.
#include "agent/config/config.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <map>
#include <sstream>
#include <utility>

#include <fmt/format.h>
#include <yaml-cpp/eventhandler.h>

#include "agent/core/units.h"

namespace logship {
namespace {

constexpr std::string_view kSizeExpectation = "expected a size such as 512, 64KiB, 10MiB, 1GiB";
constexpr std::string_view kDurationExpectation =
    "expected a duration such as 250ms, 5s, 10m, 2h, 7d";
constexpr std::string_view kAddressExpectation =
    "expected host:port such as 127.0.0.1:8088 or [::1]:8088 (port 0-65535)";
constexpr std::string_view kDefaultDataDir = "/var/lib/logship";
constexpr int64_t kMaxThreads = 1024;

/// `file:line:col` (1-based) of a yaml-cpp mark (0-based); 1:1 when the mark is unknown.
std::string position(const std::string& file, const YAML::Mark& m) {
  if (m.is_null() || m.line < 0 || m.column < 0) return file + ":1:1";
  return fmt::format("{}:{}:{}", file, m.line + 1, m.column + 1);
}

[[noreturn]] void fail_at(const std::string& file, const YAML::Mark& m, std::string_view msg) {
  throw ConfigError(position(file, m) + ": " + std::string(msg));
}

/// A value quoted for a one-line message: escapes quotes and control characters, truncates.
std::string quote(std::string_view s) {
  constexpr size_t kMax = 80;
  std::string out = "\"";
  for (size_t i = 0; i < s.size() && i < kMax; ++i) {
    char c = s[i];
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (static_cast<unsigned char>(c) < 0x20) {
      out += fmt::format("\\x{:02x}", static_cast<unsigned char>(c));
    } else {
      out += c;
    }
  }
  if (s.size() > kMax) out += "...";
  return out + "\"";
}

std::string join(const std::vector<std::string>& items, std::string_view sep = ", ") {
  std::string out;
  for (const auto& s : items) {
    if (!out.empty()) out += sep;
    out += s;
  }
  return out;
}

std::string join_path(std::string_view path, std::string_view key) {
  if (path.empty()) return std::string(key);
  return std::string(path) + "." + std::string(key);
}

/// "in sinks.splunk" or "at the top level".
std::string in_path(std::string_view path) {
  if (path.empty()) return "at the top level";
  return "in " + std::string(path);
}

const char* kind_of(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Map:
      return "a mapping";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Scalar:
      return "a single value";
    case YAML::NodeType::Null:
      return "empty";
    default:
      return "undefined";
  }
}

struct Entry {
  YAML::Node key;
  YAML::Node value;
  bool found = false;
};

/// Looks a key up without yaml-cpp's operator[] (which would insert into a non-const node).
Entry find_entry(const YAML::Node& map, std::string_view key) {
  if (!map.IsMap()) return {};
  for (auto it = map.begin(); it != map.end(); ++it) {
    if (it->first.IsScalar() && it->first.Scalar() == key) return {it->first, it->second, true};
  }
  return {};
}

bool is_var_start(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
}
bool is_var_char(char c) {
  return is_var_start(c) || (c >= '0' && c <= '9');
}

/// Interpolates and turns std::invalid_argument into a ConfigError at `mark`.
std::string interpolate_at(const std::string& file, const YAML::Mark& mark, std::string_view s) {
  try {
    return interpolate(s);
  } catch (const std::invalid_argument& e) {
    fail_at(file, mark, e.what());
  }
}

/// Levenshtein distance, for "did you mean" hints on unknown keys.
size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t subst = prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, subst});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

/// Pass 1: syntax errors (thrown by the parser), duplicate keys, unset `${VAR}`s and a second
/// document, each reported at its own position. Keys are not interpolated (getters match them
/// literally), so only value scalars are checked for `${...}`.
class PrepassHandler : public YAML::EventHandler {
 public:
  explicit PrepassHandler(const std::string& file) : file_(file) {}

  void OnDocumentStart(const YAML::Mark& mark) override {
    if (++documents_ > 1) {
      fail_at(file_, mark,
              "a second YAML document; expected exactly one document (remove the `---`)");
    }
  }
  void OnDocumentEnd() override {}

  void OnNull(const YAML::Mark& mark, YAML::anchor_t) override {
    Slot s = next_slot();
    if (s.is_key) key(mark, "null", /*checkable=*/true);
  }
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override {
    Slot s = next_slot();
    if (s.is_key) key({}, "", /*checkable=*/false);
  }
  void OnScalar(const YAML::Mark& mark, const std::string&, YAML::anchor_t,
                const std::string& value) override {
    Slot s = next_slot();
    if (s.is_key) {
      key(mark, value, /*checkable=*/true);
    } else {
      interpolate_at(file_, mark, value);
    }
  }
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {
    Slot s = next_slot();
    if (s.is_key) key({}, "", /*checkable=*/false);
    stack_.push_back(Frame{false, s.path, {}, {}});
  }
  void OnSequenceEnd() override { stack_.pop_back(); }
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {
    Slot s = next_slot();
    if (s.is_key) key({}, "", /*checkable=*/false);
    stack_.push_back(Frame{true, s.path, {}, {}});
  }
  void OnMapEnd() override { stack_.pop_back(); }

 private:
  struct Frame {
    bool is_map;
    std::string path;
    std::map<std::string, YAML::Mark> keys;  // seen so far in this mapping
    std::string last_key;
    bool expect_key = true;
    size_t index = 0;  // sequences: next item index
  };
  struct Slot {
    bool is_key;
    std::string path;  // of the node about to start
  };

  Slot next_slot() {
    if (stack_.empty()) return {false, ""};
    Frame& f = stack_.back();
    if (!f.is_map) return {false, fmt::format("{}[{}]", f.path, f.index++)};
    if (f.expect_key) {
      f.expect_key = false;
      return {true, f.path};
    }
    f.expect_key = true;
    return {false, join_path(f.path, f.last_key)};
  }

  void key(const YAML::Mark& mark, const std::string& name, bool checkable) {
    Frame& f = stack_.back();
    f.last_key = checkable ? name : "?";
    if (!checkable) return;
    auto [it, inserted] = f.keys.emplace(name, mark);
    if (!inserted) {
      fail_at(file_, mark,
              fmt::format("duplicate key {} {} (first at line {}); expected each key once per "
                          "mapping",
                          quote(name), in_path(f.path), it->second.line + 1));
    }
  }

  const std::string& file_;
  std::vector<Frame> stack_;
  int documents_ = 0;
};

/// `host:port` or `[v6]:port`; returns "" when valid, else what is wrong.
std::string check_address(std::string_view a) {
  std::string_view host, port;
  if (!a.empty() && a.front() == '[') {
    size_t close = a.find(']');
    if (close == std::string_view::npos) return "unclosed [ in the host";
    host = a.substr(1, close - 1);
    if (close + 1 >= a.size() || a[close + 1] != ':') return "no :port after the IPv6 address";
    port = a.substr(close + 2);
    if (host.empty()) return "empty host";
    for (char c : host) {
      bool ok = std::isxdigit(static_cast<unsigned char>(c)) || c == ':' || c == '.' || c == '%';
      if (!ok) return "invalid IPv6 address";
    }
    if (host.find(':') == std::string_view::npos) return "invalid IPv6 address";
  } else {
    size_t colon = a.rfind(':');
    if (colon == std::string_view::npos) return "no :port";
    host = a.substr(0, colon);
    port = a.substr(colon + 1);
    if (host.empty()) return "empty host";
    if (host.find(':') != std::string_view::npos) return "IPv6 addresses need brackets";
    for (char c : host) {
      bool ok = std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_';
      if (!ok) return "invalid character in the host";
    }
  }
  if (port.empty()) return "empty port";
  if (port.size() > 5 ||
      !std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return "invalid port";
  }
  if (std::stoul(std::string(port)) > 65535) return "port out of range";
  return "";
}

/// Position of the i-th item of a list-valued key (or of the scalar standing for the list).
YAML::Mark item_mark(const YAML::Node& map, std::string_view key, size_t i) {
  Entry e = find_entry(map, key);
  if (!e.found) return map.Mark();
  if (e.value.IsSequence() && i < e.value.size()) return e.value[i].Mark();
  return e.value.Mark();
}

/// The error of a key that has no usable scalar value.
std::string not_scalar(std::string_view key, const YAML::Node& n, std::string_view expectation) {
  if (n.IsNull()) return fmt::format("{} has no value; expected {}", key, expectation);
  return fmt::format("{} is {}; expected {}", key, kind_of(n), expectation);
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// interpolate

std::string interpolate(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    char c = s[i];
    if (c != '$' || i + 1 >= s.size()) {
      out += c;
      ++i;
      continue;
    }
    char next = s[i + 1];
    if (next == '$') {  // `$$` is a literal `$`
      out += '$';
      i += 2;
      continue;
    }
    if (next != '{') {  // a lone `$` is kept
      out += '$';
      ++i;
      continue;
    }
    // `${...}`: find the matching `}` (defaults may nest `${...}`; `$$` is skipped).
    size_t j = i + 2;
    int depth = 1;
    while (j < s.size()) {
      if (s[j] == '$' && j + 1 < s.size() && (s[j + 1] == '$' || s[j + 1] == '{')) {
        if (s[j + 1] == '{') ++depth;
        j += 2;
        continue;
      }
      if (s[j] == '}' && --depth == 0) break;
      ++j;
    }
    if (j >= s.size()) {
      throw std::invalid_argument(
          "unterminated \"${\"; expected ${NAME} or ${NAME:-default} (write $$ for a literal $)");
    }
    std::string_view body = s.substr(i + 2, j - (i + 2));
    size_t name_end = 0;
    while (name_end < body.size() && is_var_char(body[name_end])) ++name_end;
    std::string_view name = body.substr(0, name_end);
    std::string_view rest = body.substr(name_end);
    bool has_default = rest.substr(0, 2) == ":-";
    if (name.empty() || !is_var_start(name.front()) || (!rest.empty() && !has_default)) {
      throw std::invalid_argument(
          fmt::format("invalid variable reference {}; expected ${{NAME}} or ${{NAME:-default}} "
                      "with NAME made of letters, digits and _",
                      quote(s.substr(i, j + 1 - i))));
    }
    const char* value = std::getenv(std::string(name).c_str());
    if (has_default) {
      // As in the shell, `:-` also applies when the variable is set but empty.
      if (value != nullptr && *value != '\0') {
        out += value;
      } else {
        out += interpolate(rest.substr(2));
      }
    } else if (value != nullptr) {
      out += value;
    } else {
      throw std::invalid_argument(fmt::format(
          "environment variable {} is not set; expected it to be set, or a default such as "
          "${{{}:-value}}",
          name, name));
    }
    i = j + 1;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// ConfigNode

ConfigNode::ConfigNode(YAML::Node node, std::shared_ptr<const std::string> file, std::string path)
    : node_(std::move(node)), file_(std::move(file)), path_(std::move(path)) {}

bool ConfigNode::has(std::string_view key) const {
  return find_entry(node_, key).found;
}

YAML::Node ConfigNode::get(std::string_view key) {
  read_.emplace(key);
  Entry e = find_entry(node_, key);
  if (!e.found) return YAML::Node(YAML::NodeType::Undefined);
  return e.value;
}

std::string ConfigNode::scalar(std::string_view key, const YAML::Node& n) {
  if (!n.IsScalar()) fail(key, not_scalar(key, n, "a string"));
  return interpolate_at(*file_, n.Mark(), n.Scalar());
}

std::string ConfigNode::where(std::string_view key, bool value) const {
  if (!key.empty()) {
    Entry e = find_entry(node_, key);
    if (e.found) {
      // yaml-cpp places an empty value (`key:`) at the start of the next line: use the key.
      YAML::Mark m = value && !e.value.IsNull() ? e.value.Mark() : e.key.Mark();
      if (m.is_null()) m = e.key.Mark();
      return position(*file_, m);
    }
  }
  return position(*file_, node_.Mark());
}

std::string ConfigNode::where_node(const YAML::Node& n) const {
  return position(*file_, n.Mark());
}

void ConfigNode::fail(std::string_view key, std::string_view msg) const {
  throw ConfigError(where(key) + ": " + std::string(msg));
}

namespace {
/// Reads a key's scalar (interpolated) or fails with `expectation`; the caller has checked that
/// the key is present. Messages never contain the value.
std::string checked_scalar(const ConfigNode& cfg, std::string_view key, const YAML::Node& n,
                           std::string_view expectation) {
  if (!n.IsScalar()) cfg.fail(key, not_scalar(key, n, expectation));
  return interpolate_at(cfg.file(), n.Mark(), n.Scalar());
}

[[noreturn]] void fail_missing(const ConfigNode& cfg, std::string_view key,
                               std::string_view expectation) {
  cfg.fail({}, fmt::format("missing required key {} {}; expected {}", key, in_path(cfg.path()),
                           expectation));
}
}  // namespace

std::string ConfigNode::str(std::string_view key, std::optional<std::string> def) {
  YAML::Node n = get(key);
  if (!n.IsDefined()) {
    if (def) return *def;
    fail_missing(*this, key, "a string");
  }
  return checked_scalar(*this, key, n, "a string");
}

std::optional<std::string> ConfigNode::opt_str(std::string_view key) {
  YAML::Node n = get(key);
  if (!n.IsDefined()) return std::nullopt;
  return checked_scalar(*this, key, n, "a string");
}

int64_t ConfigNode::integer(std::string_view key, std::optional<int64_t> def, int64_t min,
                            int64_t max) {
  std::string expectation;
  if (max == std::numeric_limits<int64_t>::max()) {
    expectation = fmt::format("an integer >= {}", min);
  } else {
    expectation = fmt::format("an integer from {} to {}", min, max);
  }
  YAML::Node n = get(key);
  if (!n.IsDefined()) {
    if (def) return *def;
    fail_missing(*this, key, expectation);
  }
  std::string s = checked_scalar(*this, key, n, expectation);
  int64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || p != s.data() + s.size() || ec == std::errc::invalid_argument) {
    fail(key, fmt::format("invalid integer {}; expected {}", quote(s), expectation));
  }
  if (ec == std::errc::result_out_of_range || v < min || v > max) {
    fail(key, fmt::format("{} is out of range; expected {}", s, expectation));
  }
  return v;
}

bool ConfigNode::boolean(std::string_view key, std::optional<bool> def) {
  YAML::Node n = get(key);
  if (!n.IsDefined()) {
    if (def) return *def;
    fail_missing(*this, key, "true or false");
  }
  std::string s = checked_scalar(*this, key, n, "true or false");
  if (s == "true") return true;
  if (s == "false") return false;
  fail(key, fmt::format("invalid boolean {}; expected true or false", quote(s)));
}

uint64_t ConfigNode::size(std::string_view key, std::optional<uint64_t> def) {
  YAML::Node n = get(key);
  if (!n.IsDefined()) {
    if (def) return *def;
    fail_missing(*this, key, kSizeExpectation.substr(9));
  }
  std::string s = checked_scalar(*this, key, n, kSizeExpectation.substr(9));
  auto v = parse_size(s);
  if (!v) fail(key, fmt::format("invalid size {}; {}", quote(s), kSizeExpectation));
  return *v;
}

std::chrono::nanoseconds ConfigNode::duration(std::string_view key,
                                              std::optional<std::chrono::nanoseconds> def) {
  if (!has(key)) {
    read_.emplace(key);
    if (def) return *def;
    fail_missing(*this, key, kDurationExpectation.substr(9));
  }
  return *opt_duration(key);
}

std::optional<std::chrono::nanoseconds> ConfigNode::opt_duration(std::string_view key) {
  YAML::Node n = get(key);
  if (!n.IsDefined()) return std::nullopt;
  std::string s = checked_scalar(*this, key, n, kDurationExpectation.substr(9));
  auto v = parse_duration(s);
  if (!v) fail(key, fmt::format("invalid duration {}; {}", quote(s), kDurationExpectation));
  return *v;
}

std::string ConfigNode::choice(std::string_view key, std::optional<std::string> def,
                               std::initializer_list<std::string_view> allowed) {
  std::vector<std::string> names(allowed.begin(), allowed.end());
  std::string expectation = "one of: " + join(names);
  YAML::Node n = get(key);
  if (!n.IsDefined()) {
    if (def) return *def;
    fail_missing(*this, key, expectation);
  }
  std::string s = checked_scalar(*this, key, n, expectation);
  if (std::find(names.begin(), names.end(), s) == names.end()) {
    fail(key, fmt::format("invalid {} {}; expected {}", key, quote(s), expectation));
  }
  return s;
}

std::vector<std::string> ConfigNode::list(std::string_view key,
                                          std::optional<std::vector<std::string>> def) {
  constexpr std::string_view kExpectation = "a list of strings (or a single string)";
  YAML::Node n = get(key);
  if (!n.IsDefined()) {
    if (def) return *def;
    fail_missing(*this, key, kExpectation);
  }
  if (n.IsScalar()) return {interpolate_at(*file_, n.Mark(), n.Scalar())};
  if (!n.IsSequence()) fail(key, not_scalar(key, n, kExpectation));
  std::vector<std::string> out;
  for (size_t i = 0; i < n.size(); ++i) {
    YAML::Node item = n[i];
    if (!item.IsScalar()) {
      fail_at(*file_, item.Mark().is_null() ? n.Mark() : item.Mark(),
              fmt::format("item {} of {} is {}; expected a string", i + 1, key, kind_of(item)));
    }
    out.push_back(interpolate_at(*file_, item.Mark(), item.Scalar()));
  }
  return out;
}

std::string ConfigNode::address(std::string_view key, std::optional<std::string> def) {
  YAML::Node n = get(key);
  if (!n.IsDefined()) {
    if (def) return *def;
    fail_missing(*this, key, kAddressExpectation.substr(9));
  }
  std::string s = checked_scalar(*this, key, n, kAddressExpectation.substr(9));
  std::string problem = check_address(s);
  if (!problem.empty()) {
    fail(key, fmt::format("invalid address {} ({}); {}", quote(s), problem, kAddressExpectation));
  }
  return s;
}

std::optional<ConfigNode> ConfigNode::map(std::string_view key) {
  YAML::Node n = get(key);
  if (!n.IsDefined()) return std::nullopt;
  if (!n.IsMap()) fail(key, not_scalar(key, n, "a mapping"));
  return ConfigNode(n, file_, join_path(path_, key));
}

std::shared_ptr<Secret> ConfigNode::secret(std::string_view key, bool required) {
  const std::string file_key = std::string(key) + "_file";
  YAML::Node inline_node = get(key);
  YAML::Node file_node = get(file_key);
  if (inline_node.IsDefined() && file_node.IsDefined()) {
    throw ConfigError(where(file_key, /*value=*/false) +
                      fmt::format(": both {} and {} are set {}; expected only one of them", key,
                                  file_key, in_path(path_)));
  }
  if (!inline_node.IsDefined() && !file_node.IsDefined()) {
    if (!required) return nullptr;
    fail({}, fmt::format("missing required key {} (or {}) {}; expected the secret inline or the "
                         "path of a file holding it",
                         key, file_key, in_path(path_)));
  }
  if (inline_node.IsDefined()) {
    std::string value = checked_scalar(*this, key, inline_node, "a string");
    if (value.empty()) fail(key, fmt::format("{} is empty; expected a non-empty secret", key));
    if (std::string bad = Secret::check_value(value); !bad.empty())
      fail(key, fmt::format("{} {} (the value is not shown); expected one line without control "
                            "characters",
                            key, bad));
    return SecretStore::instance().add(std::move(value), "");
  }
  std::string path = checked_scalar(*this, file_key, file_node, "a file path");
  std::string value;
  try {
    value = Secret::read_file(path);
  } catch (const std::exception& e) {
    fail(file_key, std::string(e.what()) +
                       "; expected a regular file, readable only by its owner, holding the secret");
  }
  return SecretStore::instance().add(std::move(value), path);
}

std::vector<std::shared_ptr<Secret>> ConfigNode::secret_list(std::string_view key) {
  const std::string file_key = std::string(key) + "_file";
  bool has_inline = has(key);
  bool has_file = has(file_key);
  touch(key);
  touch(file_key);
  if (has_inline && has_file) {
    throw ConfigError(where(file_key, /*value=*/false) +
                      fmt::format(": both {} and {} are set {}; expected only one of them", key,
                                  file_key, in_path(path_)));
  }
  if (!has_inline && !has_file) {
    fail({}, fmt::format("missing required key {} (or {}) {}; expected a list of secrets or the "
                         "path of a file holding one per line",
                         key, file_key, in_path(path_)));
  }
  std::vector<std::shared_ptr<Secret>> out;
  if (has_inline) {
    std::vector<std::string> values = list(key);
    for (size_t i = 0; i < values.size(); ++i) {
      if (values[i].empty()) {
        fail_at(*file_, item_mark(node_, key, i),
                fmt::format("item {} of {} is empty; expected a non-empty secret", i + 1, key));
      }
      if (std::string bad = Secret::check_value(values[i]); !bad.empty()) {
        fail_at(*file_, item_mark(node_, key, i),
                fmt::format("item {} of {} {} (the value is not shown); expected one line "
                            "without control characters",
                            i + 1, key, bad));
      }
      out.push_back(SecretStore::instance().add(std::move(values[i]), ""));
    }
    if (out.empty()) fail(key, fmt::format("{} is empty; expected at least one secret", key));
    return out;
  }
  YAML::Node file_node = get(file_key);
  std::string path = checked_scalar(*this, file_key, file_node, "a file path");
  std::string content;
  try {
    content = Secret::read_file(path, SecretForm::kLines);
  } catch (const std::exception& e) {
    fail(file_key, std::string(e.what()) +
                       "; expected a regular file, readable only by its owner, holding the secret");
  }
  // One secret holding the whole file, registered with it: SIGHUP re-reads the list (tokens added
  // or revoked take effect without a restart). Consumers iterate its lines (secret_lines()).
  auto whole = SecretStore::instance().add(std::move(content), path, SecretForm::kLines);
  if (secret_lines(whole->value()).empty()) {
    fail(file_key, fmt::format("secret file {} holds no secrets; expected one per line", path));
  }
  out.push_back(std::move(whole));
  return out;
}

void ConfigNode::touch(std::string_view key) {
  read_.emplace(key);
}

void ConfigNode::finish() {
  if (!node_.IsMap()) return;
  for (auto it = node_.begin(); it != node_.end(); ++it) {
    const YAML::Node k = it->first;  // a copy: `it->` returns a temporary
    if (k.IsScalar() && read_.count(k.Scalar()) > 0) continue;
    std::string name = k.IsScalar() ? k.Scalar() : std::string("(a non-scalar key)");
    std::string expected;
    if (read_.empty()) {
      expected = "expected no keys here";
    } else {
      expected = "expected one of: " + join({read_.begin(), read_.end()});
      std::string best;
      size_t best_distance = 3;
      for (const auto& known : read_) {
        size_t d = edit_distance(name, known);
        if (d < best_distance && d < std::max<size_t>(known.size() / 2, 1)) {
          best_distance = d;
          best = known;
        }
      }
      if (!best.empty()) expected += fmt::format(" (did you mean {}?)", quote(best));
    }
    fail_at(*file_, k.Mark(),
            fmt::format("unknown key {} {}; {}", quote(name), in_path(path_), expected));
  }
}

// ---------------------------------------------------------------------------------------------
// load_config

namespace {

bool valid_id(std::string_view id) {
  return !id.empty() && std::all_of(id.begin(), id.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
  });
}

struct IdInfo {
  std::string kind_path;  // "sources.app"
  YAML::Mark mark;
};

/// Reads one of `sources`, `transforms`, `sinks` into `out`.
void read_components(ConfigNode& top, const std::shared_ptr<const std::string>& file_ptr,
                     const std::string& section, const std::string& kind,
                     std::map<std::string, IdInfo>& ids, std::vector<ComponentDecl>& out) {
  std::optional<ConfigNode> sec = top.map(section);
  if (!sec) return;
  const std::string& file = top.file();
  YAML::Node raw = sec->raw();
  for (auto it = raw.begin(); it != raw.end(); ++it) {
    const YAML::Node k = it->first;  // a copy: `it->` returns a temporary
    const YAML::Node v = it->second;
    if (!k.IsScalar()) {
      fail_at(file, k.Mark(),
              fmt::format("a non-scalar key in {}; expected component ids", section));
    }
    const std::string id = k.Scalar();
    const std::string path = section + "." + id;
    if (!valid_id(id)) {
      fail_at(file, k.Mark(),
              fmt::format("invalid component id {} in {}; expected lowercase letters, digits and _ "
                          "([a-z0-9_]+)",
                          quote(id), section));
    }
    auto [prev, inserted] = ids.emplace(id, IdInfo{path, k.Mark()});
    if (!inserted) {
      fail_at(file, k.Mark(),
              fmt::format("component id {} is already used by {} (line {}); expected ids unique "
                          "across sources, transforms and sinks",
                          quote(id), prev->second.kind_path, prev->second.mark.line + 1));
    }
    if (!v.IsMap()) {
      YAML::Mark m = v.IsNull() || v.Mark().is_null() ? k.Mark() : v.Mark();
      fail_at(file, m, not_scalar(path, v, "a mapping with at least type"));
    }
    ComponentDecl decl;
    decl.id = id;
    decl.kind = kind;
    decl.node = std::make_shared<ConfigNode>(v, file_ptr, path);
    decl.type = decl.node->str("type");
    if (decl.type.empty()) decl.node->fail("type", "type is empty; expected a component type");
    if (kind == "source") {
      if (decl.node->has("inputs")) {
        throw ConfigError(decl.node->where("inputs", /*value=*/false) +
                          ": sources take no inputs; expected inputs only on transforms and "
                          "sinks");
      }
    } else {
      decl.inputs = decl.node->list("inputs");
      if (decl.inputs.empty()) {
        decl.node->fail("inputs", "inputs is empty; expected at least one source or transform id");
      }
      for (size_t i = 0; i < decl.inputs.size(); ++i) {
        for (size_t j = 0; j < i; ++j) {
          if (decl.inputs[i] == decl.inputs[j]) {
            fail_at(file, item_mark(v, "inputs", i),
                    fmt::format("input {} is listed twice in {}; expected each input once",
                                quote(decl.inputs[i]), path));
          }
        }
      }
    }
    out.push_back(std::move(decl));
  }
}

/// Checks that every input names a source or transform.
void check_inputs(const Config& cfg, const std::vector<ComponentDecl>& consumers) {
  std::set<std::string> sources, transforms, sinks;
  std::vector<std::string> known;
  for (const auto& d : cfg.sources) {
    sources.insert(d.id);
    known.push_back(d.id);
  }
  for (const auto& d : cfg.transforms) {
    transforms.insert(d.id);
    known.push_back(d.id);
  }
  for (const auto& d : cfg.sinks) sinks.insert(d.id);
  const std::string known_list = known.empty() ? "(none)" : join(known);
  for (const auto& d : consumers) {
    for (size_t i = 0; i < d.inputs.size(); ++i) {
      const std::string& in = d.inputs[i];
      if (sources.count(in) > 0 || transforms.count(in) > 0) continue;
      YAML::Mark m = item_mark(d.node->raw(), "inputs", i);
      if (sinks.count(in) > 0) {
        fail_at(cfg.file, m,
                fmt::format("input {} of {} is a sink, and sinks have no output; expected a "
                            "source or transform: {}",
                            quote(in), d.node->path(), known_list));
      }
      fail_at(cfg.file, m,
              fmt::format("unknown input {} in {}; expected a source or transform: {}", quote(in),
                          d.node->path(), known_list));
    }
  }
}

/// Depth-first search over transform inputs; fails on the first cycle, named in data-flow order.
void check_cycles(const Config& cfg) {
  std::map<std::string, const ComponentDecl*> by_id;
  for (const auto& t : cfg.transforms) by_id[t.id] = &t;
  enum class Color { kWhite, kGray, kBlack };
  std::map<std::string, Color> color;
  std::vector<const ComponentDecl*> stack;

  auto visit = [&](auto&& self, const ComponentDecl* t) -> void {
    color[t->id] = Color::kGray;
    stack.push_back(t);
    for (size_t i = 0; i < t->inputs.size(); ++i) {
      auto found = by_id.find(t->inputs[i]);
      if (found == by_id.end()) continue;  // a source
      const ComponentDecl* up = found->second;
      Color c = color[up->id];
      if (c == Color::kGray) {
        // The stack runs downstream -> upstream; data flows the other way.
        size_t k = 0;
        while (stack[k] != up) ++k;
        std::vector<std::string> flow{up->id};
        for (size_t j = stack.size(); j-- > k + 1;) flow.push_back(stack[j]->id);
        flow.push_back(up->id);
        fail_at(cfg.file, item_mark(t->node->raw(), "inputs", i),
                fmt::format("cycle among transforms: {}; expected transforms without cycles",
                            join(flow, " -> ")));
      }
      if (c == Color::kWhite) self(self, up);
    }
    stack.pop_back();
    color[t->id] = Color::kBlack;
  };
  for (const auto& t : cfg.transforms) {
    if (color[t.id] == Color::kWhite) visit(visit, &t);
  }
}

}  // namespace

Config load_config_text(const std::string& text, const std::string& name) {
  auto file = std::make_shared<const std::string>(name);
  YAML::Node root;
  try {
    std::istringstream in(text);
    YAML::Parser parser(in);
    PrepassHandler handler(*file);
    while (parser.HandleNextDocument(handler)) {
    }
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    fail_at(*file, e.mark, fmt::format("invalid YAML: {}; expected valid YAML", e.msg));
  }
  if (!root.IsDefined() || root.IsNull()) {
    fail_at(*file, YAML::Mark::null_mark(),
            "the configuration is empty; expected a mapping with at least sources and sinks");
  }
  if (!root.IsMap()) {
    fail_at(*file, root.Mark(),
            fmt::format("the top level is {}; expected a mapping with at least sources and sinks",
                        kind_of(root)));
  }

  Config cfg;
  cfg.file = name;
  ConfigNode top(root, file, "");
  cfg.data_dir = top.str("data_dir", std::string(kDefaultDataDir));
  cfg.data_dir_at = top.has("data_dir") ? top.where("data_dir") : name + ":1:1";
  if (cfg.data_dir.empty()) top.fail("data_dir", "data_dir is empty; expected a directory path");
  cfg.threads = static_cast<int>(top.integer("threads", 0, 1, kMaxThreads));
  if (auto admin = top.map("admin")) {
    cfg.admin_address = admin->address("address", std::nullopt);
    admin->finish();
  }
  if (auto log = top.map("log")) {
    cfg.log_level =
        log->choice("level", cfg.log_level, {"trace", "debug", "info", "warn", "error"});
    cfg.log_format = log->choice("format", cfg.log_format, {"text", "json"});
    log->finish();
  }
  std::map<std::string, IdInfo> ids;
  read_components(top, file, "sources", "source", ids, cfg.sources);
  read_components(top, file, "transforms", "transform", ids, cfg.transforms);
  read_components(top, file, "sinks", "sink", ids, cfg.sinks);
  top.finish();

  if (cfg.sources.empty()) {
    fail_at(name, root.Mark(), "no sources are configured; expected at least one under sources");
  }
  if (cfg.sinks.empty()) {
    fail_at(name, root.Mark(), "no sinks are configured; expected at least one under sinks");
  }
  check_inputs(cfg, cfg.transforms);
  check_inputs(cfg, cfg.sinks);
  check_cycles(cfg);
  return cfg;
}

Config load_config(const std::string& path) {
  // O_NONBLOCK: a FIFO must not hang `check`; only a regular file of at most 16 MiB is read.
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd < 0) throw ConfigError(path + ":1:1: cannot read: " + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    bool dir = S_ISDIR(st.st_mode);
    ::close(fd);
    throw ConfigError(path + ":1:1: " +
                      (dir ? std::string("is a directory; expected a YAML configuration file")
                           : std::string("is not a regular file (FIFO, device or socket); expected "
                                         "a YAML configuration file")));
  }
  constexpr off_t kMaxConfigBytes = 16 << 20;
  if (st.st_size > kMaxConfigBytes) {
    ::close(fd);
    throw ConfigError(fmt::format("{}:1:1: the file is {} bytes; expected at most 16MiB", path,
                                  st.st_size));
  }
  std::string text;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      ::close(fd);
      throw ConfigError(path + ": cannot read: " + std::strerror(err));
    }
    if (n == 0) break;
    text.append(buf, static_cast<size_t>(n));
    if (text.size() > static_cast<size_t>(kMaxConfigBytes)) {
      ::close(fd);
      throw ConfigError(path + ":1:1: the file grew past 16MiB while read; expected at most 16MiB");
    }
  }
  ::close(fd);
  return load_config_text(text, path);
}

}  // namespace logship
