// Verifies the parsing of SQS message bodies for `mode: sqs`: S3 event notifications (keys
// URL-decoded, `+` a space), SNS-wrapped ones, EventBridge "Object Created" (keys as they are),
// s3:TestEvent, events that are not ObjectCreated, and what is refused (with a reason).
#include "plugins/sources/s3/notification.h"

#include <doctest/doctest.h>

using namespace logship::s3;

namespace {

const char* kDirect = R"({"Records":[
 {"eventVersion":"2.1","eventSource":"aws:s3","awsRegion":"us-east-1","eventTime":"2026-12-02T10:00:00.000Z",
  "eventName":"ObjectCreated:Put","s3":{"s3SchemaVersion":"1.0","bucket":{"name":"logs","arn":"arn:aws:s3:::logs"},
  "object":{"key":"AWSLogs/odd+key%2Bplus%3A%C3%A9.json.gz","size":1234,"eTag":"0123abcd","sequencer":"0055AED6DCD90281E5"}}},
 {"eventVersion":"2.1","eventSource":"aws:s3","eventName":"ObjectRemoved:Delete",
  "s3":{"bucket":{"name":"logs"},"object":{"key":"gone","sequencer":"0055"}}},
 {"eventVersion":"2.1","eventSource":"aws:s3","eventName":"ObjectCreated:CompleteMultipartUpload",
  "s3":{"bucket":{"name":"logs"},"object":{"key":"big","size":9000000000,"eTag":"\"ff-3\""}}}]})";

}  // namespace

TEST_CASE("notification: a direct S3 event with several records") {
  Notification n = parse_notification(kDirect);
  REQUIRE(n.kind == Notification::Kind::kObjects);
  CHECK(n.wrapper == "s3");
  CHECK(n.ignored == 1);
  REQUIRE(n.objects.size() == 2);
  CHECK(n.objects[0].bucket == "logs");
  CHECK(n.objects[0].key == "AWSLogs/odd key+plus:\xC3\xA9.json.gz");
  CHECK(n.objects[0].size == 1234);
  CHECK(n.objects[0].etag == "0123abcd");
  CHECK(n.objects[0].sequencer == "0055AED6DCD90281E5");
  CHECK(n.objects[0].event_time_ns == 1796205600000000000LL);
  CHECK(n.objects[1].size == 9000000000ULL);
  CHECK(n.objects[1].etag == "ff-3");
}

TEST_CASE("notification: SNS-wrapped, EventBridge and the test event") {
  std::string inner = kDirect;
  std::string esc;
  for (char c : inner) {
    if (c == '"' || c == '\\') esc += '\\';
    if (c == '\n') {
      esc += "\\n";
      continue;
    }
    esc += c;
  }
  Notification sns = parse_notification(
      R"({"Type":"Notification","MessageId":"x","TopicArn":"arn:t","Message":")" + esc +
      R"(","Timestamp":"2026-12-02T10:00:01.000Z"})");
  REQUIRE(sns.kind == Notification::Kind::kObjects);
  CHECK(sns.wrapper == "sns");
  CHECK(sns.objects.size() == 2);

  Notification eb = parse_notification(
      R"({"version":"0","id":"1","detail-type":"Object Created","source":"aws.s3","account":"1",)"
      R"("time":"2026-12-02T10:00:00Z","region":"us-east-1","detail":{"version":"0","bucket":{"name":"logs"},)"
      R"("object":{"key":"raw/2023-08-08T14:03:40.532432+x%20y.zip","size":5,"etag":"e1","sequencer":"01"}}})");
  REQUIRE(eb.kind == Notification::Kind::kObjects);
  CHECK(eb.wrapper == "eventbridge");
  REQUIRE(eb.objects.size() == 1);
  CHECK(eb.objects[0].key == "raw/2023-08-08T14:03:40.532432+x%20y.zip");  // as it is
  Notification del = parse_notification(
      R"({"detail-type":"Object Deleted","source":"aws.s3","detail":{"bucket":{"name":"l"},"object":{"key":"k"}}})");
  CHECK(del.kind == Notification::Kind::kObjects);
  CHECK(del.objects.empty());
  CHECK(del.ignored == 1);

  Notification t = parse_notification(
      R"({"Service":"Amazon S3","Event":"s3:TestEvent","Time":"2026-12-02T10:00:00.000Z","Bucket":"logs"})");
  CHECK(t.kind == Notification::Kind::kTest);
}

TEST_CASE("notification: what is not one is refused with a reason") {
  for (
      const char* body :
      {"", "not json", "[1,2]", R"({"hello":"world"})",
       R"({"Records":[{"eventName":"ObjectCreated:Put"}]})",
       R"({"Records":[{"eventSource":"aws:sqs","eventName":"ObjectCreated:Put"}]})",
       R"({"Records":[{"eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"b"},"object":{"key":"bad%zz"}}}]})",
       R"({"Records":[{"eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"b"},"object":{"key":"bad%4"}}}]})",
       R"({"Type":"Notification","Message":"{not json"})",
       R"({"source":"aws.s3","detail-type":"Object Created","detail":{}})"}) {
    Notification n = parse_notification(body);
    CHECK_MESSAGE(n.kind == Notification::Kind::kInvalid, body);
    CHECK_MESSAGE(!n.error.empty(), body);
  }
  std::string many = R"({"Records":[)";
  for (int i = 0; i < 1001; ++i)
    many +=
        std::string(i ? "," : "") +
        R"({"eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"b"},"object":{"key":"k"}}})";
  many += "]}";
  CHECK(parse_notification(many).kind == Notification::Kind::kInvalid);
  CHECK(parse_notification(std::string(2 << 20, ' ')).kind == Notification::Kind::kInvalid);
}

TEST_CASE("notification: key decoding") {
  CHECK(decode_notification_key("a+b%2Bc%2fd") == "a b+c/d");
  CHECK(decode_notification_key("") == "");
  CHECK_FALSE(decode_notification_key("%"));
  CHECK_FALSE(decode_notification_key("%2"));
  CHECK_FALSE(decode_notification_key("%g0"));
}
