#include <doctest/doctest.h>

#include <cstdint>
#include <random>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "plugins/transforms/redact/detectors.h"

using namespace logship::redact;

namespace doctest {
template <>
struct StringMaker<std::vector<std::string>> {
  static String convert(const std::vector<std::string>& v) {
    std::string r = "{";
    for (const std::string& s : v) r += (r.size() > 1 ? ", \"" : "\"") + s + "\"";
    return (r + "}").c_str();
  }
};
template <>
struct StringMaker<std::vector<std::pair<size_t, size_t>>> {
  static String convert(const std::vector<std::pair<size_t, size_t>>& v) {
    std::string r = "{";
    for (const auto& [b, e] : v) {
      r += (r.size() > 1 ? ", {" : "{") + std::to_string(b) + ", " + std::to_string(e) + "}";
    }
    return (r + "}").c_str();
  }
};
}  // namespace doctest

namespace {

// The matched substrings, in order.
std::vector<std::string> found(Detector d, std::string_view text) {
  std::vector<Match> ms;
  find_matches(d, text, ms);
  std::vector<std::string> r;
  for (const Match& m : ms) r.emplace_back(text.substr(m.begin, m.end - m.begin));
  return r;
}

using S = std::vector<std::string>;
using P = std::vector<std::pair<size_t, size_t>>;

// The matched [begin, end) offsets, in order.
P spans(Detector d, std::string_view text) {
  std::vector<Match> ms;
  find_matches(d, text, ms);
  P r;
  for (const Match& m : ms) r.emplace_back(m.begin, m.end);
  return r;
}

const Detector kAll[] = {Detector::kEmail,
                         Detector::kIpv4,
                         Detector::kIpv6,
                         Detector::kCreditCard,
                         Detector::kIban,
                         Detector::kPhone,
                         Detector::kAwsAccessKeyId,
                         Detector::kAwsSecretAccessKey,
                         Detector::kJwt,
                         Detector::kBearerToken,
                         Detector::kUsSsn};

}  // namespace

TEST_CASE("detectors: names round-trip") {
  CHECK(std::size(kAll) == kDetectorCount);
  for (Detector d : kAll) CHECK(detector_from_name(detector_name(d)) == d);
  CHECK(std::string(detector_name(Detector::kAwsSecretAccessKey)) == "aws_secret_access_key");
  CHECK(std::string(detector_name(Detector::kUsSsn)) == "us_ssn");
  CHECK(detector_from_name("credit_card") == Detector::kCreditCard);
  CHECK_FALSE(detector_from_name("Email"));
  CHECK_FALSE(detector_from_name(""));
  CHECK_FALSE(detector_from_name("creditcard"));
}

TEST_CASE("detectors: empty text, appends to out, exact offsets") {
  for (Detector d : kAll) CHECK(found(d, "").empty());
  std::vector<Match> ms{{1, 2}};
  std::string_view t = "mail bob@example.com now";
  find_matches(Detector::kEmail, t, ms);
  REQUIRE(ms.size() == 2);
  CHECK(ms[0].begin == 1);
  CHECK(ms[1].begin == 5);
  CHECK(ms[1].end == 20);
  CHECK(t.substr(ms[1].begin, ms[1].end - ms[1].begin) == "bob@example.com");
}

TEST_CASE("email") {
  const Detector d = Detector::kEmail;
  CHECK(found(d, "bob@example.com") == S{"bob@example.com"});
  CHECK(found(d, "a.b+tag_x-y@mail.sub.example.co.uk.") == S{"a.b+tag_x-y@mail.sub.example.co.uk"});
  CHECK(found(d, "https://x.com/u?email=bob@example.com&x=1") == S{"bob@example.com"});
  CHECK(found(d, "https://x.com/u/bob@example.com") == S{"bob@example.com"});
  CHECK(found(d, "mailto:bob@example.com") == S{"bob@example.com"});
  CHECK(found(d, "?email=bob%40example.com&x=1") == S{"bob%40example.com"});
  CHECK(found(d, "q=email%3Dbob%40example.com") == S{"bob%40example.com"});
  CHECK(found(d, R"({\"email\":\"bob@example.com\"})") == S{"bob@example.com"});
  CHECK(found(d, R"({"email":"bob@example.com"})") == S{"bob@example.com"});
  CHECK(found(d, R"("msg":"line\nbob@x.com")") == S{"bob@x.com"});
  CHECK(found(d, R"("msg":"\tbob@x.com\n")") == S{"bob@x.com"});
  CHECK(found(d, R"("Bob \u003cbob@example.com\u003e")") == S{"bob@example.com"});
  CHECK(found(d, R"(a\\bob@x.com)") == S{"bob@x.com"});  // backslash is no atext
  CHECK(found(d, "<bob@example.com>, 'al@example.org'") == S{"bob@example.com", "al@example.org"});
  CHECK(found(d, "a@b.com,c@d.org;e@f.net") == S{"a@b.com", "c@d.org", "e@f.net"});
  CHECK(found(d, "x ..bob@example.com") == S{"bob@example.com"});
  CHECK(found(d, "bob@example.com_suffix") == S{"bob@example.com"});
  CHECK(found(d, "bob@EXAMPLE.COM") == S{"bob@EXAMPLE.COM"});
  // negatives
  CHECK(found(d, "bob@localhost").empty());
  CHECK(found(d, "bob.@example.com").empty());
  CHECK(found(d, "bob@example.c").empty());
  CHECK(found(d, "bob@example.c0m").empty());
  CHECK(found(d, "bob@-example.com").empty());
  CHECK(found(d, "bob@example-.com").empty());
  CHECK(found(d, "bob@example..com").empty());
  CHECK(found(d, "bob@10.0.0.1").empty());
  CHECK(found(d, "@example.com").empty());
  CHECK(found(d, "user@").empty());
  CHECK(found(d, "@@@").empty());
  CHECK(found(d, std::string(65, 'a') + "@example.com").empty());
  CHECK(found(d, std::string(64, 'a') + "@example.com").size() == 1);
  CHECK(found(d, "bob@" + std::string(64, 'a') + ".com").empty());
  CHECK(found(d, "bob@" + std::string(63, 'a') + ".com").size() == 1);
  CHECK(found(d, "b\xC3\xA9@example.com").empty());  // non-ASCII is a separator: local empty
  CHECK(found(d,
              "\xC3\xA9"
              "bob@example.com") == S{"bob@example.com"});
}

TEST_CASE("ipv4") {
  const Detector d = Detector::kIpv4;
  CHECK(found(d, "1.2.3.4") == S{"1.2.3.4"});
  CHECK(found(d, "from 192.168.0.1:8080 to 10.0.0.0/8") == S{"192.168.0.1", "10.0.0.0"});
  CHECK(found(d, R"({"ip":"255.255.255.255","x":"0.0.0.0"})") == S{"255.255.255.255", "0.0.0.0"});
  CHECK(found(d, "end 8.8.8.8.") == S{"8.8.8.8"});
  CHECK(found(d, "[10.1.2.3]") == S{"10.1.2.3"});
  CHECK(found(d, R"("a\n10.1.2.3")") == S{"10.1.2.3"});
  CHECK(found(d, "::ffff:192.0.2.1") == S{"192.0.2.1"});
  // negatives
  CHECK(found(d, "256.1.1.1").empty());
  CHECK(found(d, "1.2.3.256").empty());
  CHECK(found(d, "1.2.3.4.5").empty());
  CHECK(found(d, "01.2.3.4").empty());
  CHECK(found(d, "1.2.3.04").empty());
  CHECK(found(d, "1.2.3").empty());
  CHECK(found(d, "11.2.3.4a").empty());
  CHECK(found(d, "v1.2.3.4").empty());
  CHECK(found(d, "1.2.3.4567").empty());
  CHECK(found(d, "1..2.3.4").empty());
}

TEST_CASE("ipv6") {
  const Detector d = Detector::kIpv6;
  CHECK(found(d, "::1") == S{"::1"});
  CHECK(found(d, "addr :: any") == S{"::"});
  CHECK(found(d, "fe80::1%eth0 up") == S{"fe80::1%eth0"});
  CHECK(found(d, "fe80::1%25eth0") == S{"fe80::1%25eth0"});
  CHECK(found(d, "::ffff:192.0.2.1") == S{"::ffff:192.0.2.1"});
  CHECK(found(d, "64:ff9b::192.0.2.33") == S{"64:ff9b::192.0.2.33"});
  CHECK(found(d, "::192.0.2.1") == S{"::192.0.2.1"});
  CHECK(found(d, "2001:db8::1") == S{"2001:db8::1"});
  CHECK(found(d, "fe80:: 1::") == S{"fe80::", "1::"});
  CHECK(found(d, "2001:0DB8:85a3:0000:0000:8A2E:0370:7334") ==
        S{"2001:0DB8:85a3:0000:0000:8A2E:0370:7334"});
  CHECK(found(d, "1:2:3:4:5:6:7::") == S{"1:2:3:4:5:6:7::"});
  CHECK(found(d, "1:2:3:4:5:6:1.2.3.4") == S{"1:2:3:4:5:6:1.2.3.4"});
  CHECK(found(d, "http://[2001:db8::1]:8080/") == S{"2001:db8::1"});
  CHECK(found(d, R"({"src":"::1","dst":"fe80::a:b"})") == S{"::1", "fe80::a:b"});
  CHECK(found(d, "connect to ::1.") == S{"::1"});
  // negatives
  CHECK(found(d, "12:30:45").empty());
  CHECK(found(d, "2024-01-01T12:30:45Z").empty());
  CHECK(found(d, "00:1a:2b:3c:4d:5e").empty());
  CHECK(found(d, "1:2:3:4:5:6:7:8:9").empty());
  CHECK(found(d, "1::2::3").empty());
  CHECK(found(d, ":::").empty());
  CHECK(found(d, "1:2:3:4:5:6:7:8::").empty());
  CHECK(found(d, "1:2:3:4::5:6:7:8").empty());
  CHECK(found(d, "12345::1").empty());
  CHECK(found(d, "fe80::12345").empty());
  CHECK(found(d, "fe80::1g").empty());
  CHECK(found(d, "std::vector").empty());
  CHECK(found(d, "x::1").empty());
  CHECK(found(d, R"({"a":"b","c":1})").empty());
  CHECK(found(d, "::1:").empty());
}

TEST_CASE("credit_card") {
  const Detector d = Detector::kCreditCard;
  CHECK(found(d, "4111111111111111") == S{"4111111111111111"});
  CHECK(found(d, "4111111111111112").empty());
  CHECK(found(d, "card 4111 1111 1111 1111 exp") == S{"4111 1111 1111 1111"});
  CHECK(found(d, "card=4111-1111-1111-1111;") == S{"4111-1111-1111-1111"});
  CHECK(found(d, "amex 3782 822463 10005") == S{"3782 822463 10005"});
  CHECK(found(d, "378282246310005") == S{"378282246310005"});
  CHECK(found(d, R"({"a":"4111111111111111","b":"5555555555554444"})") ==
        S{"4111111111111111", "5555555555554444"});
  // negatives
  CHECK(found(d, "41111111111111110000").empty());  // inside a 20-digit run
  CHECK(found(d, "94111111111111111").empty());     // 17 digits, Luhn-invalid
  CHECK(found(d, "4111-1111 1111-1111").empty());   // mixed separators
  CHECK(found(d, "4111  1111 1111 1111").empty());  // double space: pieces too short
  CHECK(found(d, "4 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1").empty());
  CHECK(found(d, "411111111111").empty());  // 12 digits
}

TEST_CASE("credit_card: a card joined by a separator to other digits") {
  const Detector d = Detector::kCreditCard;
  // Exact offsets: the card's groups only, never its separator-joined neighbours.
  CHECK(spans(d, "2024-01-01 4111111111111111") == P{{11, 27}});
  CHECK(spans(d, "12:00:00 4111 1111 1111 1111") == P{{9, 28}});
  CHECK(spans(d, "amount 100 4111-1111-1111-1111") == P{{11, 30}});
  CHECK(spans(d, "id 7 378282246310005") == P{{5, 20}});
  CHECK(spans(d, "4111111111111111 2") == P{{0, 16}});
  CHECK(spans(d, "4111111111111111 5500005555555559") == P{{0, 16}, {17, 33}});
  CHECK(spans(d, "12 4111 1111 1111 1111") == P{{3, 22}});
  CHECK(spans(d, "4111 1111 1111 1111 5") == P{{0, 19}});
  CHECK(spans(d, "4111111111111111-7") == P{{0, 16}});
  CHECK(spans(d, "2024-01-01 4111-1111-1111-1111") == P{{11, 30}});  // mixed run, one kind in card
  CHECK(spans(d, "4111 1111 1111 1111-2024") == P{{0, 19}});
  CHECK(spans(d, "1 3782 822463 10005 2") == P{{2, 19}});
  CHECK(spans(d, R"({"ts":"2024-01-01 4111111111111111"})") == P{{18, 34}});
  CHECK(spans(d, "4111 1111 1111 1111 4111 1111 1111 1111") == P{{0, 19}, {20, 39}});
  // negatives
  CHECK(found(d, "4111 1111 1111 1111").size() == 1);
  CHECK(found(d, "4111 1111 1111 1112").empty());
  CHECK(found(d, "4111 1111 1111 1112 1111").empty());  // no Luhn-valid whole-group slice
  CHECK(found(d, "100 4111 1111 1111 1112").empty());
  CHECK(found(d, "7 4111111111111112").empty());
  CHECK(found(d, "4111111111111112 2024").empty());
  CHECK(found(d, "2024-01-01 4111111111111112").empty());
  CHECK(found(d, "4111111111111111411111111111111141111111").empty());  // 40 digits, one group
  CHECK(found(d, "x 4111111111111111411111111111111141111111 7").empty());
  CHECK(found(d, "74111111111111111").empty());  // glued directly, 17 digits Luhn-invalid
  CHECK(found(d, "4111111111111111 1").size() == 1);
  CHECK(found(d, "4111 1111 1111 11114").empty());  // a card may not cut a group
  CHECK(found(d, "74111 1111 1111 1111").empty());  // nor a first group
}

TEST_CASE("credit_card: digits of alphanumeric tokens (UUIDs, hex ids) are not cards") {
  const Detector d = Detector::kCreditCard;
  // 3617-8768-9821-8451 is Luhn-valid, but its chain is glued to letters.
  CHECK(found(d, "663b9755-3617-8768-9821-8451b27c4a10").empty());
  CHECK(found(d, R"({"request_id":"663b9755-3617-8768-9821-8451b27c4a10"})").empty());
  CHECK(found(d, "ab4111111111111111").empty());
  CHECK(found(d, "4111111111111111z").empty());
  CHECK(found(d, "x4111-1111-1111-1111").empty());
  CHECK(found(d, "4111-1111-1111-1111x").empty());
  CHECK(found(d, "4111 1111 1111 1111x").empty());  // the cut leaves 12 digits
  // joined by '-' to a hex word of 4+ characters
  CHECK(found(d, "deadbeef-4111-1111-1111-1111").empty());
  CHECK(found(d, "4111-1111-1111-1111-beef").empty());
  CHECK(found(d, "id=0a1b-4111111111111111").empty());
  // positives
  CHECK(found(d, "card 4111 1111 1111 1111") == S{"4111 1111 1111 1111"});
  CHECK(spans(d, "2024-01-01 4111111111111111") == P{{11, 27}});
  CHECK(spans(d, "amount 100 4111-1111-1111-1111") == P{{11, 30}});
  CHECK(found(d, R"({"a":"4111111111111111"})") == S{"4111111111111111"});
  CHECK(found(d, "x:4111111111111111") == S{"4111111111111111"});
  CHECK(found(d, "=4111111111111111&") == S{"4111111111111111"});
  CHECK(found(d, "card-4111-1111-1111-1111") == S{"4111-1111-1111-1111"});  // not a hex word
  CHECK(found(d, "cc-4111-1111-1111-1111") == S{"4111-1111-1111-1111"});    // shorter than 4
  CHECK(found(d, "xdeadbeef-4111111111111111") == S{"4111111111111111"});   // word not all hex
  CHECK(found(d, "beef 4111111111111111") == S{"4111111111111111"});        // joined by a space
  // only the glued chain is cut; the groups joined to it by a space remain
  CHECK(spans(d, "v2 4111 1111 1111 1111") == P{{3, 22}});
  CHECK(spans(d, "a1-2 4111-1111-1111-1111 5b") == P{{5, 24}});
  CHECK(spans(d, "deadbeef-1234 4111111111111111 1-beef") == P{{14, 30}});
  CHECK(found(d, "v2 4111 1111 1111 1112").empty());
}

TEST_CASE("credit_card: long runs are scanned in linear time") {
  const Detector d = Detector::kCreditCard;
  std::string ones;
  while (ones.size() < (1u << 20)) ones += "1 ";
  CHECK(found(d, ones).empty());
  std::string fours;
  while (fours.size() < (1u << 20)) fours += "4111 ";
  CHECK(found(d, fours).empty());  // 4111 4111 4111 4111 is Luhn-invalid
  std::string cards;
  size_t n = 0;
  for (; cards.size() < (1u << 20); ++n) cards += "4111 1111 1111 1111 ";
  std::vector<Match> ms;
  find_matches(d, cards, ms);
  REQUIRE(ms.size() == n);
  CHECK(ms.back().begin == 20 * (n - 1));
  CHECK(ms.back().end == 20 * (n - 1) + 19);
  const std::string digits(1u << 20, '4');
  CHECK(found(d, digits).empty());
  CHECK(found(d, "1 " + digits + " 4111111111111111").size() == 1);
}

TEST_CASE("iban") {
  const Detector d = Detector::kIban;
  for (const char* iban :
       {"DE89370400440532013000", "GB82WEST12345698765432", "FR1420041010050500013M02606",
        "NL91ABNA0417164300", "BE68539007547034"}) {
    CHECK(found(d, iban) == S{iban});
    CHECK(found(d, std::string("iban: ") + iban + ".") == S{iban});
  }
  CHECK(found(d, "IBAN DE89 3704 0044 0532 0130 00 paid") == S{"DE89 3704 0044 0532 0130 00"});
  CHECK(found(d, "GB82 WEST 1234 5698 7654 32") == S{"GB82 WEST 1234 5698 7654 32"});
  CHECK(found(d, "FR14 2004 1010 0505 0001 3M02 606") == S{"FR14 2004 1010 0505 0001 3M02 606"});
  CHECK(found(d, "BE68 5390 0754 7034 1234") == S{"BE68 5390 0754 7034"});
  CHECK(found(d, R"({"a":"NL91ABNA0417164300","b":"\nBE68539007547034"})") ==
        S{"NL91ABNA0417164300", "BE68539007547034"});
  // negatives
  CHECK(found(d, "DE88370400440532013000").empty());  // checksum
  CHECK(found(d, "GB82WEST12345698765431").empty());
  CHECK(found(d, "DE8937040044053201300").empty());    // DE is 22
  CHECK(found(d, "DE893704004405320130001").empty());  // glued
  CHECK(found(d, "de89370400440532013000").empty());
  CHECK(found(d, "gb82west12345698765432").empty());
  CHECK(found(d, "xDE89370400440532013000").empty());
  CHECK(found(d, "DE89370400440532013000x").empty());
  CHECK(found(d, "DE89 37040044 0532 0130 00").empty());
}

TEST_CASE("phone") {
  const Detector d = Detector::kPhone;
  CHECK(found(d, "call +1 (415) 555-2671 now") == S{"+1 (415) 555-2671"});
  CHECK(found(d, "+44 20 7946 0958") == S{"+44 20 7946 0958"});
  CHECK(found(d, "tel:+4915112345678") == S{"+4915112345678"});
  CHECK(found(d, "+1.415.555.2671.") == S{"+1.415.555.2671"});
  CHECK(found(d, "+1(415)5552671") == S{"+1(415)5552671"});
  CHECK(found(d, R"({"a":"+33 1 23 45 67 89","b":"+12345678"})") ==
        S{"+33 1 23 45 67 89", "+12345678"});
  // negatives
  CHECK(found(d, "+1234567").empty());           // 7 digits
  CHECK(found(d, "+1234567890123456").empty());  // 16 digits
  CHECK(found(d, "+0123456789").empty());
  CHECK(found(d, "abc+14155552671").empty());
  CHECK(found(d, "2024-01-01T00:00:00+01:00").empty());
  CHECK(found(d, "+1  415 555 2671").empty());  // double space: only 1 digit before it
  CHECK(found(d, "+ 14155552671").empty());
}

TEST_CASE("aws keys") {
  CHECK(found(Detector::kAwsAccessKeyId, "key=AKIAIOSFODNN7EXAMPLE;") == S{"AKIAIOSFODNN7EXAMPLE"});
  CHECK(found(Detector::kAwsAccessKeyId, R"({"k":"ASIAY34FZKBOKMUTVV7A"})") ==
        S{"ASIAY34FZKBOKMUTVV7A"});
  CHECK(found(Detector::kAwsAccessKeyId, "AKIAIOSFODNN7EXAMPLEX").empty());
  CHECK(found(Detector::kAwsAccessKeyId, "XAKIAIOSFODNN7EXAMPLE").empty());
  CHECK(found(Detector::kAwsAccessKeyId, "AKIAIOSFODNN7EXAMPL").empty());
  CHECK(found(Detector::kAwsAccessKeyId, "AKIAIOSFODNN1EXAMPLE").empty());  // 1 is not base32
  CHECK(found(Detector::kAwsAccessKeyId, "AXXAIOSFODNN7EXAMPLE").empty());

  const Detector s = Detector::kAwsSecretAccessKey;
  CHECK(found(s, "secret=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY") ==
        S{"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"});
  CHECK(found(s, R"({"s":"\nwJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"})") ==
        S{"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"});
  CHECK(found(s, "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEYx").empty());
  CHECK(found(s, "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKE").empty());
  CHECK(found(s, "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY=").empty());
  CHECK(found(s, "+wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY").empty());
  CHECK(found(s, "da39a3ee5e6b4b0d3255bfef95601890afd80709").empty());  // sha1 hex
  CHECK(found(s, "DA39a3ee5e6b4b0d3255bfef95601890afd80709").empty());  // still all hex
  CHECK(found(s, "abcdefghijklmnopqrstuvwxyzabcdefghijklmn").empty());  // no digit/upper
}

TEST_CASE("jwt") {
  const Detector d = Detector::kJwt;
  const std::string jwt =
      "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwi"
      "aWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c";
  CHECK(found(d, jwt) == S{jwt});
  CHECK(found(d, "token=" + jwt + "&x=1") == S{jwt});
  CHECK(found(d, "see " + jwt + ". ok") == S{jwt});
  CHECK(found(d, "eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0. none") ==
        S{"eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0."});
  CHECK(found(d, R"({"t":")" + jwt + R"(","u":")" + jwt + "\"}") == S{jwt, jwt});
  CHECK(found(d, "x" + jwt).empty());
  CHECK(found(d, "." + jwt).empty());
  CHECK(found(d, jwt + ".abc").empty());
  CHECK(found(d, "eyJhbGciOiJIUzI1NiJ9.abc.def").empty());          // payload is not JSON
  CHECK(found(d, "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0").empty());  // 2 segments
}

TEST_CASE("bearer_token") {
  const Detector d = Detector::kBearerToken;
  CHECK(found(d, "Authorization: Bearer abc.def-123456") == S{"abc.def-123456"});
  CHECK(found(d, R"({"authorization":"bearer   mF_9.B5f-4.1JqM"})") == S{"mF_9.B5f-4.1JqM"});
  CHECK(found(d, "BEARER dGhpcyBpcyBhIHRva2Vu==") == S{"dGhpcyBpcyBhIHRva2Vu=="});
  CHECK(found(d, "Bearer a1 Bearer b2c3d4e5f6") == S{"b2c3d4e5f6"});
  CHECK(found(d, "XBearer abcdefghijk").empty());
  CHECK(found(d, "Bearer short").empty());
  CHECK(found(d, "Bearer:abcdefghijk").empty());
  CHECK(found(d, "Bearers abcdefghijk").empty());
}

TEST_CASE("us_ssn") {
  const Detector d = Detector::kUsSsn;
  CHECK(found(d, "ssn 078-05-1120.") == S{"078-05-1120"});
  CHECK(found(d, "078 05 1120") == S{"078 05 1120"});
  CHECK(found(d, R"({"a":"078-05-1120","b":"123-45-6789"})") == S{"078-05-1120", "123-45-6789"});
  CHECK(found(d, "666-12-3456").empty());
  CHECK(found(d, "000-12-3456").empty());
  CHECK(found(d, "900-12-3456").empty());
  CHECK(found(d, "123-00-4567").empty());
  CHECK(found(d, "123-45-0000").empty());
  CHECK(found(d, "1078-05-1120").empty());
  CHECK(found(d, "078-05-11201").empty());
  CHECK(found(d, "9-078-05-1120").empty());
  CHECK(found(d, "078-05-1120-3").empty());
  CHECK(found(d, "078-05 1120").empty());
  CHECK(found(d, "07-805-1120").empty());
}

TEST_CASE("detectors: random bytes give in-bounds, ordered, non-overlapping matches") {
  std::mt19937 rng(12345);
  const std::string alphabet =
      "0123456789012345678901234567890123456789@@::..::..--  ++%%//==__\\\"abcdefABCDEFxyzXYZ"
      "eyJAKIAbearer \x80\xff\t";
  std::string s;
  std::vector<Match> ms;
  size_t total = 0;
  for (int iter = 0; iter < 20000; ++iter) {
    const size_t len = rng() % 96;
    s.clear();
    for (size_t i = 0; i < len; ++i) s.push_back(alphabet[rng() % alphabet.size()]);
    if (iter % 7 == 0 && len > 10) s.replace(rng() % (len - 5), 4, "4111");  // seed structures
    if (iter % 11 == 0 && len > 10) s.replace(rng() % (len - 5), 3, "::1");
    // Views that end mid-buffer catch reads past the end of the view.
    const std::string_view view(s.data(), s.size() - (s.empty() ? 0 : rng() % 2));
    for (Detector d : kAll) {
      ms.clear();
      find_matches(d, view, ms);
      size_t prev_end = 0;
      for (const Match& m : ms) {
        REQUIRE(m.begin < m.end);
        REQUIRE(m.end <= view.size());
        REQUIRE(m.begin >= prev_end);
        prev_end = m.end;
      }
      total += ms.size();
    }
  }
  CHECK(total > 0);
}
