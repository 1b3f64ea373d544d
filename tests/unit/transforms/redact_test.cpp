#include <doctest/doctest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>

#include <simdjson.h>

#include "agent/config/config.h"
#include "agent/pipeline/registry.h"

using namespace logship;

namespace {

std::unique_ptr<Transform> make(const std::string& body) {
  std::string yaml =
      "data_dir: /tmp/redact-unit\nsources: {app: {type: file, include: [/x]}}\n"
      "sinks: {out: {type: blackhole, inputs: [t]}}\ntransforms:\n  t:\n    inputs: [app]\n" +
      body;
  Config cfg = load_config_text(yaml, "t.yaml");
  auto& d = cfg.transforms.at(0);
  ComponentContext ctx;
  ctx.id = "t";
  ctx.type = d.type;
  ctx.kind = "transform";
  return (*builtin_registry().transform(d.type))(*d.node, ctx);
}

// The event's text after the transform; nullopt when dropped.
std::optional<std::string> run(Transform& t, std::string_view text, bool json_flag = false) {
  auto b = std::make_shared<EventBatch>();
  Event& e = b->add(text, 0);
  if (json_flag) e.flags |= Event::kJsonValue;
  std::vector<BatchPtr> out(t.outputs().size());
  t.apply(b, out);
  if (!out[0] || out[0]->empty()) return std::nullopt;
  return std::string(out[0]->text(out[0]->events()[0]));
}

bool valid_json(const std::string& s) {
  simdjson::dom::parser p;
  simdjson::dom::element el;
  return !p.parse(s).get(el);
}

const char* kAll =
    "    type: redact\n    rules:\n      - match: [email, ipv4, ipv6, credit_card, iban, phone, "
    "aws_access_key_id, aws_secret_access_key, jwt, bearer_token, us_ssn]\n";

}  // namespace

TEST_CASE("redact: plain text and the same values in JSON, with and without escapes") {
  auto t = make(kAll);
  CHECK(*run(*t, "mail bob@example.com from 10.1.2.3 card 4111-1111-1111-1111") ==
        "mail [REDACTED] from [REDACTED] card [REDACTED]");
  std::string j = *run(
      *t, R"({"u":"bob@example.com","ip":"10.1.2.3","n":4111111111111111,"bob@example.com":1})");
  CHECK(
      j ==
      R"({"u":"[REDACTED]","ip":"[REDACTED]","n":"[REDACTED]","bob@example.com":1})");  // keys stay
  // Escapes: decoded, matched, re-encoded (the slow path); still valid JSON.
  std::string esc = *run(*t, R"({"m":"line1\nbob@example.com \"quoted\" \u0061lice@example.org"})");
  CHECK(valid_json(esc));
  CHECK(esc.find("example") == std::string::npos);
  CHECK(esc.find(R"(\"quoted\")") != std::string::npos);
  // Not JSON after all: scanned as text.
  CHECK(*run(*t, "{broken bob@example.com") == "{broken [REDACTED]");
  // Nothing to redact: forwarded as is.
  CHECK(*run(*t, R"({"a":"nothing here"})") == R"({"a":"nothing here"})");
}

TEST_CASE("redact: mask_with is escaped inside JSON, keep_last keeps characters") {
  auto t = make(
      "    type: redact\n    rules:\n      - match: [credit_card]\n        mask_with: '\"x\\'\n"
      "        keep_last: 4\n");
  std::string j = *run(*t, R"({"c":"4111 1111 1111 1111"})");
  CHECK(valid_json(j));
  CHECK(j == R"({"c":"\"x\\1111"})");
  CHECK(*run(*t, "c 4111 1111 1111 1111") == "c \"x\\1111");
}

TEST_CASE("redact: fields scope, drop_field, drop_event, user patterns") {
  auto t = make(
      "    type: redact\n    rules:\n      - match: [email]\n        fields: [.user.email]\n"
      "      - match: [us_ssn]\n        fields: [.user.ssn]\n        action: drop_field\n"
      "      - match: [jwt]\n        action: drop_event\n"
      "      - match: [{regex: 'order-[0-9]+'}]\n        mask_with: 'order-*'\n");
  std::string j =
      *run(*t, R"({"user":{"email":"a@b.io","ssn":"078-05-1120"},"note":"a@b.io order-42"})");
  CHECK(j == R"({"user":{"email":"[REDACTED]"},"note":"a@b.io order-*"})");
  CHECK_FALSE(run(*t, "token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl here"));
  CHECK(*run(*t, "plain a@b.io order-7") ==
        "plain a@b.io order-*");  // fields of a plain event: absent
}

TEST_CASE("redact: hash is HMAC-SHA256 with prefix and length") {
  // HMAC-SHA256("key", "bob@example.com") = b55c2e91fb86... (computed independently:
  // printf %s bob@example.com | openssl dgst -sha256 -hmac key).
  char dir[] = "/tmp/redact-unit-XXXXXX";
  REQUIRE(mkdtemp(dir));
  std::string key = std::string(dir) + "/k";
  FILE* f = fopen(key.c_str(), "w");
  REQUIRE(f);
  fputs("key\n", f);
  fclose(f);
  chmod(key.c_str(), 0600);
  auto t = make(
      "    type: redact\n    rules:\n      - match: [email]\n        action: hash\n"
      "    hash: {key_file: " +
      key + ", prefix: 'u_', length: 12}\n");
  std::string out = *run(*t, "who bob@example.com");
  CHECK(out == "who u_b55c2e91fb86");
  CHECK(out == *run(*t, "who bob@example.com"));
  CHECK(out != *run(*t, "who alice@example.com"));
  unlink(key.c_str());
  rmdir(dir);
}
