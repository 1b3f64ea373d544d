// Verifies the SQS client: request shapes (AWS JSON 1.0, target, service sqs), receive parsing
// (empty answers in every form, attributes), batches split at 10 with per-entry failures, the
// receipt-lost classification, errors naming the queue, and region/endpoint from the queue URL.
#include "agent/aws/sqs.h"

#include <doctest/doctest.h>

#include <atomic>
#include <mutex>

#include "tests/unit/aws/aws_test_env.h"

using namespace logship;
using namespace logship::aws;
using aws_test::AwsEnv;
using aws_test::run_sync;
using aws_test::TestHttpServer;
using aws_test::TestLoop;

namespace {

struct Fixture {
  explicit Fixture(TestHttpServer::Handler h) : server(std::move(h)) {}
  AwsEnv env;
  TestHttpServer server;
  TestLoop loop;
  HttpClient http{loop.executor(), TlsOptions{}};
  CredentialProvider creds{http, aws_test::static_keys("AKIASQSTEST", "sqs-secret-value")};
  AwsClient client{http, creds};
  SqsClient sqs{client, server.url(), "us-east-1",
                "https://sqs.us-east-1.amazonaws.com/123456789012/q"};
};

}  // namespace

TEST_CASE("sqs: region and endpoint from the queue URL") {
  CHECK(SqsClient::region_of("https://sqs.eu-west-3.amazonaws.com/123456789012/q") == "eu-west-3");
  CHECK(SqsClient::region_of("https://sqs.cn-north-1.amazonaws.com.cn/1/q") == "cn-north-1");
  CHECK(SqsClient::region_of("https://us-east-2.queue.amazonaws.com/1/q") == "us-east-2");
  CHECK_FALSE(SqsClient::region_of("http://127.0.0.1:4566/1/q"));
  CHECK_FALSE(SqsClient::region_of("https://sqs.example.com/1/q"));
  CHECK(SqsClient::endpoint_of("http://127.0.0.1:4566/000000000000/q") == "http://127.0.0.1:4566");
  CHECK(SqsClient::endpoint_of("https://sqs.us-east-1.amazonaws.com/1/q") ==
        "https://sqs.us-east-1.amazonaws.com");
}

TEST_CASE("sqs: ReceiveMessage is a signed JSON 1.0 request; answers in every empty form") {
  std::atomic<int> n{0};
  std::mutex mu;
  std::string last_body;
  Fixture f([&](const TestHttpServer::Request& req) {
    CHECK(req.header("x-amz-target") == "AmazonSQS.ReceiveMessage");
    CHECK(req.header("content-type") == "application/x-amz-json-1.0");
    CHECK(req.header("authorization").find("/us-east-1/sqs/aws4_request") != std::string::npos);
    {
      std::lock_guard lk(mu);
      last_body = req.body;
    }
    switch (n++) {
      case 0:
        return TestHttpServer::response(200, "");
      case 1:
        return TestHttpServer::response(200, "{}");
      case 2:
        return TestHttpServer::response(200, "{\"Messages\":[]}");
      default:
        return TestHttpServer::response(
            200,
            R"({"Messages":[{"MessageId":"m1","ReceiptHandle":"rh1","MD5OfBody":"x","Body":"{\"a\":1}",)"
            R"("Attributes":{"ApproximateReceiveCount":"3","SentTimestamp":"1764633600000"}},)"
            R"({"MessageId":"m2","ReceiptHandle":"rh2","Body":""}]})");
    }
  });
  for (int i = 0; i < 3; ++i) {
    auto r = run_sync(f.loop, f.sqs.receive(10, std::chrono::seconds(0), std::chrono::seconds(30)));
    REQUIRE(r.ok());
    CHECK(r.value->empty());
  }
  {
    std::lock_guard lk(mu);
    CHECK(last_body.find("\"QueueUrl\":\"https://sqs.us-east-1.amazonaws.com/123456789012/q\"") !=
          std::string::npos);
    CHECK(last_body.find("\"MaxNumberOfMessages\":10") != std::string::npos);
    CHECK(last_body.find("\"VisibilityTimeout\":30") != std::string::npos);
    CHECK(last_body.find("\"AttributeNames\":[\"All\"]") != std::string::npos);
  }
  auto r = run_sync(f.loop, f.sqs.receive(50, std::chrono::seconds(99), std::chrono::seconds(30)));
  REQUIRE(r.ok());
  REQUIRE(r.value->size() == 2);
  CHECK((*r.value)[0].id == "m1");
  CHECK((*r.value)[0].receipt_handle == "rh1");
  CHECK((*r.value)[0].body == "{\"a\":1}");
  CHECK((*r.value)[0].receive_count == 3);
  CHECK((*r.value)[0].sent_ms == 1764633600000);
  CHECK((*r.value)[1].body.empty());
  std::lock_guard lk(mu);
  CHECK(last_body.find("\"MaxNumberOfMessages\":10,\"WaitTimeSeconds\":20") != std::string::npos);
}

TEST_CASE("sqs: malformed receive answers are errors naming the queue") {
  std::string err;
  CHECK_FALSE(SqsClient::parse_receive("{\"Messages\":{}}", &err));
  CHECK_FALSE(SqsClient::parse_receive("{\"Messages\":[{\"MessageId\":\"m\"}]}", &err));
  CHECK(err.find("message m") != std::string::npos);
  CHECK_FALSE(SqsClient::parse_receive("<xml/>", &err));
  Fixture f([](const TestHttpServer::Request&) {
    return TestHttpServer::response(
        400,
        R"({"__type":"com.amazonaws.sqs#QueueDoesNotExist","message":"The specified queue does not exist."})");
  });
  auto r = run_sync(f.loop, f.sqs.receive(1, std::chrono::seconds(0), std::chrono::seconds(30)));
  REQUIRE(r.error);
  CHECK(r.error->kind == SqsError::Kind::kNoQueue);
  CHECK(r.error->message.find("123456789012/q") != std::string::npos);
  CHECK(r.error->message.find("sqs-secret-value") == std::string::npos);
}

TEST_CASE("sqs: batches go 10 entries at a time; per-entry failures and lost receipts") {
  std::atomic<int> calls{0};
  Fixture f([&](const TestHttpServer::Request& req) {
    ++calls;
    CHECK(req.header("x-amz-target") == "AmazonSQS.ChangeMessageVisibilityBatch");
    CHECK(req.body.find("\"VisibilityTimeout\":300") != std::string::npos);
    if (req.body.find("\"Id\":\"3\"") != std::string::npos)
      return TestHttpServer::response(
          200, R"({"Successful":[{"Id":"0"}],"Failed":[{"Id":"3","Code":"ReceiptHandleIsInvalid",)"
               R"("Message":"The input receipt handle is not valid.","SenderFault":true}]})");
    return TestHttpServer::response(200, "");  // some servers answer a full success with nothing
  });
  std::vector<SqsBatchEntry> e;
  for (int i = 0; i < 23; ++i) e.push_back({std::to_string(i), "rh" + std::to_string(i), 300});
  auto r = run_sync(f.loop, f.sqs.change_visibility_batch(e));
  REQUIRE(r.ok());
  CHECK_FALSE(r.error);
  CHECK(calls == 3);
  REQUIRE(r.value->size() == 1);
  CHECK((*r.value)[0].id == "3");
  CHECK((*r.value)[0].receipt_lost());
  SqsBatchFailure other{"x", "InternalError", "", false};
  CHECK_FALSE(other.receipt_lost());
}

TEST_CASE("sqs: a whole batch request that fails reports every entry of it") {
  Fixture f([](const TestHttpServer::Request& req) {
    CHECK(req.header("x-amz-target") == "AmazonSQS.DeleteMessageBatch");
    return TestHttpServer::response(
        403,
        R"({"__type":"com.amazonaws.sqs#AccessDenied","message":"not authorized to perform sqs:DeleteMessage"})");
  });
  std::vector<SqsBatchEntry> e{{"a", "rha"}, {"b", "rhb"}};
  auto r = run_sync(f.loop, f.sqs.delete_batch(e));
  REQUIRE(r.error);
  CHECK(r.error->kind == SqsError::Kind::kAccessDenied);
  CHECK(r.error->message.find("sqs:DeleteMessage") != std::string::npos);
  REQUIRE(r.value);
  CHECK(r.value->size() == 2);
}

TEST_CASE("sqs: GetQueueAttributes returns the attributes") {
  Fixture f([](const TestHttpServer::Request& req) {
    CHECK(req.header("x-amz-target") == "AmazonSQS.GetQueueAttributes");
    CHECK(req.body.find("\"AttributeNames\":[\"All\"]") != std::string::npos);
    return TestHttpServer::response(
        200,
        R"({"Attributes":{"ApproximateNumberOfMessages":"4","RedrivePolicy":"{\"maxReceiveCount\":5}"}})");
  });
  auto r = run_sync(f.loop, f.sqs.attributes());
  REQUIRE(r.ok());
  CHECK(r.value->at("ApproximateNumberOfMessages") == "4");
  CHECK(r.value->count("RedrivePolicy") == 1);
}
