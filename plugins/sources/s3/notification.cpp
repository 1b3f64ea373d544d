#include "plugins/sources/s3/notification.h"

#include <fmt/format.h>
#include <simdjson.h>

#include "agent/core/url.h"
#include "plugins/sources/file/decode_timestamp.h"

namespace logship::s3 {

namespace {

constexpr size_t kMaxBody = 1 << 20;
constexpr size_t kMaxRecords = 1000;

std::string_view str(simdjson::dom::element e, const char* name) {
  std::string_view v;
  if (e[name].get(v) != simdjson::SUCCESS) return {};
  return v;
}

uint64_t size_of(simdjson::dom::element o) {
  uint64_t u = 0;
  if (o["size"].get(u) == simdjson::SUCCESS) return u;
  int64_t i = 0;
  if (o["size"].get(i) == simdjson::SUCCESS && i > 0) return static_cast<uint64_t>(i);
  double d = 0;
  if (o["size"].get(d) == simdjson::SUCCESS && d > 0 && d < 1e19) return static_cast<uint64_t>(d);
  return 0;
}

int64_t time_of(std::string_view t) {
  int64_t ns = 0;
  return !t.empty() && decode::parse_rfc3339(t, ns) ? ns : 0;
}

std::string unquote(std::string_view etag) {
  if (etag.size() >= 2 && etag.front() == '"' && etag.back() == '"')
    etag = etag.substr(1, etag.size() - 2);
  return std::string(etag);
}

Notification invalid(std::string why) {
  Notification n;
  n.kind = Notification::Kind::kInvalid;
  n.error = std::move(why);
  return n;
}

Notification parse_doc(simdjson::dom::element doc, bool wrapped);

Notification parse_records(simdjson::dom::array recs, const char* wrapper) {
  Notification n;
  n.kind = Notification::Kind::kObjects;
  n.wrapper = wrapper;
  size_t i = 0;
  for (simdjson::dom::element r : recs) {
    if (++i > kMaxRecords)
      return invalid(fmt::format("more than {} records in one message", kMaxRecords));
    std::string_view name = str(r, "eventName");
    std::string_view source = str(r, "eventSource");
    if (!source.empty() && source != "aws:s3")
      return invalid(fmt::format("record {} has eventSource \"{}\", not aws:s3", i,
                                 std::string(source).substr(0, 64)));
    if (name.empty()) return invalid(fmt::format("record {} has no eventName", i));
    if (name.rfind("ObjectCreated:", 0) != 0) {
      ++n.ignored;
      continue;
    }
    simdjson::dom::element s3, bucket, object;
    if (r["s3"].get(s3) != simdjson::SUCCESS || s3["bucket"].get(bucket) != simdjson::SUCCESS ||
        s3["object"].get(object) != simdjson::SUCCESS)
      return invalid(
          fmt::format("record {} ({}) has no s3.bucket and s3.object", i, std::string(name)));
    NotifiedObject o;
    o.bucket = std::string(str(bucket, "name"));
    auto key = decode_notification_key(str(object, "key"));
    if (o.bucket.empty() || !key || key->empty())
      return invalid(fmt::format("record {} has no valid bucket name and object key", i));
    o.key = std::move(*key);
    o.etag = unquote(str(object, "eTag"));
    o.sequencer = std::string(str(object, "sequencer"));
    o.size = size_of(object);
    o.event = std::string(name);
    o.event_time_ns = time_of(str(r, "eventTime"));
    n.objects.push_back(std::move(o));
  }
  return n;
}

Notification parse_eventbridge(simdjson::dom::element doc) {
  Notification n;
  n.kind = Notification::Kind::kObjects;
  n.wrapper = "eventbridge";
  std::string_view type = str(doc, "detail-type");
  if (type != "Object Created") {
    ++n.ignored;
    return n;
  }
  simdjson::dom::element detail, bucket, object;
  if (doc["detail"].get(detail) != simdjson::SUCCESS ||
      detail["bucket"].get(bucket) != simdjson::SUCCESS ||
      detail["object"].get(object) != simdjson::SUCCESS)
    return invalid("EventBridge event without detail.bucket and detail.object");
  NotifiedObject o;
  o.bucket = std::string(str(bucket, "name"));
  o.key = std::string(str(object, "key"));  // EventBridge sends keys as they are
  if (o.bucket.empty() || o.key.empty())
    return invalid("EventBridge event without a bucket name and an object key");
  o.etag = unquote(str(object, "etag"));
  o.sequencer = std::string(str(object, "sequencer"));
  o.size = size_of(object);
  o.event = std::string(type);
  o.event_time_ns = time_of(str(doc, "time"));
  n.objects.push_back(std::move(o));
  return n;
}

Notification parse_doc(simdjson::dom::element doc, bool wrapped) {
  if (!doc.is_object()) return invalid("the body is not a JSON object");
  simdjson::dom::array recs;
  if (doc["Records"].get(recs) == simdjson::SUCCESS)
    return parse_records(recs, wrapped ? "sns" : "s3");
  std::string_view event = str(doc, "Event");
  if (event == "s3:TestEvent") {
    Notification n;
    n.kind = Notification::Kind::kTest;
    n.wrapper = wrapped ? "sns" : "s3";
    return n;
  }
  if (!wrapped && str(doc, "Type") == "Notification") {
    std::string_view msg;
    if (doc["Message"].get(msg) != simdjson::SUCCESS)
      return invalid("SNS notification without a Message string");
    simdjson::dom::parser inner;
    simdjson::dom::element d;
    if (auto e = inner.parse(msg.data(), msg.size()).get(d); e != simdjson::SUCCESS)
      return invalid(std::string("the SNS Message is not JSON: ") + simdjson::error_message(e));
    return parse_doc(d, true);
  }
  if (str(doc, "source") == "aws.s3" && !str(doc, "detail-type").empty())
    return parse_eventbridge(doc);
  return invalid(
      "not an S3 event notification (no Records), an SNS notification, an EventBridge S3 "
      "event or s3:TestEvent");
}

}  // namespace

std::optional<std::string> decode_notification_key(std::string_view s) {
  bool valid = true;
  std::string out = form_url_decode(s, &valid);
  if (!valid) return std::nullopt;
  return out;
}

Notification parse_notification(std::string_view body) {
  if (body.size() > kMaxBody)
    return invalid(fmt::format("the body is {} bytes (more than {})", body.size(), kMaxBody));
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (auto e = parser.parse(body.data(), body.size()).get(doc); e != simdjson::SUCCESS)
    return invalid(std::string("the body is not JSON: ") + simdjson::error_message(e));
  return parse_doc(doc, false);
}

}  // namespace logship::s3
