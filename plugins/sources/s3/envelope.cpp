#include "plugins/sources/s3/envelope.h"

#include <fmt/format.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <simdjson.h>

#include <stdexcept>

#include "agent/core/base64.h"

namespace logship::s3ec {

namespace {

constexpr std::string_view kGcmName = "AES/GCM/NoPadding";
constexpr std::string_view kCbcName = "AES/CBC/PKCS5Padding";
constexpr std::string_view kSuite115 = "115";
constexpr size_t kTagBytes = 16;
constexpr size_t kMaxEnvelopeValue = 64 * 1024;  // metadata is at most 2 KiB on S3; instruction
                                                 // files are small JSON documents

// Names by version (without `x-amz-meta-`).
constexpr std::string_view kV1V2Names[] = {"x-amz-key",     "x-amz-key-v2",   "x-amz-iv",
                                           "x-amz-matdesc", "x-amz-wrap-alg", "x-amz-cek-alg",
                                           "x-amz-tag-len"};
constexpr std::string_view kV3Names[] = {"x-amz-3", "x-amz-w", "x-amz-c", "x-amz-d",
                                         "x-amz-i", "x-amz-m", "x-amz-t"};

const std::string* find(const Meta& m, std::string_view name) {
  auto it = m.find(std::string(name));
  return it == m.end() ? nullptr : &it->second;
}

bool any_of(const Meta& m, const std::string_view* names, size_t n) {
  for (size_t i = 0; i < n; ++i)
    if (find(m, names[i])) return true;
  return false;
}

bool has_v1v2(const Meta& m) {
  return any_of(m, kV1V2Names, std::size(kV1V2Names));
}
bool has_v3(const Meta& m) {
  return any_of(m, kV3Names, std::size(kV3Names));
}

/// A JSON object of strings (matdesc, context, instruction file).
std::optional<Meta> json_strings(std::string_view text, std::string* err, std::string_view what) {
  if (text.size() > kMaxEnvelopeValue) {
    *err = fmt::format("{} is {} bytes (more than {})", what, text.size(), kMaxEnvelopeValue);
    return std::nullopt;
  }
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  simdjson::dom::object obj;
  std::string copy(text);
  if (parser.parse(copy).get(doc) != simdjson::SUCCESS || doc.get(obj) != simdjson::SUCCESS) {
    *err = fmt::format("{} is not a JSON object", what);
    return std::nullopt;
  }
  Meta out;
  for (auto field : obj) {
    std::string_view v;
    if (field.value.get(v) != simdjson::SUCCESS) {
      *err = fmt::format("{}: the value of \"{}\" is not a string", what, field.key);
      return std::nullopt;
    }
    if (!out.emplace(std::string(field.key), std::string(v)).second) {
      *err = fmt::format("{}: \"{}\" appears twice", what, field.key);
      return std::nullopt;
    }
  }
  return out;
}

std::optional<std::string> b64(const Meta& m, std::string_view name, std::string* err) {
  const std::string* v = find(m, name);
  if (!v) {
    *err = fmt::format("{} is missing", name);
    return std::nullopt;
  }
  auto d = base64_decode(*v);
  if (!d) *err = fmt::format("{} is not valid base64", name);
  return d;
}

bool parse_v1v2(const Meta& m, Envelope& e, std::string* err) {
  const bool v2 = find(m, "x-amz-key-v2") != nullptr;
  if (v2 && find(m, "x-amz-key")) {
    *err = "both x-amz-key and x-amz-key-v2 are present";
    return false;
  }
  e.version = v2 ? Version::kV2 : Version::kV1;
  auto key = b64(m, v2 ? "x-amz-key-v2" : "x-amz-key", err);
  auto iv = key ? b64(m, "x-amz-iv", err) : std::nullopt;
  if (!key || !iv) return false;
  e.wrapped_key = std::move(*key);
  e.iv = std::move(*iv);
  const std::string* cek = find(m, "x-amz-cek-alg");
  if (!cek || *cek == kCbcName) {
    e.content = Content::kCbc;  // a missing cek-alg means CBC
  } else if (*cek == kGcmName) {
    e.content = Content::kGcm;
    if (!v2) {
      *err = "x-amz-cek-alg AES/GCM/NoPadding with a v1 key (x-amz-key)";
      return false;
    }
    const std::string* tag = find(m, "x-amz-tag-len");
    if (tag && *tag != "128") {
      *err = fmt::format("x-amz-tag-len {} is not supported (128 expected)", *tag);
      return false;
    }
  } else {
    *err = fmt::format("content algorithm x-amz-cek-alg \"{}\" is not supported", *cek);
    return false;
  }
  size_t want_iv = e.content == Content::kGcm ? 12 : 16;
  if (e.iv.size() != want_iv) {
    *err = fmt::format("x-amz-iv holds {} bytes ({} expected)", e.iv.size(), want_iv);
    return false;
  }
  Meta matdesc;
  if (const std::string* md = find(m, "x-amz-matdesc")) {
    auto parsed = json_strings(*md, err, "x-amz-matdesc");
    if (!parsed) return false;
    matdesc = std::move(*parsed);
  }
  const std::string* wrap = find(m, "x-amz-wrap-alg");
  if (!wrap) {
    *err = "x-amz-wrap-alg is missing (a v1 object wrapped by a local master key is not supported)";
    return false;
  }
  if (*wrap == "kms+context") {
    e.wrap = Wrap::kKmsContext;
  } else if (*wrap == "kms") {
    e.wrap = Wrap::kKmsLegacy;
  } else if (*wrap == "AES/GCM") {
    e.wrap = Wrap::kAesGcm;
  } else {
    *err = fmt::format("key wrap x-amz-wrap-alg \"{}\" is not supported", *wrap);
    return false;
  }
  if (e.wrap == Wrap::kKmsContext && !v2) {
    *err = "wrap kms+context with a v1 key (x-amz-key)";
    return false;
  }
  if (auto k = matdesc.find("kms_cmk_id"); k != matdesc.end()) e.kms_key_id = k->second;
  if (e.wrap != Wrap::kAesGcm) e.context = std::move(matdesc);
  return true;
}

bool parse_v3(const Meta& meta, const Meta& keys, Envelope& e, std::string* err) {
  e.version = Version::kV3;
  e.content = Content::kGcmCommit;
  const std::string* suite = find(meta, "x-amz-c");
  if (!suite) {
    *err = "x-amz-c (the algorithm suite) is missing from the object's metadata";
    return false;
  }
  if (*suite != kSuite115) {
    *err = fmt::format("algorithm suite x-amz-c \"{}\" is not supported (115 expected)", *suite);
    return false;
  }
  auto id = b64(meta, "x-amz-i", err);
  auto commit = id ? b64(meta, "x-amz-d", err) : std::nullopt;
  auto key = commit ? b64(keys, "x-amz-3", err) : std::nullopt;
  if (!key) return false;
  if (id->size() != 28 || commit->size() != 28) {
    *err = fmt::format("x-amz-i and x-amz-d must hold 28 bytes each (they hold {} and {})",
                       id->size(), commit->size());
    return false;
  }
  e.message_id = std::move(*id);
  e.commitment = std::move(*commit);
  e.wrapped_key = std::move(*key);
  const std::string* w = find(keys, "x-amz-w");
  if (!w) {
    *err = "x-amz-w (the key wrap) is missing";
    return false;
  }
  if (*w == "12") {
    e.wrap = Wrap::kKmsContext;
    const std::string* t = find(keys, "x-amz-t");
    if (!t) {
      *err = "x-amz-t (the KMS encryption context) is missing";
      return false;
    }
    auto ctx = json_strings(*t, err, "x-amz-t");
    if (!ctx) return false;
    e.context = std::move(*ctx);
    if (auto k = e.context.find("kms_cmk_id"); k != e.context.end()) e.kms_key_id = k->second;
  } else if (*w == "02") {
    e.wrap = Wrap::kAesGcm;
  } else {
    *err =
        fmt::format("key wrap x-amz-w \"{}\" is not supported (02 AES/GCM or 12 kms+context)", *w);
    return false;
  }
  if (const std::string* md = find(keys, "x-amz-m")) {
    if (!json_strings(*md, err, "x-amz-m")) return false;
  }
  return true;
}

/// HKDF-SHA512 (RFC 5869) of `len` bytes.
std::string hkdf_sha512(std::string_view ikm, std::string_view salt, std::string_view info,
                        size_t len) {
  EVP_KDF* kdf = EVP_KDF_fetch(nullptr, "HKDF", nullptr);
  if (!kdf) throw std::runtime_error("HKDF is not available");
  EVP_KDF_CTX* kctx = EVP_KDF_CTX_new(kdf);
  EVP_KDF_free(kdf);
  if (!kctx) throw std::runtime_error("HKDF context");
  char digest[] = "SHA512";
  OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, digest, 0),
                         OSSL_PARAM_construct_octet_string(
                             OSSL_KDF_PARAM_KEY, const_cast<char*>(ikm.data()), ikm.size()),
                         OSSL_PARAM_construct_octet_string(
                             OSSL_KDF_PARAM_SALT, const_cast<char*>(salt.data()), salt.size()),
                         OSSL_PARAM_construct_octet_string(
                             OSSL_KDF_PARAM_INFO, const_cast<char*>(info.data()), info.size()),
                         OSSL_PARAM_construct_end()};
  std::string out(len, '\0');
  int ok = EVP_KDF_derive(kctx, reinterpret_cast<unsigned char*>(out.data()), len, params);
  EVP_KDF_CTX_free(kctx);
  if (ok != 1) throw std::runtime_error("HKDF derivation failed");
  return out;
}

/// AES-256-GCM decryption of a whole (small) message: iv ‖ ciphertext ‖ tag.
std::optional<std::string> gcm_open(std::string_view key, std::string_view iv, std::string_view ct,
                                    std::string_view tag, std::string_view aad) {
  EVP_CIPHER_CTX* c = EVP_CIPHER_CTX_new();
  if (!c) return std::nullopt;
  std::string out(ct.size() + 16, '\0');
  int n = 0, m = 0;
  bool ok =
      EVP_DecryptInit_ex(c, EVP_aes_256_gcm(), nullptr, nullptr, nullptr) == 1 &&
      EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, static_cast<int>(iv.size()), nullptr) == 1 &&
      EVP_DecryptInit_ex(c, nullptr, nullptr, reinterpret_cast<const unsigned char*>(key.data()),
                         reinterpret_cast<const unsigned char*>(iv.data())) == 1 &&
      (aad.empty() ||
       EVP_DecryptUpdate(c, nullptr, &n, reinterpret_cast<const unsigned char*>(aad.data()),
                         static_cast<int>(aad.size())) == 1) &&
      EVP_DecryptUpdate(c, reinterpret_cast<unsigned char*>(out.data()), &n,
                        reinterpret_cast<const unsigned char*>(ct.data()),
                        static_cast<int>(ct.size())) == 1 &&
      EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, static_cast<int>(tag.size()),
                          const_cast<char*>(tag.data())) == 1 &&
      EVP_DecryptFinal_ex(c, reinterpret_cast<unsigned char*>(out.data()) + n, &m) == 1;
  EVP_CIPHER_CTX_free(c);
  if (!ok) {
    OPENSSL_cleanse(out.data(), out.size());
    return std::nullopt;
  }
  out.resize(static_cast<size_t>(n + m));
  return out;
}

}  // namespace

std::string Envelope::describe() const {
  const char* v = version == Version::kV1 ? "v1" : version == Version::kV2 ? "v2" : "v3";
  const char* w = wrap == Wrap::kKmsContext  ? "kms+context"
                  : wrap == Wrap::kKmsLegacy ? "kms"
                                             : "AES/GCM";
  const char* c = content == Content::kCbc   ? "AES/CBC"
                  : content == Content::kGcm ? "AES/GCM"
                                             : "AES/GCM committing (115)";
  return fmt::format("{} {} {}{}", v, w, c, in_instruction_file ? " (instruction file)" : "");
}

bool has_envelope(const Meta& m) {
  return has_v1v2(m) || has_v3(m) || find(m, "x-amz-unencrypted-content-length");
}

std::optional<Meta> parse_instruction(std::string_view body, std::string* err) {
  return json_strings(body, err, "the instruction file");
}

std::optional<Envelope> parse_envelope(const Meta& meta, const Meta* instruction,
                                       std::string* err) {
  Envelope e;
  const bool keys_in_meta =
      find(meta, "x-amz-key") || find(meta, "x-amz-key-v2") || find(meta, "x-amz-3");
  if (has_v1v2(meta) && has_v3(meta)) {
    *err = "the object's metadata mixes names of format v3 with names of v1/v2";
    return std::nullopt;
  }
  if (keys_in_meta) {
    bool ok = has_v3(meta) ? parse_v3(meta, meta, e, err) : parse_v1v2(meta, e, err);
    if (!ok) return std::nullopt;
    return e;
  }
  if (!instruction) {
    *err = "no wrapped data key in the object's metadata, and no instruction file";
    return std::nullopt;
  }
  e.in_instruction_file = true;
  const Meta& ins = *instruction;
  if (has_v1v2(ins) && has_v3(ins)) {
    *err = "the instruction file mixes names of format v3 with names of v1/v2";
    return std::nullopt;
  }
  if (has_v3(meta) || has_v3(ins)) {
    // v3 keeps the suite, the commitment and the message id in the object's metadata: an
    // instruction file that holds them was not written by an S3 Encryption Client.
    for (std::string_view n : {"x-amz-c", "x-amz-d", "x-amz-i"})
      if (find(ins, n)) {
        *err = fmt::format(
            "the instruction file holds {}, which v3 keeps only in the object's "
            "metadata (tampered)",
            n);
        return std::nullopt;
      }
    if (!parse_v3(meta, ins, e, err)) return std::nullopt;
    return e;
  }
  if (has_v1v2(meta)) {
    // Envelope names split between the object and its instruction file: take them all from the
    // instruction file, and refuse a conflict.
    for (auto& [k, v] : meta)
      if (auto it = ins.find(k);
          it != ins.end() && it->second != v &&
          std::find(std::begin(kV1V2Names), std::end(kV1V2Names), k) != std::end(kV1V2Names)) {
        *err = fmt::format("{} differs between the object's metadata and its instruction file", k);
        return std::nullopt;
      }
  }
  if (!parse_v1v2(ins, e, err)) return std::nullopt;
  return e;
}

std::string check_context(const Envelope& e, const aws::EncryptionContext& expected) {
  if (e.wrap != Wrap::kKmsContext) return {};
  std::string_view want = e.version == Version::kV3 ? kSuite115 : kGcmName;
  auto it = e.context.find("aws:x-amz-cek-alg");
  if (it == e.context.end())
    return "the KMS encryption context lacks aws:x-amz-cek-alg (tampered or not an S3 "
           "Encryption Client object)";
  if (it->second != want)
    return fmt::format(
        "the KMS encryption context names content algorithm \"{}\", the object "
        "uses \"{}\" (tampered)",
        it->second, want);
  if (e.version == Version::kV2 && e.content != Content::kGcm)
    return "kms+context with a content algorithm other than AES/GCM/NoPadding";
  for (auto& [k, v] : expected) {
    auto f = e.context.find(k);
    if (f == e.context.end())
      return fmt::format(
          "the KMS encryption context lacks \"{}\" (client_side_encryption."
          "encryption_context requires \"{}\": \"{}\")",
          k, k, v);
    if (f->second != v)
      return fmt::format("the KMS encryption context has \"{}\": \"{}\", \"{}\" is required", k,
                         f->second, v);
  }
  return {};
}

std::optional<aws::KeyBytes> unwrap_aes_gcm(const Envelope& e, const aws::KeyBytes& kek,
                                            std::string* err) {
  if (kek.size() != 32) {
    *err = "the key-encryption key is not 256 bits";
    return std::nullopt;
  }
  const std::string& w = e.wrapped_key;
  if (w.size() != 12 + 32 + kTagBytes) {
    *err = fmt::format("the AES/GCM-wrapped data key holds {} bytes ({} expected)", w.size(),
                       12 + 32 + kTagBytes);
    return std::nullopt;
  }
  // v2 binds the wrap to the content algorithm through the AAD; v3 to the suite.
  std::string_view aad = e.version == Version::kV3 ? kSuite115 : kGcmName;
  auto key = gcm_open(kek.bytes(), std::string_view(w).substr(0, 12),
                      std::string_view(w).substr(12, 32), std::string_view(w).substr(44), aad);
  if (!key) {
    *err =
        "the data key does not unwrap with the key-encryption key (wrong kek_file, or the "
        "envelope was altered)";
    return std::nullopt;
  }
  return aws::KeyBytes(std::move(*key));
}

std::optional<ContentKey> content_key(const Envelope& e, const aws::KeyBytes& data_key,
                                      std::string* err) {
  if (data_key.size() != 32) {
    *err = fmt::format("the data key holds {} bytes (32 expected)", data_key.size());
    return std::nullopt;
  }
  ContentKey k;
  if (e.content != Content::kGcmCommit) {
    k.key = data_key.copy();
    k.iv = e.iv;
    return k;
  }
  static const std::string kSuiteId("\x00\x73", 2);
  std::string derived = hkdf_sha512(data_key.bytes(), e.message_id, kSuiteId + "DERIVEKEY", 32);
  std::string commit = hkdf_sha512(data_key.bytes(), e.message_id, kSuiteId + "COMMITKEY", 28);
  bool same = commit.size() == e.commitment.size() &&
              CRYPTO_memcmp(commit.data(), e.commitment.data(), commit.size()) == 0;
  OPENSSL_cleanse(commit.data(), commit.size());
  if (!same) {
    OPENSSL_cleanse(derived.data(), derived.size());
    *err =
        "key commitment mismatch: x-amz-d does not match the data key (tampered, or the wrong "
        "key)";
    return std::nullopt;
  }
  k.key = aws::KeyBytes(std::move(derived));
  k.iv = std::string(12, '\x01');
  k.aad = kSuiteId;
  return k;
}

ContentDecryptor::ContentDecryptor(Content c, const ContentKey& k) : content_(c) {
  ctx_ = EVP_CIPHER_CTX_new();
  if (!ctx_) throw std::runtime_error("cannot allocate a cipher context");
  const auto* key = reinterpret_cast<const unsigned char*>(k.key.bytes().data());
  const auto* iv = reinterpret_cast<const unsigned char*>(k.iv.data());
  bool ok;
  if (c == Content::kCbc) {
    ok = k.iv.size() == 16 && EVP_DecryptInit_ex(ctx_, EVP_aes_256_cbc(), nullptr, key, iv) == 1;
  } else {
    int n = 0;
    ok = EVP_DecryptInit_ex(ctx_, EVP_aes_256_gcm(), nullptr, nullptr, nullptr) == 1 &&
         EVP_CIPHER_CTX_ctrl(ctx_, EVP_CTRL_GCM_SET_IVLEN, static_cast<int>(k.iv.size()),
                             nullptr) == 1 &&
         EVP_DecryptInit_ex(ctx_, nullptr, nullptr, key, iv) == 1 &&
         (k.aad.empty() ||
          EVP_DecryptUpdate(ctx_, nullptr, &n, reinterpret_cast<const unsigned char*>(k.aad.data()),
                            static_cast<int>(k.aad.size())) == 1);
  }
  if (!ok || k.key.size() != 32) {
    EVP_CIPHER_CTX_free(ctx_);
    throw std::runtime_error("cannot set up the content decryption");
  }
}

ContentDecryptor::~ContentDecryptor() {
  EVP_CIPHER_CTX_free(ctx_);  // also cleanses the key schedule
}

void ContentDecryptor::update(std::string_view in, std::string& out) {
  auto run = [&](std::string_view data) {
    if (data.empty()) return;
    size_t at = out.size();
    out.resize(at + data.size() + 16);
    int n = 0;
    if (EVP_DecryptUpdate(ctx_, reinterpret_cast<unsigned char*>(out.data()) + at, &n,
                          reinterpret_cast<const unsigned char*>(data.data()),
                          static_cast<int>(data.size())) != 1)
      throw std::runtime_error("decryption failed");
    out.resize(at + static_cast<size_t>(n));
  };
  if (content_ == Content::kCbc) {
    run(in);
    return;
  }
  // GCM: the last 16 bytes of the input are the tag; hold them back until finish().
  if (held_.size() + in.size() <= kTagBytes) {
    held_.append(in);
    return;
  }
  size_t total = held_.size() + in.size();
  size_t process = total - kTagBytes;
  if (process <= held_.size()) {
    run(std::string_view(held_).substr(0, process));
    held_.erase(0, process);
    held_.append(in);
    return;
  }
  run(held_);
  size_t from_in = process - held_.size();
  run(in.substr(0, from_in));
  held_.assign(in.substr(from_in));
}

bool ContentDecryptor::finish(std::string& out) {
  size_t at = out.size();
  out.resize(at + 32);
  int n = 0;
  if (content_ != Content::kCbc) {
    if (held_.size() != kTagBytes) {
      out.resize(at);
      return false;
    }
    if (EVP_CIPHER_CTX_ctrl(ctx_, EVP_CTRL_GCM_SET_TAG, static_cast<int>(kTagBytes),
                            held_.data()) != 1) {
      out.resize(at);
      return false;
    }
  }
  bool ok = EVP_DecryptFinal_ex(ctx_, reinterpret_cast<unsigned char*>(out.data()) + at, &n) == 1;
  out.resize(ok ? at + static_cast<size_t>(n) : at);
  return ok;
}

}  // namespace logship::s3ec
