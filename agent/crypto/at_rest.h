#pragma once
// At-rest encryption for everything logship writes that holds event data (disk buffer segments,
// dead letters): the key ring of the top-level `encryption` key, and the block format.
//
// Keys. A configured key is a 256-bit master key (a key file, or a data key KMS made). It is
// never used directly: HKDF-SHA256 derives one subkey per purpose (blocks, index MAC). Its id is
// the first 8 bytes of HMAC-SHA256(master, "logship key id v1"), shown as 16 hex digits: it
// names a key in blocks and messages without revealing anything about it.
//
// Block (every field little-endian, the 64-byte header is the AES-GCM associated data):
//   0 magic "LSBK" | 4 version (1) | 5 flags (bit 0: zstd) | 6 kind | 7 reserved (0)
//   8 key id (8)   | 16 nonce (12) | 28 reserved u32 (0)
//  32 sequence u64 | 40 write time ns i64 | 48 plain length u32 | 52 sealed length u32
//  56 events u32   | 60 XXH32 of bytes 0..59 (a damaged header is told from a torn one cheaply)
// then `sealed length` bytes of ciphertext and the 16-byte GCM tag.
#include <openssl/evp.h>
#include <zstd.h>

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace logship::crypto {

/// Key material: 32 bytes, zeroed when destroyed, never printed.
class MasterKey {
 public:
  explicit MasterKey(std::string bytes);
  ~MasterKey();
  MasterKey(const MasterKey&) = delete;
  MasterKey& operator=(const MasterKey&) = delete;
  const std::array<uint8_t, 8>& id() const { return id_; }
  const std::string& id_hex() const { return id_hex_; }
  /// HKDF-SHA256 subkey for `purpose` (32 bytes).
  const std::string& block_key() const { return block_key_; }
  const std::string& index_key() const { return index_key_; }
  /// Where the key came from ("key_file /run/secrets/k", "kms arn:…"), for messages.
  std::string origin;

 private:
  std::string key_, block_key_, index_key_;
  std::array<uint8_t, 8> id_{};
  std::string id_hex_;
};

/// The current key (new data) and the previous ones (read only).
class KeyRing {
 public:
  void set_current(std::shared_ptr<MasterKey> k) { current_ = std::move(k); }
  void add_previous(std::shared_ptr<MasterKey> k) { previous_.push_back(std::move(k)); }
  const MasterKey* current() const { return current_.get(); }
  /// The key whose id is `id`, or null.
  const MasterKey* find(const uint8_t* id) const;
  std::vector<const MasterKey*> all() const;
  bool empty() const { return !current_; }

 private:
  std::shared_ptr<MasterKey> current_;
  std::vector<std::shared_ptr<MasterKey>> previous_;
};

/// A 256-bit key's file content, in place: 64 hex characters become their 32 bytes (the text is
/// wiped); anything else is left as it is. True when `key` now holds 32 bytes.
bool decode_key_256(std::string& key);
/// Reads a key file (32 raw bytes or 64 hex characters; not group/world readable). Throws
/// std::runtime_error naming the file, never its content.
std::string read_key_file(const std::string& path);
/// Id (16 hex digits) of a master key.
std::string key_id_hex(std::string_view master);

constexpr size_t kBlockHeaderBytes = 64;
constexpr size_t kBlockTagBytes = 16;
constexpr uint32_t kMaxBlockPlainBytes = 256u << 20;  ///< bound on what a header may claim
enum class BlockKind : uint8_t { kBatch = 1, kDeadLetter = 2 };

struct BlockHeader {
  uint8_t flags = 0;
  BlockKind kind = BlockKind::kBatch;
  std::array<uint8_t, 8> key_id{};
  std::array<uint8_t, 12> nonce{};
  uint64_t sequence = 0;
  int64_t time_ns = 0;
  uint32_t plain_len = 0;
  uint32_t sealed_len = 0;
  uint32_t events = 0;
  static constexpr uint8_t kZstd = 1;

  size_t block_bytes() const { return kBlockHeaderBytes + sealed_len + kBlockTagBytes; }
  void encode(uint8_t* out) const;
  /// Parses and checks magic, version, checksum and lengths. False when it is not a header.
  static bool decode(const uint8_t* in, BlockHeader& h);
  std::string key_id_hex() const;
};

/// Builds blocks; reuses its compression and cipher contexts. Not thread-safe (one per writer).
class BlockSealer {
 public:
  /// `nonce_prefix`: 4 bytes; the nonce is prefix + the block's 64-bit sequence. Empty: a random
  /// 12-byte nonce per block (low-volume writers that keep no sequence, such as dead letters).
  BlockSealer(const MasterKey& key, bool zstd, std::string nonce_prefix = {});
  ~BlockSealer();
  BlockSealer(const BlockSealer&) = delete;
  BlockSealer& operator=(const BlockSealer&) = delete;
  /// Appends a whole block for `plain` + `plain2` (one payload given in two pieces, so a caller
  /// need not copy them together) to `out`. Returns false (with `err`) on a library error.
  bool seal(BlockKind kind, uint64_t sequence, int64_t time_ns, uint32_t events,
            std::string_view plain, std::string& out, std::string* err,
            std::string_view plain2 = {});
  const MasterKey& key() const { return key_; }

 private:
  const MasterKey& key_;
  bool zstd_;
  std::string prefix_;
  ZSTD_CCtx* zc_ = nullptr;
  EVP_CIPHER_CTX* ctx_ = nullptr;
  std::string comp_;
};

/// Opens blocks of any key of a ring. Not thread-safe (one per reader).
class BlockOpener {
 public:
  explicit BlockOpener(std::shared_ptr<const KeyRing> ring);
  ~BlockOpener();
  BlockOpener(const BlockOpener&) = delete;
  BlockOpener& operator=(const BlockOpener&) = delete;
  /// `header` = the 64 header bytes, `sealed` = ciphertext + tag. On success `plain` holds the
  /// payload. Returns "" or why the block cannot be read ("authentication failed", "no key …").
  std::string open(const BlockHeader& h, const uint8_t* header, std::string_view sealed,
                   std::string& plain);

 private:
  std::shared_ptr<const KeyRing> ring_;
  ZSTD_DCtx* zd_ = nullptr;
  EVP_CIPHER_CTX* ctx_ = nullptr;
  std::string comp_;
};

/// HMAC-SHA256 of `data` under the ring key's index subkey.
std::string index_mac(const MasterKey& key, std::string_view data);
/// Random bytes (OpenSSL RAND_bytes); throws when the generator fails.
std::string random_bytes(size_t n);

}  // namespace logship::crypto
