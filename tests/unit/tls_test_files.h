#pragma once
// A self-signed certificate and its key written to a temporary directory (OpenSSL API), for
// config tests that need real PEM files (TLS files are checked when a config is loaded).
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

namespace logship::test {

struct TlsFiles {
  std::string dir, cert, key, ca;
};

inline TlsFiles make_tls_files() {
  char tmpl[] = "/tmp/logship-tls-test-XXXXXX";
  TlsFiles f;
  f.dir = ::mkdtemp(tmpl);
  f.cert = f.dir + "/cert.pem";
  f.key = f.dir + "/key.pem";
  f.ca = f.cert;  // self-signed: its own CA
  EVP_PKEY* pkey = EVP_EC_gen("P-256");
  X509* x = X509_new();
  X509_set_version(x, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
  X509_gmtime_adj(X509_getm_notBefore(x), 0);
  X509_gmtime_adj(X509_getm_notAfter(x), 86400);
  X509_set_pubkey(x, pkey);
  X509_NAME* name = X509_get_subject_name(x);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("localhost"), -1, -1, 0);
  X509_set_issuer_name(x, name);
  X509_sign(x, pkey, EVP_sha256());
  FILE* c = std::fopen(f.cert.c_str(), "w");
  PEM_write_X509(c, x);
  std::fclose(c);
  FILE* k = std::fopen(f.key.c_str(), "w");
  PEM_write_PrivateKey(k, pkey, nullptr, nullptr, 0, nullptr, nullptr);
  std::fclose(k);
  ::chmod(f.key.c_str(), 0600);
  X509_free(x);
  EVP_PKEY_free(pkey);
  return f;
}

}  // namespace logship::test
