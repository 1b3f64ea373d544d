#pragma once
// `logship dead-letters`: prints a sink's dead-letter files to stdout, sealed blocks decrypted
// (agent/crypto/at_rest.h) and clear-text lines as they are, oldest file first.
#include <memory>
#include <string>
#include <vector>

#include "agent/crypto/at_rest.h"

namespace logship {

/// `files`: oldest first; missing ones are skipped. `follow`: after the end, keeps printing what
/// is appended to the last file (and follows its rotation) until SIGINT/SIGTERM. Returns the exit
/// code: 0, or 1 when a block could not be read (reported on stderr, the rest still printed).
int print_dead_letters(const std::vector<std::string>& files,
                       std::shared_ptr<const crypto::KeyRing> ring, bool follow);

}  // namespace logship
