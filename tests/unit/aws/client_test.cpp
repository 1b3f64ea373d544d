#include "agent/aws/client.h"

#include <doctest/doctest.h>

#include <atomic>

#include "agent/aws/xml.h"
#include "tests/unit/aws/aws_test_env.h"

using namespace logship;
using namespace logship::aws;
using namespace std::chrono_literals;
using aws_test::AwsEnv;
using aws_test::run_sync;
using aws_test::TestHttpServer;
using aws_test::TestLoop;

namespace {

std::string s3_error(const std::string& code, const std::string& message) {
  return "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>" + code + "</Code><Message>" +
         message + "</Message><RequestId>REQ123</RequestId><HostId>h</HostId></Error>";
}

CredentialProviderOptions static_keys() {
  return aws_test::static_keys("AKIACLIENT", "client-secret-value");
}

SendOptions s3_options() {
  SendOptions o;
  o.service = "s3";
  o.region = "us-east-1";
  o.base_backoff = 1ms;
  o.max_backoff = 5ms;
  return o;
}

HttpRequest get(const std::string& url) {
  HttpRequest r;
  r.method = "GET";
  r.url = url;
  return r;
}

/// RFC 1123 date of a time point (the Date header).
std::string http_date(std::chrono::system_clock::time_point t) {
  std::time_t tt = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
  return buf;
}

}  // namespace

TEST_CASE("aws client: 503 SlowDown is retried, then the success is returned") {
  // Verifies retry with backoff on SlowDown and that every attempt is signed.
  AwsEnv env;
  std::atomic<int> n{0};
  TestHttpServer s3([&](const TestHttpServer::Request&) {
    if (++n == 1) return TestHttpServer::response(503, s3_error("SlowDown", "Reduce your rate"));
    return TestHttpServer::response(200, "object bytes");
  });
  TestLoop loop;
  HttpClient http(loop.executor(), TlsOptions{});
  CredentialProvider creds(http, static_keys());
  AwsClient client(http, creds);
  HttpResponse r = run_sync(loop, client.send(get(s3.url() + "/bucket/key"), s3_options()));
  CHECK(r.status == 200);
  CHECK(r.body == "object bytes");
  CHECK(client.attempts() == 2);
  auto got = s3.received();
  REQUIRE(got.size() == 2);
  for (auto& req : got) {
    CHECK(req.header("authorization").rfind("AWS4-HMAC-SHA256 Credential=AKIACLIENT/", 0) == 0);
    CHECK(req.header("x-amz-content-sha256") == sha256_hex(""));
    CHECK_FALSE(req.header("x-amz-date").empty());
  }
}

TEST_CASE("aws client: 403 AccessDenied is returned at once, without a retry") {
  // Verifies non-retryable errors and their parsing; the error text holds no secret.
  AwsEnv env;
  TestHttpServer s3([](const TestHttpServer::Request&) {
    return TestHttpServer::response(403, s3_error("AccessDenied", "Access Denied"));
  });
  TestLoop loop;
  HttpClient http(loop.executor(), TlsOptions{});
  CredentialProvider creds(http, static_keys());
  AwsClient client(http, creds);
  HttpResponse r = run_sync(loop, client.send(get(s3.url() + "/bucket/key"), s3_options()));
  CHECK(r.status == 403);
  CHECK(s3.requests() == 1);
  auto err = parse_aws_error(r);
  REQUIRE(err.has_value());
  CHECK(err->code == "AccessDenied");
  CHECK(err->message == "Access Denied");
  CHECK(err->request_id == "REQ123");
  CHECK_FALSE(retryable(*err));
  std::string text = err->to_string();
  CHECK(text == "AccessDenied: Access Denied (HTTP 403, request id REQ123)");
  CHECK(text.find("client-secret-value") == std::string::npos);
  CHECK(text.find("AWS4-HMAC") == std::string::npos);
}

TEST_CASE("aws client: other non-retryable S3 errors are returned at once") {
  // Verifies NoSuchKey, NoSuchBucket, SignatureDoesNotMatch, InvalidAccessKeyId: one attempt.
  AwsEnv env;
  for (const char* code :
       {"NoSuchKey", "NoSuchBucket", "SignatureDoesNotMatch", "InvalidAccessKeyId"}) {
    CAPTURE(code);
    std::string c = code;
    TestHttpServer s3([c](const TestHttpServer::Request&) {
      return TestHttpServer::response(c.rfind("NoSuch", 0) == 0 ? 404 : 403, s3_error(c, "m"));
    });
    TestLoop loop;
    HttpClient http(loop.executor(), TlsOptions{});
    CredentialProvider creds(http, static_keys());
    AwsClient client(http, creds);
    HttpResponse r = run_sync(loop, client.send(get(s3.url() + "/b/k"), s3_options()));
    CHECK(parse_aws_error(r)->code == c);
    CHECK(s3.requests() == 1);
  }
}

TEST_CASE("aws client: retries stop after max_attempts and return the last error") {
  // Verifies the attempt limit on 500 InternalError.
  AwsEnv env;
  TestHttpServer s3([](const TestHttpServer::Request&) {
    return TestHttpServer::response(500, s3_error("InternalError", "oops"));
  });
  TestLoop loop;
  HttpClient http(loop.executor(), TlsOptions{});
  CredentialProvider creds(http, static_keys());
  AwsClient client(http, creds);
  SendOptions o = s3_options();
  o.max_attempts = 3;
  HttpResponse r = run_sync(loop, client.send(get(s3.url() + "/b/k"), o));
  CHECK(r.status == 500);
  CHECK(s3.requests() == 3);
}

TEST_CASE("aws client: connection errors are retried; cancellation ends the retries") {
  // Verifies transport errors count as retryable, and the cancellation predicate.
  AwsEnv env;
  TestLoop loop;
  HttpClient http(loop.executor(), TlsOptions{});
  CredentialProvider creds(http, static_keys());
  AwsClient client(http, creds);
  SendOptions o = s3_options();
  o.max_attempts = 3;
  HttpResponse r = run_sync(loop, client.send(get("http://127.0.0.1:1/b/k"), o));
  CHECK(r.transport_error());
  CHECK(client.attempts() == 3);
  o.cancelled = [] { return true; };
  run_sync(loop, client.send(get("http://127.0.0.1:1/b/k"), o));
  CHECK(client.attempts() == 4);
}

TEST_CASE("aws client: RequestTimeTooSkewed corrects the clock from the Date header") {
  // Verifies skew correction: the server's clock is 2 h ahead and it rejects x-amz-date more
  // than 15 min off; one immediate retry succeeds and later requests are signed right at once.
  AwsEnv env;
  const auto ahead = 2h;
  TestHttpServer s3([&](const TestHttpServer::Request& r) {
    auto server_now = std::chrono::system_clock::now() + ahead;
    std::string d = r.header("x-amz-date");
    std::tm tm{};
    bool ok = false;
    if (strptime(d.c_str(), "%Y%m%dT%H%M%SZ", &tm)) {
      auto t = std::chrono::system_clock::from_time_t(timegm(&tm));
      auto diff = server_now - t;
      ok = diff < 15min && diff > -15min;
    }
    if (!ok)
      return TestHttpServer::response(
          403,
          s3_error("RequestTimeTooSkewed",
                   "The difference between the request time and the current time is too large."),
          {{"Date", http_date(server_now)}});
    return TestHttpServer::response(200, "ok", {{"Date", http_date(server_now)}});
  });
  TestLoop loop;
  HttpClient http(loop.executor(), TlsOptions{});
  CredentialProvider creds(http, static_keys());
  AwsClient client(http, creds);
  HttpResponse r = run_sync(loop, client.send(get(s3.url() + "/b/k"), s3_options()));
  CHECK(r.status == 200);
  CHECK(s3.requests() == 2);
  CHECK(client.clock_offset() > 7100s);
  CHECK(client.clock_offset() < 7300s);
  r = run_sync(loop, client.send(get(s3.url() + "/b/k2"), s3_options()));
  CHECK(r.status == 200);
  CHECK(s3.requests() == 3);
}

TEST_CASE("aws client: ExpiredToken refreshes the credentials and retries once") {
  // Verifies invalidate-on-ExpiredToken with ECS credentials that change between fetches.
  AwsEnv env;
  std::atomic<int> fetches{0};
  TestHttpServer ecs([&](const TestHttpServer::Request&) {
    int n = ++fetches;
    return TestHttpServer::response(
        200, aws_test::json_credentials("ASIA" + std::to_string(n), "secret" + std::to_string(n),
                                        "TOKEN" + std::to_string(n), "2030-01-01T00:00:00Z"));
  });
  env.set("AWS_CONTAINER_CREDENTIALS_FULL_URI", ecs.url() + "/creds");
  TestHttpServer s3([](const TestHttpServer::Request& r) {
    if (r.header("x-amz-security-token") == "TOKEN1")
      return TestHttpServer::response(400,
                                      s3_error("ExpiredToken", "The provided token has expired."));
    return TestHttpServer::response(200, "fresh");
  });
  TestLoop loop;
  HttpClient http(loop.executor(), TlsOptions{});
  CredentialProviderOptions o;
  o.region = "us-east-1";
  o.now = [] { return *parse_iso8601("2029-01-01T00:00:00Z"); };
  CredentialProvider creds(http, o);
  AwsClient client(http, creds);
  HttpResponse r = run_sync(loop, client.send(get(s3.url() + "/b/k"), s3_options()));
  CHECK(r.status == 200);
  CHECK(r.body == "fresh");
  CHECK(creds.fetches() == 2);
  auto got = s3.received();
  REQUIRE(got.size() == 2);
  CHECK(got[0].header("x-amz-security-token") == "TOKEN1");
  CHECK(got[1].header("x-amz-security-token") == "TOKEN2");
  CHECK(got[1].header("authorization").find("Credential=ASIA2/") != std::string::npos);
}

TEST_CASE("aws client: a credentials failure is thrown, not sent") {
  // Verifies send() throws the chain's error and makes no HTTP request.
  AwsEnv env;
  TestHttpServer s3(
      [](const TestHttpServer::Request&) { return TestHttpServer::response(200, ""); });
  TestLoop loop;
  HttpClient http(loop.executor(), TlsOptions{});
  CredentialProviderOptions o;
  o.region = "us-east-1";
  CredentialProvider creds(http, o);
  AwsClient client(http, creds);
  CHECK_THROWS_WITH_AS(run_sync(loop, client.send(get(s3.url() + "/b/k"), s3_options())),
                       doctest::Contains("no AWS credentials found"), std::runtime_error);
  CHECK(s3.requests() == 0);
}

TEST_CASE("aws errors: JSON (SQS, KMS), STS XML and bodiless answers are parsed") {
  // Verifies parse_aws_error across the protocols, and the retry classification.
  HttpResponse r;
  r.status = 400;
  r.body = R"({"__type":"com.amazonaws.sqs#ReceiptHandleIsInvalid","message":"bad handle"})";
  r.headers = {{"x-amzn-requestid", "rid-1"}};
  auto e = parse_aws_error(r);
  REQUIRE(e.has_value());
  CHECK(e->code == "ReceiptHandleIsInvalid");
  CHECK(e->message == "bad handle");
  CHECK(e->request_id == "rid-1");
  CHECK_FALSE(retryable(*e));

  r.body = R"({"__type":"ThrottlingException","Message":"Rate exceeded"})";
  e = parse_aws_error(r);
  CHECK(e->code == "ThrottlingException");
  CHECK(e->message == "Rate exceeded");
  CHECK(retryable(*e));

  r.status = 403;
  r.body =
      "<ErrorResponse><Error><Code>AccessDenied</Code><Message>a &amp; b</Message></Error>"
      "<RequestId>sts-1</RequestId></ErrorResponse>";
  e = parse_aws_error(r);
  CHECK(e->code == "AccessDenied");
  CHECK(e->message == "a & b");
  CHECK(e->request_id == "sts-1");

  r.status = 404;
  r.body.clear();
  r.headers = {{"x-amz-request-id", "head-1"}};
  e = parse_aws_error(r);
  CHECK(e->code == "NotFound");
  CHECK(e->request_id == "head-1");

  r.status = 200;
  CHECK_FALSE(parse_aws_error(r).has_value());
  r.status = 0;
  r.error = "Couldn't connect to server";
  e = parse_aws_error(r);
  CHECK(e->code == "TransportError");
  CHECK(retryable(*e));

  for (const char* code : {"SlowDown", "Throttling", "RequestLimitExceeded", "RequestTimeout"}) {
    AwsError x{400, code, "", ""};
    CHECK(retryable(x));
  }
  for (long status : {500L, 502L, 503L, 504L}) CHECK(retryable(AwsError{status, "X", "", ""}));
}

TEST_CASE("aws xml: elements and entities") {
  // Verifies the small XML reader used for STS and S3 answers.
  std::string doc =
      "<A><Key>a&lt;b&#x4E2D;&#65;</Key><Key/><Keys>no</Keys><Key x=\"1\">c</Key></A>";
  CHECK(xml_text(doc, "Key") == std::optional<std::string>("a<b中A"));
  auto all = xml_elements(doc, "Key");
  REQUIRE(all.size() == 3);
  CHECK(all[1] == "");
  CHECK(all[2] == "c");
  CHECK_FALSE(xml_text(doc, "Missing").has_value());
}
