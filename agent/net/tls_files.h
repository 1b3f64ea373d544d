#pragma once
// Checks of the TLS files a configuration names, made at load time (`logship check` and `run`),
// so that a missing or malformed CA, certificate or key is a config error with a position
// instead of an agent that starts, reports ready and never sends anything.
#include <string>

namespace logship {

/// "" when `path` is a readable regular file holding at least one PEM certificate; else what is
/// wrong (naming the file, never its content).
std::string check_pem_certificates(const std::string& path);
/// "" when `path` is a directory (a CA directory prepared with c_rehash / openssl rehash).
std::string check_ca_dir(const std::string& path);
/// "" when `key_path` holds a PEM private key that matches the first certificate of
/// `cert_path` (both checked as above).
std::string check_cert_and_key(const std::string& cert_path, const std::string& key_path);
/// True when a private key file may be read by its group or others (a warning, not an error).
bool key_file_too_open(const std::string& path);

}  // namespace logship
