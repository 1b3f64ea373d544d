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
/// How a secret file is read: one line (a token), one secret per line (a token list), or raw
/// bytes (a binary key: 32 raw bytes are kept as they are, anything else loses trailing newlines).
enum class SecretForm { kLine, kLines, kBytes };

class Secret {
 public:
  Secret(std::string value, std::string file, SecretForm form = SecretForm::kLine)
      : value_(std::move(value)), file_(std::move(file)), form_(form) {}
  std::string value() const {
    std::lock_guard lk(mu_);
    return value_;
  }
  const std::string& file() const { return file_; }
  /// Re-reads the file (trailing newline stripped, permission check). Returns an error message
  /// (without the secret) or "" on success. No-op for inline secrets.
  std::string reload();
  /// Reads a secret file: must be a regular file (opened without blocking: a FIFO is refused,
  /// never waited on), not group/world readable, at most 64 KiB. Its value is checked with
  /// check_value() (each line of a `lines` file). Throws std::runtime_error with a message
  /// naming the file (never the content).
  static std::string read_file(const std::string& path, SecretForm form = SecretForm::kLine);
  /// What is wrong with a one-line secret value ("" when fine): a CR or LF (a second line),
  /// another control character, or nothing but blanks. Never quotes the value.
  static std::string check_value(std::string_view v);

 private:
  mutable std::mutex mu_;
  std::string value_;
  std::string file_;
  SecretForm form_ = SecretForm::kLine;
};

/// The non-empty lines of a secret list value (a `*_file` list holds one secret per line),
/// trimmed of surrounding blanks and CR (views into `value`: keep it alive while using them). An
/// inline secret is its own single line.
std::vector<std::string_view> secret_lines(std::string_view value);

/// Text that came from outside (a server's error body, a proxy's answer) made safe to log or
/// store: every configured secret and every credential-shaped value (`Authorization:` headers,
/// `X-Amz-Security-Token`, `Signature=`, `Credential=`, `Splunk <token>`, `Bearer <token>`) is
/// replaced by `[REDACTED]`, control characters by spaces, and the result is cut to `max_len`
/// bytes (with an ellipsis).
std::string scrub(std::string_view text, size_t max_len = 1024);

/// Every secret registers here (values for scrub()); SIGHUP reloads the file-backed ones.
class SecretStore {
 public:
  static SecretStore& instance();
  std::shared_ptr<Secret> add(std::string value, std::string file,
                              SecretForm form = SecretForm::kLine);
  /// Every secret value currently known (inline ones too): what scrub() removes from text.
  std::vector<std::string> values();
  /// Reloads every file-backed secret; logs (without values) and returns the number of failures.
  int reload_all();
  /// Incremented by every reload_all(): components waiting on a credential (an HEC endpoint that
  /// answered 401) watch it to retry at once after SIGHUP.
  uint64_t generation() const { return generation_.load(std::memory_order_acquire); }

 private:
  std::atomic<uint64_t> generation_{0};
  std::mutex mu_;
  std::vector<std::weak_ptr<Secret>> secrets_;  // file-backed (reloaded on SIGHUP)
  std::vector<std::weak_ptr<Secret>> all_;      // every secret (scrubbed from outside text)
};

}  // namespace logship
