// Verifies the KMS client: request shape (AWS JSON 1.1, target, signed for service kms, the
// encryption context and key id in the body), answers, the error messages (which name the key
// and the object and never hold the key or a credential) and the retries of throttling.
#include "agent/aws/kms.h"

#include <doctest/doctest.h>
#include <simdjson.h>

#include <atomic>

#include "agent/core/base64.h"
#include "tests/unit/aws/aws_test_env.h"

using namespace logship;
using namespace logship::aws;
using aws_test::AwsEnv;
using aws_test::run_sync;
using aws_test::TestHttpServer;
using aws_test::TestLoop;

namespace {

const std::string kKey =
    "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";
const std::string kDataKey(32, '\x5a');

CredentialProviderOptions static_keys() {
  return aws_test::static_keys("AKIAKMSTEST", "kms-secret-value");
}

std::string kms_error(const std::string& type, const std::string& message) {
  return "{\"__type\":\"" + type + "\",\"message\":\"" + message + "\"}";
}

struct Fixture {
  explicit Fixture(TestHttpServer::Handler h) : server(std::move(h)) {}
  AwsEnv env;
  TestHttpServer server;
  TestLoop loop;
  HttpClient http{loop.executor(), TlsOptions{}};
  CredentialProvider creds{http, static_keys()};
  AwsClient client{http, creds};
  KmsClient kms{client, server.url(), "us-east-1"};
};

}  // namespace

TEST_CASE("kms: Decrypt sends a signed AWS JSON 1.1 request with the context and the key id") {
  Fixture f([](const TestHttpServer::Request&) {
    return TestHttpServer::response(200, "{\"KeyId\":\"" + kKey + "\",\"Plaintext\":\"" +
                                             base64_encode(kDataKey) +
                                             "\",\"EncryptionAlgorithm\":\"SYMMETRIC_DEFAULT\"}");
  });
  EncryptionContext ctx{{"aws:x-amz-cek-alg", "AES/GCM/NoPadding"}, {"app", "web \"1\""}};
  auto r = run_sync(f.loop, f.kms.decrypt("\x01\x02wrapped", ctx, kKey, "s3://logs/a.gz"));
  REQUIRE(r.ok());
  CHECK(r.value->plaintext.bytes() == kDataKey);
  CHECK(r.value->key_id == kKey);
  CHECK(f.kms.calls() == 1);
  auto got = f.server.received();
  REQUIRE(got.size() == 1);
  CHECK(got[0].method == "POST");
  CHECK(got[0].target == "/");
  CHECK(got[0].header("content-type") == "application/x-amz-json-1.1");
  CHECK(got[0].header("x-amz-target") == "TrentService.Decrypt");
  std::string auth = got[0].header("authorization");
  CHECK(auth.rfind("AWS4-HMAC-SHA256 Credential=AKIAKMSTEST/", 0) == 0);
  CHECK(auth.find("/us-east-1/kms/aws4_request") != std::string::npos);
  CHECK(auth.find("x-amz-target") != std::string::npos);  // the target is signed
  simdjson::dom::parser p;
  simdjson::dom::element doc = p.parse(got[0].body);
  CHECK(std::string(doc["CiphertextBlob"].get_string().value()) ==
        base64_encode("\x01\x02wrapped"));
  CHECK(std::string(doc["KeyId"].get_string().value()) == kKey);
  CHECK(std::string(doc["EncryptionContext"]["aws:x-amz-cek-alg"].get_string().value()) ==
        "AES/GCM/NoPadding");
  CHECK(std::string(doc["EncryptionContext"]["app"].get_string().value()) == "web \"1\"");
}

TEST_CASE("kms: without a key id the body has none; an empty context is {}") {
  std::string body = KmsClient::decrypt_body("x", {}, "");
  CHECK(body == "{\"CiphertextBlob\":\"eA==\",\"EncryptionContext\":{}}");
}

TEST_CASE("kms: AccessDenied names the key and the object, at once, without a retry") {
  Fixture f([](const TestHttpServer::Request&) {
    return TestHttpServer::response(
        400, kms_error("AccessDeniedException",
                       "User: arn:aws:iam::123456789012:user/t is not authorized to perform: "
                       "kms:Decrypt"));
  });
  auto r = run_sync(f.loop, f.kms.decrypt("blob", {}, kKey, "s3://logs/AWSLogs/x.json.gz"));
  REQUIRE(r.error);
  CHECK(r.error->kind == KmsError::Kind::kAccessDenied);
  CHECK(r.error->message.find("kms:Decrypt denied on key " + kKey +
                              " for s3://logs/AWSLogs/x.json.gz") != std::string::npos);
  CHECK(r.error->message.find("kms-secret-value") == std::string::npos);
  CHECK(f.server.requests() == 1);
}

TEST_CASE("kms: InvalidCiphertext says wrong key or encryption context") {
  Fixture f([](const TestHttpServer::Request&) {
    return TestHttpServer::response(400, kms_error("InvalidCiphertextException", ""));
  });
  auto r = run_sync(f.loop, f.kms.decrypt("blob", {{"a", "b"}}, "", "s3://b/k"));
  REQUIRE(r.error);
  CHECK(r.error->kind == KmsError::Kind::kInvalidCiphertext);
  CHECK(r.error->message.find("wrong key or encryption context") != std::string::npos);
  CHECK(r.error->message.find("s3://b/k") != std::string::npos);
  CHECK(r.error->message.find("the key that wrapped it") != std::string::npos);
}

TEST_CASE("kms: throttling is retried, then the answer is used") {
  std::atomic<int> n{0};
  Fixture f([&](const TestHttpServer::Request&) {
    if (++n <= 2)
      return TestHttpServer::response(400, kms_error("ThrottlingException", "Rate exceeded"));
    return TestHttpServer::response(
        200, "{\"KeyId\":\"" + kKey + "\",\"Plaintext\":\"" + base64_encode(kDataKey) + "\"}");
  });
  auto r = run_sync(f.loop, f.kms.decrypt("blob", {}, kKey, "s3://b/k"));
  REQUIRE(r.ok());
  CHECK(f.server.requests() == 3);
}

TEST_CASE("kms: a disabled key and a damaged answer are clear errors") {
  Fixture f([](const TestHttpServer::Request& req) {
    if (req.body.find("disabled") != std::string::npos)
      return TestHttpServer::response(400, kms_error("KMSInvalidStateException", "is disabled"));
    return TestHttpServer::response(200, "{\"Plaintext\":\"***\"}");
  });
  auto a = run_sync(f.loop, f.kms.decrypt("b", {}, "disabled-key", "s3://b/k"));
  REQUIRE(a.error);
  CHECK(a.error->kind == KmsError::Kind::kKeyUnusable);
  CHECK(a.error->message.find("key disabled-key cannot be used") != std::string::npos);
  auto b = run_sync(f.loop, f.kms.decrypt("b", {}, kKey, "s3://b/k"));
  REQUIRE(b.error);
  CHECK(b.error->message.find("no valid Plaintext") != std::string::npos);
}

TEST_CASE("kms: GenerateDataKey asks for AES_256 and returns the key and its wrapped form") {
  Fixture f([](const TestHttpServer::Request& req) {
    CHECK(req.header("x-amz-target") == "TrentService.GenerateDataKey");
    CHECK(req.body.find("\"KeySpec\":\"AES_256\"") != std::string::npos);
    CHECK(req.body.find("\"purpose\":\"buffer\"") != std::string::npos);
    return TestHttpServer::response(200, "{\"KeyId\":\"" + kKey + "\",\"Plaintext\":\"" +
                                             base64_encode(kDataKey) + "\",\"CiphertextBlob\":\"" +
                                             base64_encode("wrapped-key") + "\"}");
  });
  auto r = run_sync(f.loop, f.kms.generate_data_key(kKey, {{"purpose", "buffer"}}, "the buffer"));
  REQUIRE(r.ok());
  CHECK(r.value->plaintext.bytes() == kDataKey);
  CHECK(r.value->ciphertext_blob == "wrapped-key");
  CHECK(r.value->key_id == kKey);
}

TEST_CASE("kms: no answer is a transport error naming the endpoint") {
  std::string url;
  {
    TestHttpServer gone([](const TestHttpServer::Request&) { return std::nullopt; });
    url = gone.url();
  }
  AwsEnv env;
  TestLoop loop;
  HttpClient http{loop.executor(), TlsOptions{}};
  CredentialProvider creds{http, static_keys()};
  AwsClient client{http, creds};
  KmsClient kms{client, url, "us-east-1"};
  auto r = run_sync(loop, kms.decrypt("b", {}, kKey, "s3://b/k"));
  REQUIRE(r.error);
  CHECK(r.error->kind == KmsError::Kind::kTransport);
  CHECK(r.error->message.find(url) != std::string::npos);
}

TEST_CASE("key bytes are wiped when moved from or destroyed") {
  KeyBytes a(std::string(32, 'k'));
  KeyBytes b = std::move(a);
  CHECK(a.size() == 0);  // NOLINT(bugprone-use-after-move): the moved-from state is specified
  CHECK(b.size() == 32);
  KeyBytes c = b.copy();
  CHECK(c.bytes() == b.bytes());
}

TEST_CASE("base64: canonical padded input only") {
  CHECK(base64_encode("") == "");
  CHECK(base64_encode("f") == "Zg==");
  CHECK(base64_encode("foobar") == "Zm9vYmFy");
  CHECK(base64_decode("Zg==") == std::optional<std::string>("f"));
  CHECK(base64_decode("Zm8=") == std::optional<std::string>("fo"));
  CHECK(base64_decode("Zm9vYmFy") == std::optional<std::string>("foobar"));
  CHECK_FALSE(base64_decode("Zg="));
  CHECK_FALSE(base64_decode("Z=g="));
  CHECK_FALSE(base64_decode("Zm9v YmFy"));
  CHECK_FALSE(base64_decode("Zm9v\nYmFy"));
  CHECK(base64_decode("") == std::optional<std::string>(""));
}

TEST_CASE("kms: answers are read in any member order, with whitespace; an escaped key is refused") {
  std::atomic<int> n{0};
  Fixture f([&](const TestHttpServer::Request&) {
    switch (n++) {
      case 0:
        return TestHttpServer::response(
            200, "{ \"EncryptionAlgorithm\" : \"SYMMETRIC_DEFAULT\",\n  \"KeyId\" : \"" + kKey +
                     "\" ,\n  \"Plaintext\"\t:\t\"" + base64_encode(kDataKey) + "\"\n}\n");
      case 1:  // "\/" is valid JSON but no KMS answer has it: not taken as the key
        return TestHttpServer::response(
            200, "{\"Plaintext\":\"WlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpa\\/lpaWlo=\"}");
      default:
        return TestHttpServer::response(200, "[\"Plaintext\"]");
    }
  });
  auto a = run_sync(f.loop, f.kms.decrypt("b", {}, kKey, "s3://b/k"));
  REQUIRE(a.ok());
  CHECK(a.value->plaintext.bytes() == kDataKey);
  CHECK(a.value->key_id == kKey);
  for (int i = 0; i < 2; ++i) {
    auto b = run_sync(f.loop, f.kms.decrypt("b", {}, kKey, "s3://b/k"));
    REQUIRE(b.error);
    CHECK(b.error->message.find("no valid Plaintext") != std::string::npos);
  }
}
