#include "agent/core/asio.h"

#include <doctest/doctest.h>
#include <simdjson.h>
#include <zlib.h>
#include <boost/asio/use_future.hpp>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <future>
#include <mutex>
#include <sstream>

#include "plugins/sinks/splunk_hec/request_builder.h"
#include "plugins/sinks/splunk_hec/service.h"
#include "plugins/sinks/splunk_hec/sink.h"
#include "tests/unit/net/test_http_server.h"

using namespace logship;
using namespace std::chrono_literals;
using test::TestHttpServer;
using test::TestLoop;

namespace {

std::string gunzip(const std::string& in) {
  z_stream zs{};
  REQUIRE(inflateInit2(&zs, 16 + MAX_WBITS) == Z_OK);
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  zs.avail_in = static_cast<uInt>(in.size());
  std::string out;
  char buf[65536];
  int rc;
  do {
    zs.next_out = reinterpret_cast<Bytef*>(buf);
    zs.avail_out = sizeof buf;
    rc = inflate(&zs, Z_NO_FLUSH);
    REQUIRE((rc == Z_OK || rc == Z_STREAM_END));
    out.append(buf, sizeof buf - zs.avail_out);
  } while (rc != Z_STREAM_END);
  inflateEnd(&zs);
  return out;
}

/// Records the merged status of each source batch.
struct AckLog {
  std::mutex mu;
  std::vector<std::pair<int, DeliveryStatus>> done;
  AckHandle make(int id) {
    return AckHandle::make([this, id](DeliveryStatus s) {
      std::lock_guard lk(mu);
      done.emplace_back(id, s);
    });
  }
  std::vector<std::pair<int, DeliveryStatus>> get() {
    std::lock_guard lk(mu);
    return done;
  }
};

BatchRef make_batch(AckLog& log, int id, int events, const std::string& prefix = "event") {
  EventBatch b;
  for (int i = 0; i < events; ++i) {
    Event& e = b.add(prefix + " " + std::to_string(id) + "/" + std::to_string(i),
                     1700000000000000000LL + i * 1000000LL);
    e.host = b.intern("host-a");
  }
  return BatchRef{std::make_shared<const EventBatch>(std::move(b)), log.make(id)};
}

HecSinkConfig test_config(const std::string& url) {
  HecSinkConfig c;
  c.endpoints = {url};
  c.token = std::make_shared<Secret>("tok-123", "");
  c.retry_initial_backoff = 5ms;
  c.retry_max_backoff = 20ms;
  c.batch_timeout = 5ms;
  c.request_timeout = 5s;
  c.request_concurrency = 2;
  return c;
}

size_t count_documents(const std::string& body) {
  simdjson::dom::parser parser;
  simdjson::dom::document_stream stream;
  if (parser.parse_many(body.data(), body.size(), 1 << 20).get(stream)) return 0;
  size_t n = 0;
  for (auto doc : stream) {
    if (doc.error()) return 0;
    ++n;
  }
  return n;
}

/// Runs the sink over `batches` (then closes the channel) and waits for run() to return.
void run_sink(TestLoop& loop, HecSink& sink, std::vector<BatchRef> batches) {
  BatchChannel in(64 << 20, 1024);
  for (auto& b : batches) {
    size_t bytes = b.batch->byte_size();
    REQUIRE(in.try_send(b, bytes));
  }
  in.close();
  auto fut = asio::co_spawn(loop.executor(), sink.run(in), asio::use_future);
  REQUIRE(fut.wait_for(20s) == std::future_status::ready);
  fut.get();
}

ComponentContext test_context(TestLoop& loop, const std::string& dir) {
  ComponentContext ctx;
  ctx.id = "hec_test";
  ctx.type = "splunk_hec";
  ctx.kind = "sink";
  ctx.data_dir = dir;
  ctx.executor = loop.executor();
  return ctx;
}

std::string temp_dir(const std::string& name) {
  auto p = std::filesystem::temp_directory_path() /
           ("logship_hec_" + name + "_" + std::to_string(::getpid()));
  std::filesystem::remove_all(p);
  std::filesystem::create_directories(p);
  return p.string();
}

}  // namespace

TEST_CASE("HEC request builder splits a source batch over requests with shared acks") {
  // Verifies max_events cuts, one obligation per part, and the merged status fires once.
  HecSinkConfig c = test_config("http://x");
  c.batch_max_events = 4;
  c.compression = HecSinkConfig::Compression::kNone;
  HecRequestBuilder builder(c);
  AckLog log;
  std::vector<HecRequest> ready;
  builder.add(make_batch(log, 1, 10), ready);
  CHECK(ready.size() == 2);
  builder.flush(ready);
  REQUIRE(ready.size() == 3);
  CHECK(ready[0].events == 4);
  CHECK(ready[1].events == 4);
  CHECK(ready[2].events == 2);
  CHECK(count_documents(ready[0].body) == 4);
  for (auto& r : ready) REQUIRE(r.parts.size() == 1);
  CHECK(ready[2].parts[0].begin == 8);
  CHECK(ready[2].parts[0].end == 10);
  ready[0].finish(DeliveryStatus::kDelivered);
  ready[2].finish(DeliveryStatus::kDelivered);
  CHECK(log.get().empty());
  ready[1].finish(DeliveryStatus::kDeadLettered);
  auto done = log.get();
  REQUIRE(done.size() == 1);
  CHECK(done[0].second == DeliveryStatus::kDeadLettered);
}

TEST_CASE("HEC request builder keeps the uncompressed body under batch.max_bytes") {
  // Verifies byte-based cuts and that several source batches share one request.
  HecSinkConfig c = test_config("http://x");
  c.batch_max_bytes = 1024;
  c.compression = HecSinkConfig::Compression::kNone;
  HecRequestBuilder builder(c);
  AckLog log;
  std::vector<HecRequest> ready;
  builder.add(make_batch(log, 1, 3), ready);
  builder.add(make_batch(log, 2, 30), ready);
  builder.flush(ready);
  size_t events = 0;
  for (auto& r : ready) {
    CHECK(r.body.size() <= 1024);
    CHECK(r.uncompressed_bytes == r.body.size());
    events += r.events;
    CHECK(count_documents(r.body) == r.events);
  }
  CHECK(events == 33);
  CHECK(ready.size() > 1);
  CHECK(ready[0].parts.size() == 2);  // batch 1 whole, then the start of batch 2
}

TEST_CASE("HEC gzip body inflates back to the original") {
  // Verifies libdeflate's gzip output with zlib.
  HecSinkConfig plain = test_config("http://x");
  plain.compression = HecSinkConfig::Compression::kNone;
  HecSinkConfig gz = test_config("http://x");
  gz.compression_level = 6;
  AckLog log;
  HecRequestBuilder a(plain), b(gz);
  std::vector<HecRequest> ra, rb;
  a.add(make_batch(log, 1, 200), ra);
  b.add(make_batch(log, 1, 200), rb);
  a.flush(ra);
  b.flush(rb);
  REQUIRE(ra.size() == 1);
  REQUIRE(rb.size() == 1);
  CHECK_FALSE(ra[0].gzip);
  CHECK(rb[0].gzip);
  CHECK(rb[0].body.size() < ra[0].body.size());
  CHECK(rb[0].uncompressed_bytes == ra[0].body.size());
  CHECK(gunzip(rb[0].body) == ra[0].body);
}

TEST_CASE("HEC responses map to delivered, retry, auth and reject outcomes") {
  // Verifies the HEC.md §1.7/1.8 classification and the parsing of the reply body.
  auto resp = [](long status, std::string body, std::string retry_after = "") {
    HttpResponse r;
    r.status = status;
    r.body = std::move(body);
    if (!retry_after.empty()) r.headers.emplace_back("retry-after", retry_after);
    return classify_hec_response(r);
  };
  auto ok = resp(200, R"({"text":"Success","code":0,"ackId":7})");
  CHECK(ok.outcome == HecOutcome::kDelivered);
  CHECK(ok.ack_id == std::optional<uint64_t>(7));
  auto busy = resp(503, R"({"text":"Server is busy","code":9})", "3");
  CHECK(busy.outcome == HecOutcome::kRetry);
  CHECK(busy.error == "http_503");
  CHECK(busy.retry_after == std::optional<std::chrono::seconds>(3s));
  CHECK(busy.describe() == "HTTP 503, code 9: Server is busy");
  CHECK(resp(429, "").outcome == HecOutcome::kRetry);
  CHECK(resp(408, "").outcome == HecOutcome::kRetry);
  CHECK(resp(500, "").outcome == HecOutcome::kRetry);
  CHECK(resp(401, R"({"text":"Token is required","code":2})").outcome == HecOutcome::kAuth);
  CHECK(resp(403, R"({"text":"Invalid token","code":4})").outcome == HecOutcome::kAuth);
  auto bad = resp(400, R"({"text":"Incorrect index","code":7,"invalid-event-number":1})");
  CHECK(bad.outcome == HecOutcome::kReject);
  CHECK(bad.code == 7);
  CHECK(bad.invalid_event_number == std::optional<int64_t>(1));
  CHECK(resp(413, "").outcome == HecOutcome::kReject);
  HttpResponse t;
  t.curl_code = 28;
  t.error = "Timeout was reached";
  auto te = classify_hec_response(t);
  CHECK(te.outcome == HecOutcome::kRetry);
  CHECK(te.error == "timeout");
}

TEST_CASE("HEC channel is a random version-4 GUID") {
  // Verifies the X-Splunk-Request-Channel format.
  std::string g = make_hec_channel();
  REQUIRE(g.size() == 36);
  CHECK(g[8] == '-');
  CHECK(g[14] == '4');
  CHECK(std::string("89AB").find(g[19]) != std::string::npos);
  CHECK(make_hec_channel() != g);
}

TEST_CASE("HEC sink retries 503 responses and then delivers every event") {
  // Verifies retries with backoff, the request headers, gzip, and kDelivered acks.
  std::atomic<int> calls{0};
  std::atomic<int> health_probes{0};
  TestHttpServer server([&](const TestHttpServer::Request& req) {
    if (req.target == "/services/collector/health") {  // probed before the endpoint resumes
      ++health_probes;
      return TestHttpServer::response(200, R"({"text":"HEC is healthy","code":17})");
    }
    if (calls++ < 2) return TestHttpServer::response(503, R"({"text":"Server is busy","code":9})");
    return TestHttpServer::response(200, R"({"text":"Success","code":0})");
  });
  TestLoop loop(2);
  std::string dir = temp_dir("retry");
  {
    HecSinkConfig cfg = test_config(server.url());
    cfg.request_concurrency = 1;
    HecSink sink(cfg, test_context(loop, dir));
    AckLog log;
    std::vector<BatchRef> batches;
    batches.push_back(make_batch(log, 1, 5));
    batches.push_back(make_batch(log, 2, 7));
    run_sink(loop, sink, std::move(batches));
    auto done = log.get();
    REQUIRE(done.size() == 2);
    for (auto& [id, s] : done) CHECK(s == DeliveryStatus::kDelivered);
    auto got = server.received();
    CHECK(health_probes == 2);  // one health probe after each 503
    std::erase_if(got, [](auto& r) { return r.target == "/services/collector/health"; });
    REQUIRE(got.size() == 3);
    for (auto& r : got) {
      CHECK(r.target == "/services/collector/event");
      CHECK(r.header("authorization") == "Splunk tok-123");
      CHECK(r.header("content-type") == "application/json");
      CHECK(r.header("content-encoding") == "gzip");
      CHECK(r.header("x-splunk-request-channel") == got[0].header("x-splunk-request-channel"));
      CHECK(r.header("x-splunk-request-channel").size() == 36);  // one GUID per endpoint
      CHECK(r.body == got[0].body);  // the same body is resent
    }
    CHECK(count_documents(gunzip(got[2].body)) == 12);
    CHECK(metrics().value("logship_component_sent_events_total",
                          {{"component_id", "hec_test"},
                           {"component_kind", "sink"},
                           {"component_type", "splunk_hec"}}) >= 12);
    CHECK(metrics().value("logship_component_errors_total", {{"component_id", "hec_test"},
                                                             {"component_kind", "sink"},
                                                             {"component_type", "splunk_hec"},
                                                             {"error", "http_503"},
                                                             {"stage", "send"}}) >= 2);
  }
  std::filesystem::remove_all(dir);
}

TEST_CASE("HEC sink dead-letters events refused with 400") {
  // Verifies the dead-letter file lines and the kDeadLettered status.
  TestHttpServer server([&](const TestHttpServer::Request&) {
    return TestHttpServer::response(400, R"({"text":"Incorrect index","code":7})");
  });
  TestLoop loop(2);
  std::string dir = temp_dir("dead");
  {
    HecSinkConfig cfg = test_config(server.url());
    cfg.dead_letter_path = dir + "/dead_letter/hec_test.jsonl";
    HecSink sink(cfg, test_context(loop, dir));
    AckLog log;
    std::vector<BatchRef> batches;
    batches.push_back(make_batch(log, 1, 3, "bad \"quoted\""));
    run_sink(loop, sink, std::move(batches));
    auto done = log.get();
    REQUIRE(done.size() == 1);
    CHECK(done[0].second == DeliveryStatus::kDeadLettered);
    CHECK(server.requests() == 1);
    std::ifstream f(cfg.dead_letter_path);
    REQUIRE(f.good());
    std::vector<std::string> lines;
    for (std::string line; std::getline(f, line);) lines.push_back(line);
    REQUIRE(lines.size() == 3);
    simdjson::dom::parser parser;
    for (size_t i = 0; i < lines.size(); ++i) {
      simdjson::dom::element doc;
      REQUIRE(parser.parse(lines[i]).get(doc) == simdjson::SUCCESS);
      CHECK(std::string_view(doc["event"]) == "bad \"quoted\" 1/" + std::to_string(i));
      CHECK(std::string_view(doc["host"]) == "host-a");
      CHECK(int64_t(doc["status"]) == 400);
      CHECK(std::string_view(doc["endpoint"]) == server.url());
      CHECK(std::string_view(doc["error"]) == "HTTP 400, code 7: Incorrect index");
      CHECK(double(doc["time"]) >= 1.7e9);
    }
    auto perms = std::filesystem::status(cfg.dead_letter_path).permissions();
    CHECK((perms & std::filesystem::perms::group_read) == std::filesystem::perms::none);
  }
  std::filesystem::remove_all(dir);
}

TEST_CASE("HEC sink gives up a retrying request when the drain deadline passes") {
  // Verifies run() returns after ctx.abort and the undelivered batch reports kErrored.
  TestHttpServer server([&](const TestHttpServer::Request&) {
    return TestHttpServer::response(503, R"({"text":"Server is busy","code":9})");
  });
  TestLoop loop(2);
  std::string dir = temp_dir("abort");
  {
    Lifecycle abort;
    ComponentContext ctx = test_context(loop, dir);
    ctx.abort = &abort;
    HecSink sink(test_config(server.url()), ctx);
    AckLog log;
    BatchChannel in(1 << 20, 16);
    BatchRef b = make_batch(log, 1, 2);
    size_t bytes = b.batch->byte_size();
    REQUIRE(in.try_send(b, bytes));
    in.close();
    auto fut = asio::co_spawn(loop.executor(), sink.run(in), asio::use_future);
    for (int i = 0; i < 500 && server.requests() < 2; ++i) std::this_thread::sleep_for(5ms);
    CHECK(server.requests() >= 2);
    abort.request_stop();
    REQUIRE(fut.wait_for(5s) == std::future_status::ready);
    fut.get();
    auto done = log.get();
    REQUIRE(done.size() == 1);
    CHECK(done[0].second == DeliveryStatus::kErrored);
  }
  std::filesystem::remove_all(dir);
}

TEST_CASE("HEC sink sends raw requests with metadata as query parameters") {
  // Verifies /raw, the channel query parameter and one request per metadata set.
  TestHttpServer server([&](const TestHttpServer::Request&) {
    return TestHttpServer::response(200, R"({"text":"Success","code":0})");
  });
  TestLoop loop(2);
  std::string dir = temp_dir("raw");
  {
    HecSinkConfig cfg = test_config(server.url());
    cfg.target = HecSinkConfig::Target::kRaw;
    cfg.compression = HecSinkConfig::Compression::kNone;
    std::string err;
    REQUIRE(HecTemplate::parse("app:log", cfg.sourcetype, err));
    HecSink sink(cfg, test_context(loop, dir));
    AckLog log;
    EventBatch b;
    b.add("one", 1).host = b.intern("h 1");
    b.add("two", 2).host = b.intern("h 1");
    b.add("three", 3).host = b.intern("h2");
    std::vector<BatchRef> batches;
    batches.push_back(BatchRef{std::make_shared<const EventBatch>(std::move(b)), log.make(1)});
    run_sink(loop, sink, std::move(batches));
    auto got = server.received();
    REQUIRE(got.size() == 2);
    std::sort(got.begin(), got.end(),
              [](auto& x, auto& y) { return x.body.size() > y.body.size(); });
    std::string channel = got[0].header("x-splunk-request-channel");
    CHECK(channel.size() == 36);
    CHECK(got[0].target ==
          "/services/collector/raw?channel=" + channel + "&host=h%201&sourcetype=app%3Alog");
    CHECK(got[0].body == "one\ntwo\n");
    CHECK(got[1].body == "three\n");
    auto done = log.get();
    REQUIRE(done.size() == 1);
    CHECK(done[0].second == DeliveryStatus::kDelivered);
  }
  std::filesystem::remove_all(dir);
}
