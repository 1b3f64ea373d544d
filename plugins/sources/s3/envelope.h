#pragma once
// The Amazon S3 Encryption Client's object format, read side: the envelope (stored as object
// metadata, or in the instruction file `<key>.instruction`), the unwrapping of a data key wrapped
// with a local key-encryption key, the v3 key derivation and key commitment, and the streaming
// content decryptors (AES-256-GCM, AES-256-CBC with PKCS#5 padding).
//
// Formats:
//  - v1: `x-amz-key` + `x-amz-iv` (+ `x-amz-matdesc`); content AES/CBC/PKCS5Padding; legacy.
//  - v2: `x-amz-key-v2`, `x-amz-iv`, `x-amz-matdesc`, `x-amz-wrap-alg`, `x-amz-cek-alg`
//    (`x-amz-tag-len: 128` for GCM); wraps `kms+context`, `AES/GCM`, legacy `kms`.
//  - v3 (key commitment, suite 115 = AES-256-GCM-HKDF-SHA512-COMMIT-KEY): `x-amz-3` (wrapped
//    key), `x-amz-w` (wrap code), `x-amz-i` (message id), `x-amz-d` (commitment), `x-amz-c`
//    (suite), `x-amz-m` (material description), `x-amz-t` (KMS context).
// Names of two versions mixed, or v3's `c`/`d`/`i` found in an instruction file, are refused.
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include <openssl/evp.h>

#include "agent/aws/kms.h"

namespace logship::s3ec {

/// Metadata names as stored, without the `x-amz-meta-` prefix, lower-cased.
using Meta = std::map<std::string, std::string>;

enum class Version { kV1, kV2, kV3 };
enum class Wrap {
  kKmsContext,  ///< the data key is a KMS CiphertextBlob, decrypted with the stored context
  kKmsLegacy,   ///< `kms`: a KMS blob with the context {"kms_cmk_id": key} (no binding)
  kAesGcm,      ///< wrapped with the local key-encryption key (AES-256-GCM)
};
enum class Content {
  kCbc,        ///< AES/CBC/PKCS5Padding (v1 and old v2), unauthenticated
  kGcm,        ///< AES/GCM/NoPadding, 16-byte tag appended
  kGcmCommit,  ///< suite 115: HKDF-derived key, committed, 16-byte tag appended
};

struct Envelope {
  Version version = Version::kV2;
  Wrap wrap = Wrap::kKmsContext;
  Content content = Content::kGcm;
  std::string wrapped_key;  ///< binary
  std::string iv;           ///< v1/v2: 16 (CBC) or 12 (GCM) bytes
  std::string message_id;   ///< v3: 28 bytes
  std::string commitment;   ///< v3: 28 bytes
  /// The KMS encryption context (kms+context: v2 matdesc, v3 x-amz-t; legacy kms: matdesc).
  aws::EncryptionContext context;
  std::string kms_key_id;  ///< `kms_cmk_id` of the context or matdesc, when present
  bool in_instruction_file = false;
  std::string describe() const;  ///< "v2 kms+context AES/GCM", for logs and metrics
};

/// True when the object's metadata carries any client-side encryption name (of any version), or
/// one that only the S3 Encryption Client writes (`x-amz-unencrypted-content-length`, left on an
/// object whose whole envelope went to its instruction file).
bool has_envelope(const Meta& object_meta);

/// The envelope, from the object's metadata or (when the metadata holds none of the key names)
/// from its instruction file. On error (nullopt), `*err` says what is wrong.
std::optional<Envelope> parse_envelope(const Meta& object_meta, const Meta* instruction,
                                       std::string* err);

/// Parses an instruction file's body (a JSON object of strings).
std::optional<Meta> parse_instruction(std::string_view body, std::string* err);

/// The KMS context a kms+context object must have been wrapped with: its stored context must hold
/// `aws:x-amz-cek-alg` equal to the content algorithm, and every `expected` entry. Empty = fine.
std::string check_context(const Envelope& e, const aws::EncryptionContext& expected);

/// Unwraps an AES/GCM-wrapped data key with the key-encryption key.
std::optional<aws::KeyBytes> unwrap_aes_gcm(const Envelope& e, const aws::KeyBytes& kek,
                                            std::string* err);

/// The key, IV and AAD of the content. For v3, derives the key (HKDF-SHA512) and checks the
/// commitment in constant time first: a mismatch is an error (nothing is decrypted).
struct ContentKey {
  aws::KeyBytes key;
  std::string iv;
  std::string aad;
};
std::optional<ContentKey> content_key(const Envelope& e, const aws::KeyBytes& data_key,
                                      std::string* err);

/// Streaming decryption of the content. GCM keeps the last 16 bytes back (the tag) until
/// finish(); finish() is false when the tag (or the CBC padding) does not verify, and then
/// nothing it returned may be used.
class ContentDecryptor {
 public:
  ContentDecryptor(Content c, const ContentKey& k);
  ~ContentDecryptor();
  ContentDecryptor(const ContentDecryptor&) = delete;
  ContentDecryptor& operator=(const ContentDecryptor&) = delete;
  /// Appends the plaintext of `in` to `out`.
  void update(std::string_view in, std::string& out);
  /// Appends the last plaintext; false when authentication (or padding) fails.
  bool finish(std::string& out);

 private:
  Content content_;
  EVP_CIPHER_CTX* ctx_ = nullptr;
  std::string held_;  // GCM: the last up-to-16 bytes seen (the tag once the input ends)
};

}  // namespace logship::s3ec
