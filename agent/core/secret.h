#pragma once
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace logship {

/// A secret value (token, key). Never logged: it has no stream operator and no formatter.
/// When it came from a `*_file` key it can be re-read (SIGHUP) with reload().
class Secret {
 public:
  Secret(std::string value, std::string file) : value_(std::move(value)), file_(std::move(file)) {}
  std::string value() const {
    std::lock_guard lk(mu_);
    return value_;
  }
  const std::string& file() const { return file_; }
  /// Re-reads the file (trailing newline stripped, permission check). Returns an error message
  /// (without the secret) or "" on success. No-op for inline secrets.
  std::string reload();
  /// Reads a secret file: must be a regular file, not group/world readable. Throws
  /// std::runtime_error with a message naming the file (never the content).
  static std::string read_file(const std::string& path);

 private:
  mutable std::mutex mu_;
  std::string value_;
  std::string file_;
};

/// The non-empty lines of a secret list value (a `*_file` list holds one secret per line),
/// trimmed of surrounding blanks and CR (views into `value`: keep it alive while using them). An
/// inline secret is its own single line.
std::vector<std::string_view> secret_lines(std::string_view value);

/// Every secret loaded from a `*_file` key registers here; SIGHUP reloads them all.
class SecretStore {
 public:
  static SecretStore& instance();
  std::shared_ptr<Secret> add(std::string value, std::string file);
  /// Reloads every file-backed secret; logs (without values) and returns the number of failures.
  int reload_all();
  /// Incremented by every reload_all(): components waiting on a credential (an HEC endpoint that
  /// answered 401) watch it to retry at once after SIGHUP.
  uint64_t generation() const { return generation_.load(std::memory_order_acquire); }

 private:
  std::atomic<uint64_t> generation_{0};
  std::mutex mu_;
  std::vector<std::weak_ptr<Secret>> secrets_;
};

}  // namespace logship
