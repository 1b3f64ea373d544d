#pragma once
#include <string>

namespace logship {
/// `logship version`: version, git commit and the versions of the linked libraries.
std::string version_text();
}  // namespace logship
