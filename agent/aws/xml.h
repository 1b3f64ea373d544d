#pragma once
// Minimal XML reading for the small, flat documents AWS returns (STS results, S3 errors): finds
// elements by tag name and decodes entities. Not a validating parser: no namespaces prefixes,
// no CDATA, no comments inside the searched elements.
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace logship::aws {

/// Decodes the five predefined entities and numeric character references (&#NN; &#xNN;).
std::string xml_unescape(std::string_view s);

/// Raw (still escaped) inner text of the first element named `tag` at or after `from`, or nullopt.
/// `<Tag/>` yields "". Attributes on the start tag are allowed.
std::optional<std::string_view> xml_element(std::string_view doc, std::string_view tag,
                                            size_t from = 0);

/// Unescaped text of the first element named `tag` (searching inside `doc`), or nullopt.
std::optional<std::string> xml_text(std::string_view doc, std::string_view tag);

/// Raw inner text of every element named `tag`, in document order.
std::vector<std::string_view> xml_elements(std::string_view doc, std::string_view tag);

}  // namespace logship::aws
