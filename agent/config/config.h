#pragma once
// Configuration loading (yaml-cpp). Keys, types and defaults: CONFIG.md (normative).
// Every error is a ConfigError whose message reads `file:line:col: what is wrong; expected ...`
// (line and column 1-based) and makes `logship run|check` exit with code 2. A load collects every
// error (ConfigErrors) and throws one ConfigError holding all of them, one a line, in file order.
#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "agent/core/secret.h"
#include "agent/crypto/at_rest.h"

namespace logship {

class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// The errors of one load, shared by all the ConfigNodes of that load. While collecting, the
/// getters record a bad value and return the default (or a neutral value), fail() records and
/// throws, and the loader and the runtime catch per component, so that every error is reported.
/// An error about a key that already has one is a consequence: it is suppressed.
class ConfigErrors {
 public:
  explicit ConfigErrors(std::string file) : file_(std::move(file)) {}
  bool collecting() const { return collecting_; }
  /// Records `file:line:col: what` (once: identical messages are deduplicated).
  void add(std::string message);
  /// A message that follows from an error already recorded: never reported (see absorb()).
  void suppress(std::string message);
  /// For a caught ConfigError: records its message unless recorded or suppressed already.
  void absorb(const ConfigError& e);
  bool empty() const { return messages_.empty(); }
  /// The messages in file order (line, then column).
  std::vector<std::string> sorted() const;
  /// Stops collecting (later errors throw at once); throws one ConfigError of all the messages,
  /// one a line in file order, if there are any.
  void finish();

 private:
  std::string file_;
  bool collecting_ = true;
  std::vector<std::string> messages_;
  std::set<std::string, std::less<>> seen_, suppressed_;
};

/// A mapping in the config file, with positions. Getters interpolate `${VAR}`,
/// `${VAR:-default}` and `$$` in strings, check types strictly and remember which keys were read;
/// finish() rejects the keys nobody read (unknown keys). Nested mappings (`batch: {max_bytes: 1}`)
/// are read with map(); dotted names in CONFIG.md (`batch.max_bytes`) are such nesting.
class ConfigNode {
 public:
  /// Without `errors` (or once they are finished) every error throws at once.
  ConfigNode(YAML::Node node, std::shared_ptr<const std::string> file, std::string path,
             std::shared_ptr<ConfigErrors> errors = nullptr);

  /// "sources.app" / "sinks.splunk.batch": where this mapping is, for messages.
  const std::string& path() const { return path_; }
  const std::string& file() const { return *file_; }
  bool has(std::string_view key) const;

  /// Required when `def` is nullopt: a missing key is an error at the mapping's position.
  std::string str(std::string_view key, std::optional<std::string> def = std::nullopt);
  std::optional<std::string> opt_str(std::string_view key);
  int64_t integer(std::string_view key, std::optional<int64_t> def, int64_t min, int64_t max);
  bool boolean(std::string_view key, std::optional<bool> def);
  uint64_t size(std::string_view key, std::optional<uint64_t> def);
  std::chrono::nanoseconds duration(std::string_view key,
                                    std::optional<std::chrono::nanoseconds> def);
  std::optional<std::chrono::nanoseconds> opt_duration(std::string_view key);
  /// One of `allowed`.
  std::string choice(std::string_view key, std::optional<std::string> def,
                     std::initializer_list<std::string_view> allowed);
  /// A list of strings; a single scalar is a one-element list. Required when def is nullopt.
  std::vector<std::string> list(std::string_view key,
                                std::optional<std::vector<std::string>> def = std::nullopt);
  /// `host:port` (IPv6 as `[::1]:port`); validated, port 0-65535.
  std::string address(std::string_view key, std::optional<std::string> def);
  /// A nested mapping; nullopt when absent. An error if present but not a mapping.
  std::optional<ConfigNode> map(std::string_view key);
  /// A secret given as `key` or as `key_file` (exactly one; file: regular, not group/world
  /// readable, trailing newline stripped). Registered with SecretStore for SIGHUP reloads.
  /// Required unless `required` is false (then nullptr when both are absent).
  std::shared_ptr<Secret> secret(std::string_view key, bool required = true);
  /// A list of secrets: `key` (list) or `key_file` (one per line).
  std::vector<std::shared_ptr<Secret>> secret_list(std::string_view key);

  /// Marks a key as read without reading it (e.g. keys handled by the runtime).
  void touch(std::string_view key);
  /// Errors on the keys that no getter read (on the first unless collecting).
  void finish();

  /// `file:line:col` of a key (its value when `value` is true), or of the mapping.
  std::string where(std::string_view key = {}, bool value = true) const;
  /// Throws ConfigError `file:line:col: msg` at the key's value (or the mapping); while
  /// collecting, records it first (unless `key` already has an error).
  [[noreturn]] void fail(std::string_view key, std::string_view msg) const;
  /// Like fail(), but while collecting it records the error and returns: for checks after which
  /// parsing can go on.
  void error(std::string_view key, std::string_view msg) const;
  /// Like error(), at `offset` characters into the key's one-line scalar (after an opening
  /// quote): an error inside an expression points at its token.
  void error_in_value(std::string_view key, size_t offset, std::string_view msg) const;
  /// Whether an error was recorded about `key` of this mapping.
  bool has_error(std::string_view key) const { return bad_.count(key) > 0; }
  const std::shared_ptr<ConfigErrors>& errors() const { return errors_; }
  /// While collecting: whether an error was recorded here or in a nested mapping (map()).
  bool any_errors() const { return state_->errors > 0; }
  /// Whether fail() stopped the reading of this mapping or of a nested one: keys after it were
  /// not read, so finish() would call them unknown.
  bool aborted() const { return state_->aborted; }
  /// While collecting, throws (an error already reported) when any_errors(): a factory calls it
  /// between reading its configuration and building its component, which is never built from a
  /// configuration in error.
  void throw_if_errors() const;

  YAML::Node raw() const { return node_; }
  /// `file:line:col` of any node of this file (a list element, say).
  std::string where_node(const YAML::Node& n) const;

 private:
  YAML::Node get(std::string_view key);  // marks as read; undefined node when absent
  bool collecting() const { return errors_ && errors_->collecting(); }
  /// `message` (with its position) about `key`: thrown unless collecting, else recorded (or
  /// suppressed when `key` already has an error).
  void report(std::string_view key, std::string message) const;
  /// The key's scalar, interpolated; nullopt after reporting when it is not a usable scalar.
  std::optional<std::string> checked(std::string_view key, const YAML::Node& n,
                                     std::string_view expectation) const;
  std::optional<std::string> interpolated(std::string_view key, const YAML::Node& n) const;
  void missing(std::string_view key, std::string_view expectation) const;
  YAML::Node node_;
  std::shared_ptr<const std::string> file_;
  std::string path_;
  std::set<std::string, std::less<>> read_;
  std::shared_ptr<ConfigErrors> errors_;
  mutable std::set<std::string, std::less<>> bad_;  // keys with an error
  struct State {
    size_t errors = 0;
    bool aborted = false;
  };
  std::shared_ptr<State> state_ = std::make_shared<State>();  // shared with nested mappings
};

/// One component as declared: its id, kind, type, inputs and its mapping (type and inputs
/// already read).
struct ComponentDecl {
  std::string id;
  std::string kind;  ///< "source" | "transform" | "sink"
  std::string type;
  std::vector<std::string> inputs;
  std::shared_ptr<ConfigNode> node;
};

struct Config {
  std::string file;
  std::string data_dir = "/var/lib/logship";
  std::string data_dir_at;  ///< `file:line:col` of data_dir (of the file's start when defaulted)
  int threads = 0;  ///< 0 = CPUs allowed by cgroup quota / affinity
  std::optional<std::string> admin_address;
  std::string log_level = "info";
  std::string log_format = "text";
  std::vector<ComponentDecl> sources, transforms, sinks;
  /// Top-level `encryption`: the at-rest key ring (null when unset). With kms_key_id the ring
  /// is filled at start (Runtime::load_keys); the key files are read at load.
  std::shared_ptr<crypto::KeyRing> at_rest;
  std::string kms_key_id;
  /// The load's errors. With `defer_errors`, still collecting: the components' checks add theirs
  /// and errors->finish() throws them all (the Runtime does).
  std::shared_ptr<ConfigErrors> errors;
};

/// Parses the file, checks the top level, component ids (`[a-z0-9_]+`, unique across kinds),
/// interpolation (an unset `${VAR}` without default is an error naming it), duplicate keys,
/// dangling `inputs` and cycles. Component-specific keys are checked by the plugins.
/// Throws one ConfigError listing every error found (file order), unless `defer_errors`: then
/// only unusable files (unreadable, invalid YAML) throw, and the rest stays in Config::errors.
Config load_config(const std::string& path, bool defer_errors = false);
/// Same, from text (tests); `name` stands for the file name in messages.
Config load_config_text(const std::string& text, const std::string& name,
                        bool defer_errors = false);

/// Interpolates `${VAR}`, `${VAR:-default}`, `$$`. Throws ConfigError-less std::invalid_argument
/// naming the variable when it is unset and has no default.
std::string interpolate(std::string_view s);

}  // namespace logship
