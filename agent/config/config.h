#pragma once
// Configuration loading (yaml-cpp). Keys, types and defaults: CONFIG.md (normative).
// Every error is a ConfigError whose message reads `file:line:col: what is wrong; expected ...`
// (line and column 1-based) and makes `logship run|check` exit with code 2.
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

namespace logship {

class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// A mapping in the config file, with positions. Getters interpolate `${VAR}`,
/// `${VAR:-default}` and `$$` in strings, check types strictly and remember which keys were read;
/// finish() rejects the keys nobody read (unknown keys). Nested mappings (`batch: {max_bytes: 1}`)
/// are read with map(); dotted names in CONFIG.md (`batch.max_bytes`) are such nesting.
class ConfigNode {
 public:
  ConfigNode(YAML::Node node, std::shared_ptr<const std::string> file, std::string path);

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
  /// Errors on the first key that no getter read.
  void finish();

  /// `file:line:col` of a key (its value when `value` is true), or of the mapping.
  std::string where(std::string_view key = {}, bool value = true) const;
  /// Throws ConfigError `file:line:col: msg` at the key's value (or the mapping).
  [[noreturn]] void fail(std::string_view key, std::string_view msg) const;

  YAML::Node raw() const { return node_; }
  /// `file:line:col` of any node of this file (a list element, say).
  std::string where_node(const YAML::Node& n) const;

 private:
  YAML::Node get(std::string_view key);  // marks as read; undefined node when absent
  std::string scalar(std::string_view key, const YAML::Node& n);  // interpolated scalar
  YAML::Node node_;
  std::shared_ptr<const std::string> file_;
  std::string path_;
  std::set<std::string, std::less<>> read_;
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
};

/// Parses the file, checks the top level, component ids (`[a-z0-9_]+`, unique across kinds),
/// interpolation (an unset `${VAR}` without default is an error naming it), duplicate keys,
/// dangling `inputs` and cycles. Component-specific keys are checked by the plugins.
Config load_config(const std::string& path);
/// Same, from text (tests); `name` stands for the file name in messages.
Config load_config_text(const std::string& text, const std::string& name);

/// Interpolates `${VAR}`, `${VAR:-default}`, `$$`. Throws ConfigError-less std::invalid_argument
/// naming the variable when it is unset and has no default.
std::string interpolate(std::string_view s);

}  // namespace logship
