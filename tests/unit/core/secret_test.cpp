#include <doctest/doctest.h>

#include "agent/core/secret.h"

using namespace logship;

TEST_CASE("Secret::check_value refuses line breaks, control characters and blank values") {
  CHECK(Secret::check_value("abcd-1234").empty());
  CHECK(Secret::check_value("with inner space").empty());
  CHECK(Secret::check_value("two\nlines").find("more than one line") != std::string::npos);
  CHECK(Secret::check_value("cr\r").find("more than one line") != std::string::npos);
  CHECK(Secret::check_value("bell\a").find("control character") != std::string::npos);
  CHECK(Secret::check_value("   ").find("only blanks") != std::string::npos);
  CHECK(Secret::check_value("").find("only blanks") != std::string::npos);
}

TEST_CASE("scrub removes configured secrets and credential-shaped values, caps the length") {
  auto s = SecretStore::instance().add("hec-token-0123456789", "");
  std::string t = scrub("denied: Authorization: Splunk hec-token-0123456789\r\nnext line");
  CHECK(t.find("hec-token-0123456789") == std::string::npos);
  CHECK(t.find("Authorization: [REDACTED]") != std::string::npos);
  CHECK(t.find("next line") != std::string::npos);
  // The raw value anywhere, not only after a header name.
  CHECK(scrub("token was hec-token-0123456789.").find("hec-token") == std::string::npos);
  // JSON echoes and SigV4 parts.
  std::string j = scrub(R"({"headers":{"authorization":"AWS4-HMAC-SHA256 Credential=AKID/x, Signature=ab12"}})");
  CHECK(j.find("AKID") == std::string::npos);
  CHECK(j.find("ab12") == std::string::npos);
  std::string q = scrub("GET /?X-Amz-Credential=AKIDQ%2F2026&X-Amz-Signature=feed&X-Amz-Security-Token=FQo");
  CHECK(q.find("AKIDQ") == std::string::npos);
  CHECK(q.find("feed") == std::string::npos);
  CHECK(q.find("FQo") == std::string::npos);
  // Ordinary words that merely contain a credential word are left alone.
  CHECK(scrub("tokens: 3 signatures checked") == "tokens: 3 signatures checked");
  // Control characters become blanks; long text is capped.
  CHECK(scrub("a\x01" "b") == "a b");
  std::string longer(5000, 'x');
  CHECK(scrub(longer, 100).size() <= 100 + 3);
}
