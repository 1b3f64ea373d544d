#include "plugins/sources/s3/listing.h"

#include <charconv>

#include "agent/aws/credentials.h"
#include "agent/aws/xml.h"

namespace logship::s3 {

std::optional<ListPage> parse_list_objects_v2(std::string_view xml, std::string* error) {
  auto fail = [&](std::string why) -> std::optional<ListPage> {
    if (error) *error = std::move(why);
    return std::nullopt;
  };
  if (xml.find("<ListBucketResult") == std::string_view::npos)
    return fail("not a ListBucketResult document");
  ListPage page;
  for (std::string_view c : aws::xml_elements(xml, "Contents")) {
    ObjectInfo o;
    auto key = aws::xml_text(c, "Key");
    if (!key) return fail("<Contents> without <Key>");
    o.key = std::move(*key);
    if (auto e = aws::xml_text(c, "ETag")) {
      o.etag = std::move(*e);
      if (o.etag.size() >= 2 && o.etag.front() == '"' && o.etag.back() == '"')
        o.etag = o.etag.substr(1, o.etag.size() - 2);
    }
    auto lm = aws::xml_text(c, "LastModified");
    auto t = lm ? aws::parse_iso8601(*lm) : std::nullopt;
    if (!t) return fail("missing or bad <LastModified> for key " + o.key);
    o.last_modified_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(t->time_since_epoch()).count();
    if (auto sz = aws::xml_text(c, "Size")) {
      auto r = std::from_chars(sz->data(), sz->data() + sz->size(), o.size);
      if (r.ec != std::errc()) return fail("bad <Size> for key " + o.key);
    }
    page.objects.push_back(std::move(o));
  }
  for (std::string_view c : aws::xml_elements(xml, "CommonPrefixes")) {
    auto p = aws::xml_text(c, "Prefix");
    if (!p) return fail("<CommonPrefixes> without <Prefix>");
    page.common_prefixes.push_back(std::move(*p));
  }
  if (auto t = aws::xml_text(xml, "IsTruncated")) page.truncated = *t == "true";
  if (auto t = aws::xml_text(xml, "NextContinuationToken")) page.next_token = std::move(*t);
  if (page.truncated && page.next_token.empty())
    return fail("IsTruncated without NextContinuationToken");
  return page;
}

}  // namespace logship::s3
