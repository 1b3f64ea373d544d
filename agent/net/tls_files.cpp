#include "agent/net/tls_files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

namespace logship {
namespace {

constexpr off_t kMaxPemBytes = 4 << 20;

// Reads a regular file of at most 4 MiB without blocking on a FIFO; "" on success in `err`.
std::string read_small(const std::string& path, const char* what, std::string& err) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd < 0) {
    err = std::string("cannot open ") + what + " " + path + ": " + std::strerror(errno);
    return {};
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    err = std::string(what) + " " + path + " is not a regular file";
    return {};
  }
  if (st.st_size > kMaxPemBytes) {
    ::close(fd);
    err = std::string(what) + " " + path + " is larger than 4MiB";
    return {};
  }
  std::string out(static_cast<size_t>(st.st_size), '\0');
  size_t got = 0;
  while (got < out.size()) {
    ssize_t n = ::read(fd, out.data() + got, out.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  ::close(fd);
  out.resize(got);
  return out;
}

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
struct PkeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};

std::unique_ptr<X509, X509Free> first_cert(const std::string& pem) {
  std::unique_ptr<BIO, BioFree> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) return nullptr;
  std::unique_ptr<X509, X509Free> x(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  ERR_clear_error();
  return x;
}

}  // namespace

std::string check_pem_certificates(const std::string& path) {
  std::string err;
  std::string pem = read_small(path, "the certificate file", err);
  if (!err.empty()) return err;
  if (!first_cert(pem)) return "the certificate file " + path + " holds no PEM certificate";
  return "";
}

std::string check_ca_dir(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0)
    return "cannot open the CA directory " + path + ": " + std::strerror(errno);
  if (!S_ISDIR(st.st_mode)) return "the CA directory " + path + " is not a directory";
  return "";
}

std::string check_cert_and_key(const std::string& cert_path, const std::string& key_path) {
  std::string err;
  std::string cert_pem = read_small(cert_path, "the certificate file", err);
  if (!err.empty()) return err;
  auto cert = first_cert(cert_pem);
  if (!cert) return "the certificate file " + cert_path + " holds no PEM certificate";
  std::string key_pem = read_small(key_path, "the private key file", err);
  if (!err.empty()) return err;
  std::unique_ptr<BIO, BioFree> bio(
      BIO_new_mem_buf(key_pem.data(), static_cast<int>(key_pem.size())));
  std::unique_ptr<EVP_PKEY, PkeyFree> key(
      bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr) : nullptr);
  ERR_clear_error();
  if (!key) return "the private key file " + key_path + " holds no PEM private key (or it is encrypted)";
  bool match = X509_check_private_key(cert.get(), key.get()) == 1;
  ERR_clear_error();
  if (!match)
    return "the private key " + key_path + " does not match the certificate " + cert_path;
  return "";
}

bool key_file_too_open(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && (st.st_mode & (S_IRWXG | S_IRWXO)) != 0;
}

}  // namespace logship
