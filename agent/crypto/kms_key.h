#pragma once
// The at-rest data key of `encryption.kms_key_id`: made once by KMS GenerateDataKey, stored
// wrapped (the ciphertext blob only) in `<data_dir>/keys/kms-<hash of the key id>.json`, unwrapped
// with KMS Decrypt at every start. Wrapped keys of earlier kms_key_id values left in that folder
// are unwrapped too and join the ring as previous keys (data written under them still drains).
#include <string>

#include "agent/core/asio.h"
#include "agent/crypto/at_rest.h"

namespace logship::crypto {

/// Fills `ring` (current key, then previous ones). Throws std::runtime_error with a message an
/// operator can act on (never key material) when the current key cannot be made or unwrapped.
awaitable<void> load_kms_keys(Executor ex, const std::string& data_dir,
                              const std::string& kms_key_id, KeyRing& ring);

}  // namespace logship::crypto
