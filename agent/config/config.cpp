// Configuration loading: see config.h and CONFIG.md (normative keys).
//
// Loading runs in two passes over the text:
//  1. an event pass (YAML::Parser + EventHandler) that reports syntax errors, unclosed quotes,
//     duplicate keys (yaml-cpp's node builder keeps or drops them silently) and unset `${VAR}`s
//     in every value scalar, each at its own position;
//  2. YAML::Load, then the typed getters of ConfigNode, which check the top level and the
//     component graph. Plugin-specific keys are checked later by the plugins themselves.
// Every error is recorded in the load's ConfigErrors (a bad value reads as its default, so the
// checks go on); the load, or the runtime after the plugins' checks, throws them all at once.
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

/// Pass 1: syntax errors (thrown by the parser), unclosed quotes, duplicate keys, unset `${VAR}`s
/// and a second document, each recorded at its own position. Keys are not interpolated (getters
/// match them literally), so only value scalars are checked for `${...}`.
class PrepassHandler : public YAML::EventHandler {
 public:
  PrepassHandler(const std::string& file, const std::string& text, ConfigErrors& errors)
      : file_(file), text_(text), errors_(errors) {}

  /// Whether an unclosed quote was found (a syntax error after it is its consequence).
  bool unclosed_quote() const { return unclosed_quote_; }

  void OnDocumentStart(const YAML::Mark& mark) override {
    if (++documents_ == 2) {
      add(mark, "a second YAML document; expected exactly one document (remove the `---`)");
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
    check_quote(mark);
    Slot s = next_slot();
    if (s.is_key) {
      key(mark, value, /*checkable=*/true);
    } else {
      try {
        interpolate(value);
      } catch (const std::invalid_argument& e) {
        add(mark, e.what());
      }
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
      add(mark, fmt::format("duplicate key {} {} (first at line {}); expected each key once per "
                            "mapping",
                            quote(name), in_path(f.path), it->second.line + 1));
    }
  }

  void add(const YAML::Mark& mark, std::string_view msg) {
    errors_.add(position(file_, mark) + ": " + std::string(msg));
  }

  /// A quoted scalar that runs past the end of its line over lines that look like `key:` (or to
  /// the end of the file) is a forgotten closing quote: YAML folds the lines into the string.
  void check_quote(const YAML::Mark& mark) {
    // Marks count bytes after a UTF-8 byte order mark.
    const size_t bom = text_.rfind("\xEF\xBB\xBF", 0) == 0 ? 3 : 0;
    if (mark.pos < 0 || static_cast<size_t>(mark.pos) + bom >= text_.size()) return;
    const size_t open = static_cast<size_t>(mark.pos) + bom;
    const char q = text_[open];
    if (q != '"' && q != '\'') return;
    size_t close = std::string_view::npos;
    for (size_t i = open + 1; i < text_.size(); ++i) {
      if (q == '"' && text_[i] == '\\') {
        ++i;  // an escape: the next character is not the end
      } else if (text_[i] == q) {
        if (q == '\'' && i + 1 < text_.size() && text_[i + 1] == '\'') {
          ++i;  // '' stands for one '
        } else {
          close = i;
          break;
        }
      }
    }
    const size_t end = close == std::string_view::npos ? text_.size() : close;
    size_t eol = text_.find('\n', open);
    if (eol == std::string_view::npos || eol >= end) return;  // on one line
    // The lines the string runs over, up to its end: the first that looks like a key.
    int line = mark.line + 1;  // 0-based line of `eol + 1`
    int last_line = mark.line;
    std::string lookalike;
    int lookalike_line = 0;
    for (size_t b = eol + 1; b < end || (b == end && close != std::string_view::npos);) {
      size_t e = std::min(text_.find('\n', b), end);
      if (lookalike.empty() && looks_like_key(std::string_view(text_).substr(b, e - b))) {
        lookalike = text_.substr(b, text_.find('\n', b) - b);  // the whole line, for the message
        lookalike_line = line;
      }
      last_line = line;
      if (e >= end) break;
      b = e + 1;
      ++line;
    }
    if (close != std::string_view::npos && lookalike.empty()) return;  // a multi-line string
    std::string where = close == std::string_view::npos
                            ? fmt::format("the end of the file (line {}", last_line + 1)
                            : fmt::format("line {} (", last_line + 1);
    if (!lookalike.empty()) {
      if (close == std::string_view::npos) where += "; ";
      std::string_view l = lookalike;
      l.remove_prefix(std::min(l.find_first_not_of(" \t"), l.size()));
      if (!l.empty() && l.back() == '\r') l.remove_suffix(1);
      where += fmt::format("line {} looks like a key: {}", lookalike_line + 1, quote(l));
    }
    where += ")";
    unclosed_quote_ = true;
    add(mark, fmt::format("unclosed quote: the string opened here runs on to {}; expected the "
                          "closing {} on line {}",
                          where, q, mark.line + 1));
  }

  /// `^\s*[A-Za-z_][A-Za-z0-9_.-]*:(\s|$)`, optionally after `- `.
  static bool looks_like_key(std::string_view l) {
    size_t i = 0;
    while (i < l.size() && (l[i] == ' ' || l[i] == '\t')) ++i;
    if (i + 1 < l.size() && l[i] == '-' && l[i + 1] == ' ') {
      i += 2;
      while (i < l.size() && l[i] == ' ') ++i;
    }
    if (i >= l.size() || !(std::isalpha(static_cast<unsigned char>(l[i])) || l[i] == '_'))
      return false;
    while (i < l.size() && (std::isalnum(static_cast<unsigned char>(l[i])) || l[i] == '_' ||
                            l[i] == '.' || l[i] == '-'))
      ++i;
    if (i >= l.size() || l[i] != ':') return false;
    ++i;
    return i == l.size() || l[i] == ' ' || l[i] == '\t' || l[i] == '\r';
  }

  const std::string& file_;
  const std::string& text_;
  ConfigErrors& errors_;
  std::vector<Frame> stack_;
  int documents_ = 0;
  bool unclosed_quote_ = false;
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
// ConfigErrors

namespace {
/// (line, column) of a `file:line:col: ...` message; (0, 0) when it has none.
std::pair<long, long> position_of(const std::string& file, const std::string& msg) {
  if (msg.rfind(file + ":", 0) != 0) return {0, 0};
  const char* p = msg.c_str() + file.size() + 1;
  const char* end = msg.c_str() + msg.size();
  long line = 0, col = 0;
  auto [q, ec] = std::from_chars(p, end, line);
  if (ec != std::errc() || q == end || *q != ':') return {0, 0};
  auto [r, ec2] = std::from_chars(q + 1, end, col);
  if (ec2 != std::errc() || r == end || *r != ':') return {0, 0};
  return {line, col};
}
}  // namespace

void ConfigErrors::add(std::string message) {
  if (!seen_.insert(message).second) return;
  messages_.push_back(std::move(message));
}

void ConfigErrors::suppress(std::string message) {
  if (seen_.count(message) == 0) suppressed_.insert(std::move(message));
}

void ConfigErrors::absorb(const ConfigError& e) {
  std::string_view all = e.what();
  // A ConfigError may already hold several messages, one a line.
  while (!all.empty()) {
    size_t nl = all.find('\n');
    std::string one(all.substr(0, nl));
    all = nl == std::string_view::npos ? std::string_view{} : all.substr(nl + 1);
    if (one.empty() || suppressed_.count(one) > 0) continue;
    add(std::move(one));
  }
}

std::vector<std::string> ConfigErrors::sorted() const {
  std::vector<std::pair<std::pair<long, long>, std::string>> keyed;
  keyed.reserve(messages_.size());
  for (const auto& m : messages_) keyed.emplace_back(position_of(file_, m), m);
  std::stable_sort(keyed.begin(), keyed.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<std::string> out;
  out.reserve(keyed.size());
  for (auto& k : keyed) out.push_back(std::move(k.second));
  return out;
}

void ConfigErrors::finish() {
  collecting_ = false;
  if (messages_.empty()) return;
  std::vector<std::string> all = sorted();
  messages_.clear();
  seen_.clear();
  suppressed_.clear();
  throw ConfigError(join(all, "\n"));
}

// ---------------------------------------------------------------------------------------------
// ConfigNode

ConfigNode::ConfigNode(YAML::Node node, std::shared_ptr<const std::string> file, std::string path,
                       std::shared_ptr<ConfigErrors> errors)
    : node_(std::move(node)),
      file_(std::move(file)),
      path_(std::move(path)),
      errors_(std::move(errors)) {}

bool ConfigNode::has(std::string_view key) const {
  return find_entry(node_, key).found;
}

YAML::Node ConfigNode::get(std::string_view key) {
  read_.emplace(key);
  Entry e = find_entry(node_, key);
  if (!e.found) return YAML::Node(YAML::NodeType::Undefined);
  return e.value;
}

void ConfigNode::report(std::string_view key, std::string message) const {
  if (!collecting()) throw ConfigError(std::move(message));
  ++state_->errors;
  if (!key.empty() && !bad_.emplace(key).second) {
    errors_->suppress(std::move(message));
    return;
  }
  errors_->add(std::move(message));
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
  std::string message = where(key) + ": " + std::string(msg);
  report(key, message);  // throws unless collecting
  state_->aborted = true;
  throw ConfigError(message);
}

void ConfigNode::throw_if_errors() const {
  if (!collecting() || state_->errors == 0) return;
  std::string message = where() + ": " + path_ + " has errors (reported)";
  errors_->suppress(message);
  throw ConfigError(message);
}

void ConfigNode::error(std::string_view key, std::string_view msg) const {
  report(key, where(key) + ": " + std::string(msg));
}

void ConfigNode::error_in_value(std::string_view key, size_t offset, std::string_view msg) const {
  Entry e = find_entry(node_, key);
  if (!e.found || e.value.IsNull() || !e.value.IsScalar()) {
    error(key, msg);
    return;
  }
  YAML::Mark m = e.value.Mark();
  // A quoted scalar ('...' or "...") starts one column after its mark; a block scalar (| or >)
  // on the next lines: its position is the indicator's.
  const std::string& tag = e.value.Tag();
  if (tag == "!") m.column += 1;
  if (e.value.Scalar().find('\n') == std::string::npos) m.column += static_cast<int>(offset);
  report(key, position(*file_, m) + ": " + std::string(msg));
}

std::optional<std::string> ConfigNode::interpolated(std::string_view key,
                                                    const YAML::Node& n) const {
  try {
    return interpolate(n.Scalar());
  } catch (const std::invalid_argument& e) {
    report(key, position(*file_, n.Mark()) + ": " + e.what());
    return std::nullopt;
  }
}

/// Messages never contain the value.
std::optional<std::string> ConfigNode::checked(std::string_view key, const YAML::Node& n,
                                               std::string_view expectation) const {
  if (!n.IsScalar()) {
    error(key, not_scalar(key, n, expectation));
    return std::nullopt;
  }
  return interpolated(key, n);
}

void ConfigNode::missing(std::string_view key, std::string_view expectation) const {
  report(key, where() + fmt::format(": missing required key {} {}; expected {}", key,
                                    in_path(path_), expectation));
}

std::string ConfigNode::str(std::string_view key, std::optional<std::string> def) {
  YAML::Node n = get(key);
  if (!n.IsDefined()) {
    if (def) return *def;
    missing(key, "a string");
    return "";
  }
  return checked(key, n, "a string").value_or(def.value_or(""));
}

std::optional<std::string> ConfigNode::opt_str(std::string_view key) {
  YAML::Node n = get(key);
  if (!n.IsDefined()) return std::nullopt;
  return checked(key, n, "a string");
}

int64_t ConfigNode::integer(std::string_view key, std::optional<int64_t> def, int64_t min,
                            int64_t max) {
  std::string expectation;
  if (max == std::numeric_limits<int64_t>::max()) {
    expectation = fmt::format("an integer >= {}", min);
  } else {
    expectation = fmt::format("an integer from {} to {}", min, max);
  }
  const int64_t fallback = def.value_or(min);
  YAML::Node n = get(key);
  if (!n.IsDefined()) {
    if (def) return *def;
    missing(key, expectation);
    return fallback;
  }
  std::optional<std::string> got = checked(key, n, expectation);
  if (!got) return fallback;
  const std::string& s = *got;
  int64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || p != s.data() + s.size() || ec == std::errc::invalid_argument) {
    error(key, fmt::format("invalid integer {}; expected {}", quote(s), expectation));
    return fallback;
  }
  if (ec == std::errc::result_out_of_range || v < min || v > max) {
    error(key, fmt::format("{} is out of range; expected {}", s, expectation));
    return fallback;
  }
  return v;
}

bool ConfigNode::boolean(std::string_view key, std::optional<bool> def) {
  YAML::Node n = get(key);
  if (!n.IsDefined()) {
    if (def) return *def;
    missing(key, "true or false");
    return false;
  }
  std::optional<std::string> s = checked(key, n, "true or false");
  if (!s) return def.value_or(false);
  if (*s == "true") return true;
  if (*s == "false") return false;
  error(key, fmt::format("invalid boolean {}; expected true or false", quote(*s)));
  return def.value_or(false);
}

uint64_t ConfigNode::size(std::string_view key, std::optional<uint64_t> def) {
  YAML::Node n = get(key);
  if (!n.IsDefined()) {
    if (def) return *def;
    missing(key, kSizeExpectation.substr(9));
    return 0;
  }
  std::optional<std::string> s = checked(key, n, kSizeExpectation.substr(9));
  if (!s) return def.value_or(0);
  auto v = parse_size(*s);
  if (!v) {
    error(key, fmt::format("invalid size {}; {}", quote(*s), kSizeExpectation));
    return def.value_or(0);
  }
  return *v;
}

std::chrono::nanoseconds ConfigNode::duration(std::string_view key,
                                              std::optional<std::chrono::nanoseconds> def) {
  if (!has(key)) {
    read_.emplace(key);
    if (def) return *def;
    missing(key, kDurationExpectation.substr(9));
    return std::chrono::nanoseconds::zero();
  }
  return opt_duration(key).value_or(def.value_or(std::chrono::nanoseconds::zero()));
}

std::optional<std::chrono::nanoseconds> ConfigNode::opt_duration(std::string_view key) {
  YAML::Node n = get(key);
  if (!n.IsDefined()) return std::nullopt;
  std::optional<std::string> s = checked(key, n, kDurationExpectation.substr(9));
  if (!s) return std::nullopt;
  auto v = parse_duration(*s);
  if (!v) {
    error(key, fmt::format("invalid duration {}; {}", quote(*s), kDurationExpectation));
    return std::nullopt;
  }
  return *v;
}

std::string ConfigNode::choice(std::string_view key, std::optional<std::string> def,
                               std::initializer_list<std::string_view> allowed) {
  std::vector<std::string> names(allowed.begin(), allowed.end());
  std::string expectation = "one of: " + join(names);
  const std::string fallback = def ? *def : names.empty() ? std::string() : names.front();
  YAML::Node n = get(key);
  if (!n.IsDefined()) {
    if (def) return *def;
    missing(key, expectation);
    return fallback;
  }
  std::optional<std::string> s = checked(key, n, expectation);
  if (!s) return fallback;
  if (std::find(names.begin(), names.end(), *s) == names.end()) {
    error(key, fmt::format("invalid {} {}; expected {}", key, quote(*s), expectation));
    return fallback;
  }
  return *s;
}

std::vector<std::string> ConfigNode::list(std::string_view key,
                                          std::optional<std::vector<std::string>> def) {
  constexpr std::string_view kExpectation = "a list of strings (or a single string)";
  YAML::Node n = get(key);
  std::vector<std::string> fallback = def.value_or(std::vector<std::string>{});
  if (!n.IsDefined()) {
    if (def) return *def;
    missing(key, kExpectation);
    return fallback;
  }
  if (n.IsScalar()) {
    std::optional<std::string> s = interpolated(key, n);
    if (!s) return fallback;
    return {std::move(*s)};
  }
  if (!n.IsSequence()) {
    error(key, not_scalar(key, n, kExpectation));
    return fallback;
  }
  std::vector<std::string> out;
  for (size_t i = 0; i < n.size(); ++i) {
    YAML::Node item = n[i];
    if (!item.IsScalar()) {
      report(key, position(*file_, item.Mark().is_null() ? n.Mark() : item.Mark()) +
                      fmt::format(": item {} of {} is {}; expected a string", i + 1, key,
                                  kind_of(item)));
      return fallback;
    }
    std::optional<std::string> s = interpolated(key, item);
    if (!s) return fallback;
    out.push_back(std::move(*s));
  }
  return out;
}

std::string ConfigNode::address(std::string_view key, std::optional<std::string> def) {
  YAML::Node n = get(key);
  if (!n.IsDefined()) {
    if (def) return *def;
    missing(key, kAddressExpectation.substr(9));
    return "";
  }
  std::optional<std::string> s = checked(key, n, kAddressExpectation.substr(9));
  if (!s) return def.value_or("");
  std::string problem = check_address(*s);
  if (!problem.empty()) {
    error(key, fmt::format("invalid address {} ({}); {}", quote(*s), problem, kAddressExpectation));
    return def.value_or("");
  }
  return *s;
}

std::optional<ConfigNode> ConfigNode::map(std::string_view key) {
  YAML::Node n = get(key);
  if (!n.IsDefined()) return std::nullopt;
  if (!n.IsMap()) {
    error(key, not_scalar(key, n, "a mapping"));
    return std::nullopt;
  }
  ConfigNode nested(n, file_, join_path(path_, key), errors_);
  nested.state_ = state_;
  return nested;
}

namespace {
/// Stands for a secret in error while the load goes on collecting errors (never registered).
std::shared_ptr<Secret> placeholder_secret(SecretForm form = SecretForm::kLine) {
  return std::make_shared<Secret>(form == SecretForm::kLines ? "-\n" : "-", "", form);
}
}  // namespace

std::shared_ptr<Secret> ConfigNode::secret(std::string_view key, bool required) {
  const std::string file_key = std::string(key) + "_file";
  YAML::Node inline_node = get(key);
  YAML::Node file_node = get(file_key);
  if (inline_node.IsDefined() && file_node.IsDefined()) {
    report(file_key, where(file_key, /*value=*/false) +
                         fmt::format(": both {} and {} are set {}; expected only one of them", key,
                                     file_key, in_path(path_)));
    return placeholder_secret();
  }
  if (!inline_node.IsDefined() && !file_node.IsDefined()) {
    if (!required) return nullptr;
    report(key, where() + fmt::format(": missing required key {} (or {}) {}; expected the secret "
                                      "inline or the path of a file holding it",
                                      key, file_key, in_path(path_)));
    return placeholder_secret();
  }
  if (inline_node.IsDefined()) {
    std::optional<std::string> value = checked(key, inline_node, "a string");
    if (!value) return placeholder_secret();
    if (value->empty()) {
      error(key, fmt::format("{} is empty; expected a non-empty secret", key));
      return placeholder_secret();
    }
    if (std::string bad = Secret::check_value(*value); !bad.empty()) {
      error(key, fmt::format("{} {} (the value is not shown); expected one line without control "
                             "characters",
                             key, bad));
      return placeholder_secret();
    }
    return SecretStore::instance().add(std::move(*value), "");
  }
  std::optional<std::string> path = checked(file_key, file_node, "a file path");
  if (!path) return placeholder_secret();
  std::string value;
  try {
    value = Secret::read_file(*path);
  } catch (const std::exception& e) {
    error(file_key,
          std::string(e.what()) +
              "; expected a regular file, readable only by its owner, holding the secret");
    return placeholder_secret();
  }
  return SecretStore::instance().add(std::move(value), *path);
}

std::vector<std::shared_ptr<Secret>> ConfigNode::secret_list(std::string_view key) {
  const std::string file_key = std::string(key) + "_file";
  bool has_inline = has(key);
  bool has_file = has(file_key);
  touch(key);
  touch(file_key);
  const std::vector<std::shared_ptr<Secret>> placeholder{placeholder_secret()};
  if (has_inline && has_file) {
    report(file_key, where(file_key, /*value=*/false) +
                         fmt::format(": both {} and {} are set {}; expected only one of them", key,
                                     file_key, in_path(path_)));
    return placeholder;
  }
  if (!has_inline && !has_file) {
    report(key, where() + fmt::format(": missing required key {} (or {}) {}; expected a list of "
                                      "secrets or the path of a file holding one per line",
                                      key, file_key, in_path(path_)));
    return placeholder;
  }
  std::vector<std::shared_ptr<Secret>> out;
  if (has_inline) {
    std::vector<std::string> values = list(key);
    if (has_error(key)) return placeholder;
    for (size_t i = 0; i < values.size(); ++i) {
      if (values[i].empty()) {
        report(key, position(*file_, item_mark(node_, key, i)) +
                        fmt::format(": item {} of {} is empty; expected a non-empty secret", i + 1,
                                    key));
        return placeholder;
      }
      if (std::string bad = Secret::check_value(values[i]); !bad.empty()) {
        report(key, position(*file_, item_mark(node_, key, i)) +
                        fmt::format(": item {} of {} {} (the value is not shown); expected one "
                                    "line without control characters",
                                    i + 1, key, bad));
        return placeholder;
      }
      out.push_back(SecretStore::instance().add(std::move(values[i]), ""));
    }
    if (out.empty()) {
      error(key, fmt::format("{} is empty; expected at least one secret", key));
      return placeholder;
    }
    return out;
  }
  YAML::Node file_node = get(file_key);
  std::optional<std::string> path = checked(file_key, file_node, "a file path");
  if (!path) return placeholder;
  std::string content;
  try {
    content = Secret::read_file(*path, SecretForm::kLines);
  } catch (const std::exception& e) {
    error(file_key,
          std::string(e.what()) +
              "; expected a regular file, readable only by its owner, holding the secret");
    return placeholder;
  }
  // One secret holding the whole file, registered with it: SIGHUP re-reads the list (tokens added
  // or revoked take effect without a restart). Consumers iterate its lines (secret_lines()).
  auto whole = SecretStore::instance().add(std::move(content), *path, SecretForm::kLines);
  if (secret_lines(whole->value()).empty()) {
    error(file_key, fmt::format("secret file {} holds no secrets; expected one per line", *path));
    return placeholder;
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
    report({}, position(*file_, k.Mark()) +
                   fmt::format(": unknown key {} {}; {}", quote(name), in_path(path_), expected));
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

/// What one load has found so far: errors, and the components that are in error (an input
/// naming one of those is not a second error).
struct LoadState {
  std::string file;
  ConfigErrors& errors;
  std::map<std::string, IdInfo> ids;
  std::set<std::string> broken;

  void add(const YAML::Mark& m, std::string_view msg) {
    errors.add(position(file, m) + ": " + std::string(msg));
  }
};

/// Reads one of `sources`, `transforms`, `sinks` into `out`; returns how many are declared.
size_t read_components(ConfigNode& top, const std::shared_ptr<const std::string>& file_ptr,
                       const std::string& section, const std::string& kind, LoadState& st,
                       std::vector<ComponentDecl>& out) {
  std::optional<ConfigNode> sec = top.map(section);
  if (!sec) return top.has(section) ? 1 : 0;  // not a mapping: reported
  YAML::Node raw = sec->raw();
  size_t declared = 0;
  for (auto it = raw.begin(); it != raw.end(); ++it) {
    ++declared;
    const YAML::Node k = it->first;  // a copy: `it->` returns a temporary
    const YAML::Node v = it->second;
    if (!k.IsScalar()) {
      st.add(k.Mark(), fmt::format("a non-scalar key in {}; expected component ids", section));
      continue;
    }
    const std::string id = k.Scalar();
    const std::string path = section + "." + id;
    if (!valid_id(id)) {
      st.add(k.Mark(),
             fmt::format("invalid component id {} in {}; expected lowercase letters, digits and _ "
                         "([a-z0-9_]+)",
                         quote(id), section));
      st.broken.insert(id);
      continue;
    }
    auto [prev, inserted] = st.ids.emplace(id, IdInfo{path, k.Mark()});
    if (!inserted) {
      st.add(k.Mark(),
             fmt::format("component id {} is already used by {} (line {}); expected ids unique "
                         "across sources, transforms and sinks",
                         quote(id), prev->second.kind_path, prev->second.mark.line + 1));
      continue;
    }
    if (!v.IsMap()) {
      YAML::Mark m = v.IsNull() || v.Mark().is_null() ? k.Mark() : v.Mark();
      st.add(m, not_scalar(path, v, "a mapping with at least type"));
      st.broken.insert(id);
      continue;
    }
    ComponentDecl decl;
    decl.id = id;
    decl.kind = kind;
    decl.node = std::make_shared<ConfigNode>(v, file_ptr, path, top.errors());
    decl.type = decl.node->str("type");
    if (decl.type.empty()) decl.node->error("type", "type is empty; expected a component type");
    if (decl.node->has_error("type")) {
      st.broken.insert(id);
      continue;
    }
    if (kind == "source") {
      if (decl.node->has("inputs")) {
        st.errors.add(decl.node->where("inputs", /*value=*/false) +
                      ": sources take no inputs; expected inputs only on transforms and sinks");
        decl.node->touch("inputs");
      }
    } else {
      decl.inputs = decl.node->list("inputs");
      if (decl.inputs.empty()) {
        decl.node->error("inputs", "inputs is empty; expected at least one source or transform id");
      }
      for (size_t i = 0; i < decl.inputs.size(); ++i) {
        for (size_t j = 0; j < i; ++j) {
          if (decl.inputs[i] == decl.inputs[j]) {
            st.add(item_mark(v, "inputs", i),
                   fmt::format("input {} is listed twice in {}; expected each input once",
                               quote(decl.inputs[i]), path));
          }
        }
      }
    }
    out.push_back(std::move(decl));
  }
  return declared;
}

/// Checks that every input names a source or transform.
void check_inputs(const Config& cfg, const std::vector<ComponentDecl>& consumers, LoadState& st) {
  std::set<std::string> sources, transforms, sinks;
  std::vector<std::string> known;
  for (const auto& d : cfg.sources) {
    sources.insert(d.id);
    known.push_back(d.id);
  }
  std::map<std::string, std::vector<std::string>> routes;  // route id -> its output names
  for (const auto& d : cfg.transforms) {
    transforms.insert(d.id);
    known.push_back(d.id);
    if (d.type != "route") continue;
    auto& names = routes[d.id];
    YAML::Node r = d.node->raw()["routes"];
    if (r.IsMap())
      for (const auto& kv : r) names.push_back(kv.first.Scalar());
    names.push_back("_unmatched");
    for (const auto& n : names) known.push_back(d.id + "." + n);
  }
  for (const auto& d : cfg.sinks) sinks.insert(d.id);
  const std::string known_list = known.empty() ? "(none)" : join(known);
  for (const auto& d : consumers) {
    for (size_t i = 0; i < d.inputs.size(); ++i) {
      const std::string& in = d.inputs[i];
      if (sources.count(in) > 0 || transforms.count(in) > 0) continue;
      if (st.broken.count(in) > 0) continue;  // a component in error: reported already
      YAML::Mark m = item_mark(d.node->raw(), "inputs", i);
      if (size_t dot = in.rfind('.'); dot != std::string::npos) {
        // `<route id>.<route name>`
        std::string id = in.substr(0, dot), name = in.substr(dot + 1);
        if (st.broken.count(id) > 0) continue;
        if (auto r = routes.find(id); r != routes.end()) {
          const auto& names = r->second;
          if (std::find(names.begin(), names.end(), name) != names.end()) continue;
          st.add(m, fmt::format("unknown input {} in {}: route transform {} has no route {}; "
                                "expected one of: {}",
                                quote(in), d.node->path(), id, quote(name), join(names)));
          continue;
        }
        if (transforms.count(id) > 0) {
          st.add(m, fmt::format("unknown input {} in {}: transform {} has a single output; "
                                "expected {}",
                                quote(in), d.node->path(), id, quote(id)));
          continue;
        }
      }
      if (sinks.count(in) > 0) {
        st.add(m, fmt::format("input {} of {} is a sink, and sinks have no output; expected a "
                              "source or transform: {}",
                              quote(in), d.node->path(), known_list));
        continue;
      }
      st.add(m, fmt::format("unknown input {} in {}; expected a source or transform: {}", quote(in),
                            d.node->path(), known_list));
    }
  }
}

/// Depth-first search over transform inputs; reports the first cycle, named in data-flow order.
void check_cycles(const Config& cfg, LoadState& st) {
  std::map<std::string, const ComponentDecl*> by_id;
  for (const auto& t : cfg.transforms) by_id[t.id] = &t;
  enum class Color { kWhite, kGray, kBlack };
  std::map<std::string, Color> color;
  std::vector<const ComponentDecl*> stack;
  bool found_cycle = false;

  auto visit = [&](auto&& self, const ComponentDecl* t) -> void {
    color[t->id] = Color::kGray;
    stack.push_back(t);
    for (size_t i = 0; i < t->inputs.size() && !found_cycle; ++i) {
      auto found = by_id.find(t->inputs[i]);
      if (found == by_id.end()) {
        size_t dot = t->inputs[i].rfind('.');  // `<route id>.<route name>`
        if (dot != std::string::npos) found = by_id.find(t->inputs[i].substr(0, dot));
      }
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
        st.add(item_mark(t->node->raw(), "inputs", i),
               fmt::format("cycle among transforms: {}; expected transforms without cycles",
                           join(flow, " -> ")));
        found_cycle = true;
        return;
      }
      if (c == Color::kWhite) self(self, up);
    }
    stack.pop_back();
    color[t->id] = Color::kBlack;
  };
  for (const auto& t : cfg.transforms) {
    if (found_cycle) break;
    if (color[t.id] == Color::kWhite) visit(visit, &t);
  }
}

}  // namespace

Config load_config_text(const std::string& text, const std::string& name, bool defer_errors) {
  auto file = std::make_shared<const std::string>(name);
  auto errors = std::make_shared<ConfigErrors>(name);
  YAML::Node root;
  {
    PrepassHandler handler(*file, text, *errors);
    try {
      std::istringstream in(text);
      YAML::Parser parser(in);
      while (parser.HandleNextDocument(handler)) {
      }
      root = YAML::Load(text);
    } catch (const YAML::Exception& e) {
      // After an unclosed quote, the syntax error is its consequence.
      if (!handler.unclosed_quote()) {
        errors->add(position(*file, e.mark) +
                    fmt::format(": invalid YAML: {}; expected valid YAML", e.msg));
      }
      errors->finish();
    }
    // An unclosed quote swallowed keys: what follows would mislead.
    if (handler.unclosed_quote()) errors->finish();
  }
  if (!root.IsDefined() || root.IsNull()) {
    errors->add(position(*file, YAML::Mark::null_mark()) +
                ": the configuration is empty; expected a mapping with at least sources and "
                "sinks");
    errors->finish();
  }
  if (!root.IsMap()) {
    errors->add(position(*file, root.Mark()) +
                fmt::format(": the top level is {}; expected a mapping with at least sources and "
                            "sinks",
                            kind_of(root)));
    errors->finish();
  }

  Config cfg;
  cfg.file = name;
  cfg.errors = errors;
  ConfigNode top(root, file, "", errors);
  cfg.data_dir = top.str("data_dir", std::string(kDefaultDataDir));
  cfg.data_dir_at = top.has("data_dir") ? top.where("data_dir") : name + ":1:1";
  if (cfg.data_dir.empty()) {
    top.error("data_dir", "data_dir is empty; expected a directory path");
    cfg.data_dir = std::string(kDefaultDataDir);
  }
  cfg.threads = static_cast<int>(top.integer("threads", 0, 1, kMaxThreads));
  if (auto admin = top.map("admin")) {
    cfg.admin_address = admin->address("address", std::nullopt);
    admin->finish();
  }
  if (auto enc = top.map("encryption")) {
    cfg.at_rest = std::make_shared<crypto::KeyRing>();
    auto key_file = enc->opt_str("key_file");
    if (auto id = enc->opt_str("kms_key_id")) cfg.kms_key_id = *id;
    if (key_file && !cfg.kms_key_id.empty())
      enc->error("kms_key_id", "encryption has both key_file and kms_key_id; expected one of them");
    else if (!key_file && cfg.kms_key_id.empty())
      enc->error("key_file", "encryption needs key_file or kms_key_id");
    auto load = [&](const std::string& key, const std::string& path, bool current) {
      try {
        auto k = std::make_shared<crypto::MasterKey>(crypto::read_key_file(path));
        k->origin = "key file " + path;
        if (current) {
          cfg.at_rest->set_current(std::move(k));
        } else {
          if (cfg.at_rest->find(k->id().data()))
            enc->error(key, fmt::format("{} holds a key that is already configured", path));
          cfg.at_rest->add_previous(std::move(k));
        }
      } catch (const std::exception& e) {
        enc->error(key, e.what());
      }
    };
    if (key_file) load("key_file", *key_file, true);
    for (auto& p : enc->list("previous_key_files", std::vector<std::string>{}))
      load("previous_key_files", p, false);
    enc->finish();
  }
  if (auto log = top.map("log")) {
    cfg.log_level =
        log->choice("level", cfg.log_level, {"trace", "debug", "info", "warn", "error"});
    cfg.log_format = log->choice("format", cfg.log_format, {"text", "json"});
    log->finish();
  }
  LoadState st{name, *errors, {}, {}};
  size_t sources = read_components(top, file, "sources", "source", st, cfg.sources);
  read_components(top, file, "transforms", "transform", st, cfg.transforms);
  size_t sinks = read_components(top, file, "sinks", "sink", st, cfg.sinks);
  top.finish();

  if (sources == 0) {
    st.add(root.Mark(), "no sources are configured; expected at least one under sources");
  }
  if (sinks == 0) {
    st.add(root.Mark(), "no sinks are configured; expected at least one under sinks");
  }
  check_inputs(cfg, cfg.transforms, st);
  check_inputs(cfg, cfg.sinks, st);
  check_cycles(cfg, st);
  if (!defer_errors) errors->finish();
  return cfg;
}

Config load_config(const std::string& path, bool defer_errors) {
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
    throw ConfigError(
        fmt::format("{}:1:1: the file is {} bytes; expected at most 16MiB", path, st.st_size));
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
  return load_config_text(text, path, defer_errors);
}

}  // namespace logship
