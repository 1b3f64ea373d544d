#include "agent/aws/sqs.h"

#include <fmt/format.h>
#include <simdjson.h>

#include <algorithm>

#include "agent/core/json_escape.h"

namespace logship::aws {

namespace {

constexpr size_t kMaxBatch = 10;  // SQS's limit per batch request

std::string_view str_or(simdjson::dom::element e, const char* name) {
  std::string_view v;
  if (e[name].get(v) != simdjson::SUCCESS) return {};
  return v;
}

int64_t int_attr(simdjson::dom::element attrs, const char* name) {
  std::string_view v = str_or(attrs, name);
  int64_t n = 0;
  for (char c : v) {
    if (c < '0' || c > '9' || n > (INT64_MAX - 9) / 10) return 0;
    n = n * 10 + (c - '0');
  }
  return n;
}

}  // namespace

bool SqsBatchFailure::receipt_lost() const {
  return code == "ReceiptHandleIsInvalid" || code == "MessageNotInflight" ||
         code == "InvalidParameterValue" || code == "AWS.SimpleQueueService.MessageNotInflight";
}

SqsClient::SqsClient(AwsClient& client, std::string endpoint, std::string region,
                     std::string queue_url, Lifecycle* lifecycle)
    : client_(client),
      endpoint_(std::move(endpoint)),
      region_(std::move(region)),
      queue_url_(std::move(queue_url)),
      lifecycle_(lifecycle) {
  while (!endpoint_.empty() && endpoint_.back() == '/') endpoint_.pop_back();
}

std::optional<std::string> SqsClient::region_of(std::string_view url) {
  auto p = url.find("://");
  std::string_view host = p == std::string_view::npos ? url : url.substr(p + 3);
  host = host.substr(0, host.find_first_of("/:"));
  auto dot = [](std::string_view h, size_t n) {
    size_t at = 0;
    for (size_t i = 0; i < n; ++i) {
      at = h.find('.', at);
      if (at == std::string_view::npos) return at;
      ++at;
    }
    return at;
  };
  if (host.rfind("sqs.", 0) == 0) {  // sqs.<region>.amazonaws.com[.cn]
    size_t end = host.find('.', 4);
    if (end == std::string_view::npos) return std::nullopt;
    std::string_view region = host.substr(4, end - 4);
    std::string_view rest = host.substr(end + 1);
    if (rest.rfind("amazonaws.com", 0) != 0 || region.empty()) return std::nullopt;
    return std::string(region);
  }
  size_t second = dot(host, 1);  // <region>.queue.amazonaws.com (legacy)
  if (second != std::string_view::npos && host.substr(second).rfind("queue.amazonaws.com", 0) == 0)
    return std::string(host.substr(0, second - 1));
  return std::nullopt;
}

std::string SqsClient::endpoint_of(std::string_view url) {
  auto p = url.find("://");
  if (p == std::string_view::npos) return std::string(url);
  auto slash = url.find('/', p + 3);
  return std::string(url.substr(0, slash));
}

awaitable<HttpResponse> SqsClient::call(std::string_view action, std::string body,
                                        std::chrono::milliseconds timeout) {
  HttpRequest req;
  req.method = "POST";
  req.url = endpoint_ + "/";
  req.headers.emplace_back("Content-Type", "application/x-amz-json-1.0");
  req.headers.emplace_back("X-Amz-Target", "AmazonSQS." + std::string(action));
  req.body = std::move(body);
  req.timeout = timeout;
  SendOptions o;
  o.service = "sqs";
  o.region = region_;
  o.lifecycle = lifecycle_;
  co_return co_await send_or_fail(client_, std::move(req), o);
}

SqsError SqsClient::explain(const HttpResponse& r, std::string_view action) const {
  SqsError out;
  if (r.transport_error()) {
    out.kind = SqsError::Kind::kTransport;
    out.message =
        fmt::format("sqs:{} on {}: no answer from {}: {}", action, queue_url_, endpoint_, r.error);
    return out;
  }
  auto e = parse_aws_error(r);
  if (!e) {
    out.message =
        fmt::format("sqs:{} on {}: unexpected answer (HTTP {})", action, queue_url_, r.status);
    return out;
  }
  out.code = e->code;
  std::string detail = e->to_string();
  if (e->code == "AccessDenied" || e->code == "AccessDeniedException") {
    out.kind = SqsError::Kind::kAccessDenied;
    out.message = fmt::format(
        "sqs:{} denied on {} (grant sqs:ReceiveMessage, sqs:DeleteMessage, "
        "sqs:ChangeMessageVisibility and sqs:GetQueueAttributes on it): {}",
        action, queue_url_, detail);
  } else if (e->code == "QueueDoesNotExist" || e->code == "NonExistentQueue" ||
             e->code == "AWS.SimpleQueueService.NonExistentQueue") {
    out.kind = SqsError::Kind::kNoQueue;
    out.message =
        fmt::format("sqs:{}: the queue {} does not exist (check queue_url and region): {}", action,
                    queue_url_, detail);
  } else if (retryable(*e)) {
    out.kind = SqsError::Kind::kThrottled;
    out.message =
        fmt::format("sqs:{} on {}: still failing after retries: {}", action, queue_url_, detail);
  } else {
    out.message = fmt::format("sqs:{} on {} failed: {}", action, queue_url_, detail);
  }
  return out;
}

std::optional<std::vector<SqsMessage>> SqsClient::parse_receive(std::string_view body,
                                                                std::string* err) {
  std::vector<SqsMessage> out;
  // An empty receive can come back as an empty body (some servers) as well as {} or
  // {"Messages":[]}.
  if (body.find_first_not_of(" \t\r\n") == std::string_view::npos) return out;
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (auto e = parser.parse(body.data(), body.size()).get(doc); e != simdjson::SUCCESS) {
    *err = std::string("ReceiveMessage answer is not JSON: ") + simdjson::error_message(e);
    return std::nullopt;
  }
  simdjson::dom::array msgs;
  auto got = doc["Messages"].get(msgs);
  if (got == simdjson::NO_SUCH_FIELD) return out;
  if (got != simdjson::SUCCESS) {
    *err = "ReceiveMessage answer: Messages is not an array";
    return std::nullopt;
  }
  for (simdjson::dom::element m : msgs) {
    SqsMessage s;
    s.id = std::string(str_or(m, "MessageId"));
    s.receipt_handle = std::string(str_or(m, "ReceiptHandle"));
    std::string_view b;
    if (m["Body"].get(b) != simdjson::SUCCESS || s.receipt_handle.empty()) {
      *err = fmt::format("ReceiveMessage answer: message {} has no Body or ReceiptHandle",
                         s.id.empty() ? "?" : s.id);
      return std::nullopt;
    }
    s.body = std::string(b);
    simdjson::dom::element attrs;
    if (m["Attributes"].get(attrs) == simdjson::SUCCESS) {
      s.receive_count =
          static_cast<int>(std::min<int64_t>(int_attr(attrs, "ApproximateReceiveCount"), 1 << 30));
      s.sent_ms = int_attr(attrs, "SentTimestamp");
    }
    out.push_back(std::move(s));
  }
  return out;
}

std::optional<std::vector<SqsBatchFailure>> SqsClient::parse_batch(std::string_view body,
                                                                   std::string* err) {
  std::vector<SqsBatchFailure> out;
  if (body.find_first_not_of(" \t\r\n") == std::string_view::npos) return out;  // nothing failed
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (auto e = parser.parse(body.data(), body.size()).get(doc); e != simdjson::SUCCESS) {
    *err = std::string("batch answer is not JSON: ") + simdjson::error_message(e);
    return std::nullopt;
  }
  simdjson::dom::array failed;
  if (doc["Failed"].get(failed) != simdjson::SUCCESS) return out;
  for (simdjson::dom::element f : failed) {
    SqsBatchFailure x;
    x.id = std::string(str_or(f, "Id"));
    x.code = std::string(str_or(f, "Code"));
    x.message = std::string(str_or(f, "Message"));
    bool sf = true;
    if (f["SenderFault"].get(sf) == simdjson::SUCCESS) x.sender_fault = sf;
    out.push_back(std::move(x));
  }
  return out;
}

awaitable<SqsResult<std::vector<SqsMessage>>> SqsClient::receive(int max, std::chrono::seconds wait,
                                                                 std::chrono::seconds visibility) {
  SqsResult<std::vector<SqsMessage>> out;
  std::string body = "{\"QueueUrl\":";
  json_quote_append(body, queue_url_);
  body += fmt::format(
      ",\"MaxNumberOfMessages\":{},\"WaitTimeSeconds\":{},\"VisibilityTimeout\":{},"
      "\"AttributeNames\":[\"All\"],\"MessageSystemAttributeNames\":[\"ApproximateReceiveCount\","
      "\"SentTimestamp\"]}}",
      std::clamp(max, 1, 10), std::clamp<int64_t>(wait.count(), 0, 20),
      std::clamp<int64_t>(visibility.count(), 0, 43200));
  // The long poll holds the request open for `wait`: the timeout leaves room for it.
  HttpResponse r =
      co_await call("ReceiveMessage", std::move(body), wait + std::chrono::seconds(30));
  if (r.status != 200) {
    out.error = explain(r, "ReceiveMessage");
    co_return out;
  }
  std::string err;
  auto msgs = parse_receive(r.body, &err);
  if (!msgs) {
    out.error = SqsError{SqsError::Kind::kOther, "",
                         fmt::format("sqs:ReceiveMessage on {}: {}", queue_url_, err)};
    co_return out;
  }
  out.value = std::move(*msgs);
  co_return out;
}

awaitable<SqsResult<std::vector<SqsBatchFailure>>> SqsClient::batch(
    std::string_view action, const std::vector<SqsBatchEntry>& entries, bool visibility) {
  SqsResult<std::vector<SqsBatchFailure>> out;
  out.value.emplace();
  for (size_t at = 0; at < entries.size(); at += kMaxBatch) {
    size_t end = std::min(entries.size(), at + kMaxBatch);
    std::string body = "{\"QueueUrl\":";
    json_quote_append(body, queue_url_);
    body += ",\"Entries\":[";
    for (size_t i = at; i < end; ++i) {
      if (i > at) body += ',';
      body += "{\"Id\":";
      json_quote_append(body, entries[i].id);
      body += ",\"ReceiptHandle\":";
      json_quote_append(body, entries[i].receipt_handle);
      if (visibility)
        body +=
            fmt::format(",\"VisibilityTimeout\":{}", std::clamp(entries[i].visibility_s, 0, 43200));
      body += '}';
    }
    body += "]}";
    HttpResponse r = co_await call(action, std::move(body), std::chrono::seconds(30));
    std::string err;
    std::optional<std::vector<SqsBatchFailure>> failed;
    if (r.status == 200) failed = parse_batch(r.body, &err);
    if (!failed) {
      SqsError e = r.status == 200
                       ? SqsError{SqsError::Kind::kOther, "",
                                  fmt::format("sqs:{} on {}: {}", action, queue_url_, err)}
                       : explain(r, action);
      for (size_t i = at; i < end; ++i)
        out.value->push_back({entries[i].id, e.code, e.message, false});
      if (!out.error) out.error = std::move(e);
      continue;
    }
    for (auto& f : *failed) out.value->push_back(std::move(f));
  }
  co_return out;
}

awaitable<SqsResult<std::vector<SqsBatchFailure>>> SqsClient::delete_batch(
    const std::vector<SqsBatchEntry>& entries) {
  co_return co_await batch("DeleteMessageBatch", entries, false);
}

awaitable<SqsResult<std::vector<SqsBatchFailure>>> SqsClient::change_visibility_batch(
    const std::vector<SqsBatchEntry>& entries) {
  co_return co_await batch("ChangeMessageVisibilityBatch", entries, true);
}

awaitable<SqsResult<std::map<std::string, std::string>>> SqsClient::attributes() {
  SqsResult<std::map<std::string, std::string>> out;
  std::string body = "{\"QueueUrl\":";
  json_quote_append(body, queue_url_);
  body += ",\"AttributeNames\":[\"All\"]}";
  HttpResponse r = co_await call("GetQueueAttributes", std::move(body), std::chrono::seconds(30));
  if (r.status != 200) {
    out.error = explain(r, "GetQueueAttributes");
    co_return out;
  }
  std::map<std::string, std::string> attrs;
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  simdjson::dom::object obj;
  if (parser.parse(r.body).get(doc) == simdjson::SUCCESS &&
      doc["Attributes"].get(obj) == simdjson::SUCCESS) {
    for (auto [k, v] : obj) {
      std::string_view s;
      if (v.get(s) == simdjson::SUCCESS) attrs.emplace(std::string(k), std::string(s));
    }
  }
  out.value = std::move(attrs);
  co_return out;
}

}  // namespace logship::aws
