#include "plugins/sources/s3/s3_source.h"

#include <fmt/format.h>
#include <openssl/evp.h>
#include <openssl/md5.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <deque>
#include <map>
#include <mutex>
#include <set>

#include "agent/aws/client.h"
#include "agent/aws/credentials.h"
#include "agent/aws/sigv4.h"
#include "agent/core/secret.h"
#include "agent/net/http_client.h"
#include "agent/observe/metrics.h"
#include "agent/pipeline/checkpoints.h"
#include "agent/pipeline/wait_queue.h"
#include "plugins/formats/decompress.h"
#include "plugins/formats/format.h"
#include "plugins/sources/file/discovery.h"
#include "plugins/sources/s3/listing.h"
#include "plugins/sources/s3/state.h"

namespace logship::s3 {
namespace {

using Clock = std::chrono::steady_clock;
constexpr uint64_t kChunkBytes = 4ull << 20;      // one ranged GET
constexpr size_t kSliceBytes = 256 * 1024;         // compressed bytes decompressed at a time
constexpr size_t kBatchBytes = 1 << 20;            // event text per batch
constexpr size_t kBatchEvents = 10000;
constexpr size_t kMinSkipRun = 1000;               // old keys in a row worth skipping
constexpr auto kFullPassEvery = std::chrono::hours(1);
constexpr int64_t kPruneMarginNs = 3600ll * 1'000'000'000;

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string base64(std::string_view in) {
  std::string out(4 * ((in.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(in.data()),
                          static_cast<int>(in.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

std::string unbase64(std::string_view in) {
  std::string out(3 * (in.size() / 4) + 3, '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(in.data()),
                          static_cast<int>(in.size()));
  if (n < 0) return {};
  size_t len = static_cast<size_t>(n);
  if (!in.empty() && in.back() == '=') --len;
  if (in.size() > 1 && in[in.size() - 2] == '=') --len;
  out.resize(len);
  return out;
}

/// The delivery bookkeeping of one object being read: batches complete in any order; the state
/// records the acknowledged prefix of records; the object is done once the stream ended and
/// every batch is acknowledged. Shared with the acknowledgement callbacks (any thread).
struct ObjectProgress {
  ObjectInfo obj;
  State* state = nullptr;
  CheckpointStore* checkpoints = nullptr;
  std::string id;
  std::function<void(const ObjectInfo&, bool finished)> on_final;  // releases the active slot

  std::mutex mu;
  struct Pending {
    uint64_t end;
    uint8_t st;  // 0 pending, 1 final, 2 errored
  };
  std::deque<Pending> pending;
  uint64_t acked = 0;
  bool complete = false;  // every record was read and emitted
  bool failed = false;    // final failure already recorded
  bool released = false;
  bool reader_finished = false;

  void add(uint64_t end) {
    std::lock_guard lk(mu);
    pending.push_back({end, 0});
  }
  void ack(uint64_t end, DeliveryStatus s) {
    bool release = false, finished = false;
    {
      std::lock_guard lk(mu);
      for (auto& p : pending)
        if (p.end == end) p.st = is_final(s) ? 1 : 2;
      bool moved = false;
      while (!pending.empty() && pending.front().st == 1) {
        acked = pending.front().end;
        pending.pop_front();
        moved = true;
      }
      if (!failed && moved) state->progress(obj, acked);
      if (!failed && complete && pending.empty()) {
        state->done(obj);
        finished = true;
      }
      if (moved || finished) checkpoints->mark_dirty(id);
      release = finish_locked();
    }
    if (release) on_final(obj, finished);
  }
  /// The reader stopped (end of stream, failure, or stop): releases the object once nothing is
  /// pending any more.
  void reader_done(bool stream_complete) {
    bool release = false, finished = false;
    {
      std::lock_guard lk(mu);
      complete = stream_complete;
      reader_finished = true;
      if (!failed && complete && pending.empty()) {
        state->done(obj);
        checkpoints->mark_dirty(id);
        finished = true;
      }
      release = finish_locked();
    }
    if (release) on_final(obj, finished);
  }
  void fail(const std::string& reason) {
    std::lock_guard lk(mu);
    failed = true;
    state->failed(obj, reason);
    checkpoints->mark_dirty(id);
  }

 private:
  /// The object leaves the active set once its reader stopped and no batch is in flight: done,
  /// failed, or to be read again (resuming after the acknowledged records) at the next poll.
  bool finish_locked() {
    if (released || !reader_finished) return false;
    bool idle = std::all_of(pending.begin(), pending.end(), [](auto& p) { return p.st != 0; });
    if (!idle) return false;
    released = true;
    return true;
  }
};

class S3Source final : public Source {
 public:
  S3Source(S3SourceConfig cfg, const ComponentContext& ctx)
      : cfg_(std::move(cfg)),
        ctx_(ctx),
        m_(ctx.id, ctx.type, ctx.kind),
        objects_done_(metrics().counter("logship_s3_objects_total", "S3 objects finished, by final status",
                                        {{"component_id", ctx.id}, {"status", "done"}})),
        objects_failed_(metrics().counter("logship_s3_objects_total", "S3 objects finished, by final status",
                                          {{"component_id", ctx.id}, {"status", "failed"}})),
        objects_listed_(metrics().counter("logship_s3_objects_listed_total",
                                          "Objects returned by ListObjectsV2", {{"component_id", ctx.id}})),
        list_requests_(metrics().counter("logship_s3_list_requests_total", "ListObjectsV2 requests",
                                         {{"component_id", ctx.id}})),
        get_requests_(metrics().counter("logship_s3_get_requests_total", "Ranged GET requests",
                                        {{"component_id", ctx.id}})),
        compressed_bytes_(metrics().counter("logship_s3_compressed_bytes_total",
                                            "Object bytes downloaded", {{"component_id", ctx.id}})),
        decompressed_bytes_(metrics().counter("logship_s3_decompressed_bytes_total",
                                              "Object bytes after decompression",
                                              {{"component_id", ctx.id}})),
        skipdata_rows_(metrics().counter("logship_s3_vpcflow_skipdata_rows_total",
                                         "VPC flow rows with log-status SKIPDATA (records lost upstream)",
                                         {{"component_id", ctx.id}})),
        nodata_rows_(metrics().counter("logship_s3_vpcflow_nodata_rows_total",
                                       "VPC flow rows with log-status NODATA", {{"component_id", ctx.id}})),
        state_objects_(metrics().gauge("logship_s3_state_objects",
                                       "Objects remembered in the source's state (within lookback)",
                                       {{"component_id", ctx.id}})),
        active_gauge_(metrics().gauge("logship_s3_objects_in_progress", "Objects being read now",
                                      {{"component_id", ctx.id}})) {
    fopts_.format = *formats::parse_format(cfg_.format);
    fopts_.indexed_fields = cfg_.indexed_fields;
    fopts_.vpc_emit_json = cfg_.vpc_emit_json;
    compression_ = *formats::parse_compression(cfg_.compression);
    char hn[256] = {0};
    if (cfg_.host.empty() && ::gethostname(hn, sizeof hn - 1) == 0) cfg_.host = hn;
  }

  awaitable<void> run(Fanout& out) override {
    http_ = std::make_unique<HttpClient>(ctx_.executor, TlsOptions{},
                                         static_cast<int>(cfg_.max_concurrent_objects) * 2 + 2);
    std::string err;
    if (!state_.load(ctx_.checkpoints->load(ctx_.id), &err))
      spdlog::warn("[{}] checkpoint unreadable ({}); starting with an empty state", ctx_.id, err);
    ctx_.checkpoints->set_provider(ctx_.id, [this] { return state_.serialize(); });
    auto last_full = Clock::now() - kFullPassEvery;
    while (!ctx_.lifecycle->stopping()) {
      if (co_await setup()) {
        bool full = Clock::now() - last_full >= kFullPassEvery;
        if (co_await poll_once(out, full) && full) last_full = Clock::now();
      }
      if (co_await ctx_.lifecycle->sleep(cfg_.poll_interval)) break;
    }
    co_await wait_workers(0);
    http_->shutdown();
  }

 private:
  // ---- setup: region, endpoint, credentials ---------------------------------------------------
  awaitable<bool> setup() {
    if (client_) co_return true;
    try {
      region_ = co_await aws::resolve_region(*http_, cfg_.region, cfg_.credentials.profile);
    } catch (const std::exception& e) {
      report_error(m_, "setup", "region", fmt::format("bucket {}: no AWS region: {}", cfg_.bucket, e.what()));
      co_return false;
    }
    endpoint_ = aws::resolve_endpoint("s3", cfg_.endpoint, region_);
    path_style_ = aws::force_path_style(endpoint_, cfg_.force_path_style.value_or(false));
    aws::CredentialProviderOptions po;
    po.config.access_key_id = cfg_.credentials.access_key_id;
    if (cfg_.credentials.secret_access_key)
      po.config.secret_access_key = cfg_.credentials.secret_access_key->value();
    if (cfg_.credentials.session_token) po.config.session_token = cfg_.credentials.session_token->value();
    po.config.profile = cfg_.credentials.profile;
    po.config.role_arn = cfg_.credentials.role_arn;
    po.region = region_;
    creds_ = std::make_unique<aws::CredentialProvider>(*http_, std::move(po));
    client_ = std::make_unique<aws::AwsClient>(*http_, *creds_);
    // Joined by hand: fmt::join trips GCC 12's -Wstringop-overflow false positive at -O3.
    std::string prefixes;
    for (auto& p : cfg_.prefix) prefixes += (prefixes.empty() ? "\"" : ", \"") + p + "\"";
    spdlog::info("[{}] reading s3://{}/ (prefixes: {}) from {} in {}{}", ctx_.id, cfg_.bucket, prefixes,
                 endpoint_, region_, path_style_ ? ", path-style" : "");
    co_return true;
  }

  std::string object_url(const std::string& key) const {
    std::string enc = aws::uri_encode(key, /*encode_slash=*/false);
    if (path_style_) return endpoint_ + "/" + cfg_.bucket + "/" + enc;
    auto p = endpoint_.find("://");
    return endpoint_.substr(0, p + 3) + cfg_.bucket + "." + endpoint_.substr(p + 3) + "/" + enc;
  }
  std::string bucket_url() const {
    if (path_style_) return endpoint_ + "/" + cfg_.bucket;
    auto p = endpoint_.find("://");
    return endpoint_.substr(0, p + 3) + cfg_.bucket + "." + endpoint_.substr(p + 3) + "/";
  }

  aws::SendOptions send_options() const {
    aws::SendOptions so;
    so.service = "s3";
    so.region = region_;
    so.lifecycle = ctx_.lifecycle;
    return so;
  }

  /// AwsClient::send, with "no credentials" turned into a failed response.
  awaitable<HttpResponse> send(HttpRequest req) {
    try {
      co_return co_await client_->send(std::move(req), send_options());
    } catch (const std::exception& e) {
      HttpResponse r;
      r.error = std::string("no AWS credentials: ") + e.what();
      co_return r;
    }
  }

  /// A clear message for an S3 error on `what` (bucket, or bucket and key).
  std::string explain(const HttpResponse& r, const std::string& what) const {
    if (r.transport_error()) return fmt::format("{}: {}", what, r.error);
    auto e = aws::parse_aws_error(r);
    std::string code = e ? e->code : std::string();
    std::string msg = fmt::format("{}: HTTP {}{}{}", what, r.status, code.empty() ? "" : " " + code,
                                  e && !e->message.empty() ? " (" + e->message + ")" : "");
    if (code == "AccessDenied" || (r.status == 403 && code.empty()))
      msg += "; the credentials need s3:ListBucket on the bucket and s3:GetObject on its keys, and "
             "kms:Decrypt on the KMS key of SSE-KMS encrypted objects";
    if (code == "SignatureDoesNotMatch" || code == "InvalidAccessKeyId")
      msg += "; check the access key id and secret access key";
    return msg;
  }

  // ---- listing ------------------------------------------------------------------------------
  bool wanted(const ObjectInfo& o) const {
    if (o.key.empty() || o.key.back() == '/') return false;
    if (fopts_.format == formats::Format::kCloudTrail) {
      if (o.key.find("/CloudTrail-Digest/") != std::string::npos ||
          o.key.rfind("CloudTrail-Digest/", 0) == 0)
        return false;
      if (!cfg_.include_insights && (o.key.find("/CloudTrail-Insight/") != std::string::npos ||
                                     o.key.rfind("CloudTrail-Insight/", 0) == 0))
        return false;
    }
    if (!cfg_.key_include.empty() &&
        std::none_of(cfg_.key_include.begin(), cfg_.key_include.end(),
                     [&](const std::string& g) { return glob_match(g, o.key); }))
      return false;
    for (auto& g : cfg_.key_exclude)
      if (glob_match(g, o.key)) return false;
    return true;
  }

  struct Run {
    std::string first, last;
  };

  /// Lists every prefix once, dispatching new objects to readers as pages arrive. Returns false
  /// when a listing failed (logged).
  awaitable<bool> poll_once(Fanout& out, bool full) {
    int64_t now = now_ns();
    int64_t cutoff = now - std::chrono::duration_cast<std::chrono::nanoseconds>(cfg_.lookback).count();
    if (cfg_.since_ns) cutoff = std::max(cutoff, *cfg_.since_ns);
    state_.prune(now - std::chrono::duration_cast<std::chrono::nanoseconds>(cfg_.lookback).count() -
                 kPruneMarginNs);
    bool ok = true;
    for (auto& prefix : cfg_.prefix) {
      if (ctx_.lifecycle->stopping()) break;
      ok = co_await list_prefix(prefix, cutoff, full, out) && ok;
    }
    state_objects_.set(static_cast<int64_t>(state_.size()));
    ctx_.checkpoints->mark_dirty(ctx_.id);
    co_return ok;
  }

  awaitable<bool> list_prefix(const std::string& prefix, int64_t cutoff, bool full, Fanout& out) {
    auto& runs = runs_[prefix];
    std::vector<Run> new_runs;
    Run cur;
    size_t cur_n = 0;
    auto close_run = [&] {
      if (cur_n >= kMinSkipRun) new_runs.push_back(cur);
      cur_n = 0;
    };
    std::string token, start_after;
    while (!ctx_.lifecycle->stopping()) {
      HttpRequest req;
      req.method = "GET";
      std::string url = bucket_url() + "?list-type=2&max-keys=1000&prefix=" + aws::uri_encode(prefix, true);
      if (!token.empty()) url += "&continuation-token=" + aws::uri_encode(token, true);
      else if (!start_after.empty()) url += "&start-after=" + aws::uri_encode(start_after, true);
      req.url = std::move(url);
      req.timeout = std::chrono::seconds(60);
      list_requests_.inc();
      HttpResponse r = co_await send(std::move(req));
      if (r.status != 200) {
        report_error_for(m_, "list", r.transport_error() ? "transport" : "http",
                         cfg_.bucket + "/" + prefix, std::chrono::minutes(10),
                         explain(r, fmt::format("listing s3://{}/{}", cfg_.bucket, prefix)) +
                             "; retrying at the next poll");
        co_return false;
      }
      std::string err;
      auto page = parse_list_objects_v2(r.body, &err);
      if (!page) {
        report_error_for(m_, "list", "bad_response", cfg_.bucket + "/" + prefix, std::chrono::minutes(10),
                         fmt::format("listing s3://{}/{}: {}; retrying at the next poll", cfg_.bucket, prefix, err));
        co_return false;
      }
      objects_listed_.inc(page->objects.size());
      for (auto& o : page->objects) {
        if (o.last_modified_ns < cutoff) {
          if (cur_n++ == 0) cur.first = o.key;
          cur.last = o.key;
          continue;
        }
        close_run();
        if (!wanted(o) || state_.finished(o) || is_active(o)) continue;
        co_await wait_workers(static_cast<size_t>(cfg_.max_concurrent_objects) - 1);
        if (ctx_.lifecycle->stopping()) break;
        start_reader(std::move(o), out);
      }
      if (!page->truncated || page->objects.empty()) break;
      token = page->next_token;
      // Jump over a run of objects that were all older than the window at the last full pass.
      if (!full) {
        const std::string& last = page->objects.back().key;
        for (auto& run : runs)
          if (run.first <= last && last < run.last) {
            token.clear();
            start_after = run.last;
            break;
          }
      }
    }
    close_run();
    if (full) runs = std::move(new_runs);
    co_return true;
  }

  // ---- readers ------------------------------------------------------------------------------
  bool is_active(const ObjectInfo& o) {
    std::lock_guard lk(mu_);
    return active_.count(State::hash(o.key, o.etag)) > 0;
  }

  awaitable<void> wait_workers(size_t at_most) {
    co_await wq_.wait(mu_, [this, at_most] { return running_ <= at_most; });
  }

  void start_reader(ObjectInfo o, Fanout& out) {
    {
      std::lock_guard lk(mu_);
      ++running_;
      active_.insert(State::hash(o.key, o.etag));
      active_gauge_.set(static_cast<int64_t>(active_.size()));
    }
    asio::co_spawn(ctx_.executor, read_object(std::move(o), out), [this](std::exception_ptr e) {
      if (e) {
        try {
          std::rethrow_exception(e);
        } catch (const std::exception& ex) {
          spdlog::error("[{}] object reader failed: {}", ctx_.id, ex.what());
        }
      }
      std::lock_guard lk(mu_);
      --running_;
      wq_.notify_all();
    });
  }

  void release(const ObjectInfo& o, bool finished, bool failed) {
    if (finished) objects_done_.inc();
    if (failed) objects_failed_.inc();
    std::lock_guard lk(mu_);
    active_.erase(State::hash(o.key, o.etag));
    active_gauge_.set(static_cast<int64_t>(active_.size()));
  }

  struct Fetch {
    std::mutex mu;
    WaitQueue wq;
    std::optional<HttpResponse> resp;
  };

  std::shared_ptr<Fetch> fetch_range(const ObjectInfo& o, uint64_t from, uint64_t to) {
    auto f = std::make_shared<Fetch>();
    HttpRequest req;
    req.method = "GET";
    req.path_as_is = true;  // keys may contain "/./" or "/../": sent and signed as written
    req.url = object_url(o.key);
    req.timeout = std::chrono::seconds(120);
    req.headers.emplace_back("Range", fmt::format("bytes={}-{}", from, to));
    if (!o.etag.empty()) req.headers.emplace_back("If-Match", "\"" + o.etag + "\"");
    if (cfg_.sse_c_key) {
      std::string key = cfg_.sse_c_key->value();
      if (key.size() == 44) key = unbase64(key);
      unsigned char md5[MD5_DIGEST_LENGTH];
      EVP_Digest(key.data(), key.size(), md5, nullptr, EVP_md5(), nullptr);
      req.headers.emplace_back("x-amz-server-side-encryption-customer-algorithm", "AES256");
      req.headers.emplace_back("x-amz-server-side-encryption-customer-key", base64(key));
      req.headers.emplace_back("x-amz-server-side-encryption-customer-key-MD5",
                               base64(std::string_view(reinterpret_cast<char*>(md5), sizeof md5)));
    }
    get_requests_.inc();
    asio::co_spawn(
        ctx_.executor,
        [this, f, req = std::move(req)]() mutable -> awaitable<void> {
          HttpResponse r = co_await send(std::move(req));
          std::lock_guard lk(f->mu);
          f->resp = std::move(r);
          f->wq.notify_all();
        },
        asio::detached);
    return f;
  }

  awaitable<HttpResponse> take(std::shared_ptr<Fetch> f) {
    co_await f->wq.wait(f->mu, [&] { return f->resp.has_value(); });
    std::lock_guard lk(f->mu);
    co_return std::move(*f->resp);
  }

  awaitable<void> read_object(ObjectInfo o, Fanout& out) {
    auto prog = std::make_shared<ObjectProgress>();
    prog->obj = o;
    prog->state = &state_;
    prog->checkpoints = ctx_.checkpoints;
    prog->id = ctx_.id;
    prog->on_final = [this](const ObjectInfo& obj, bool finished) { release(obj, finished, false); };
    const uint64_t skip = state_.resume_point(o);
    const std::string what = fmt::format("s3://{}/{}", cfg_.bucket, o.key);
    if (skip > 0)
      spdlog::info("[{}] resuming {} after record {} (delivered before the restart)", ctx_.id, what, skip);

    formats::FormatOptions fo = fopts_;
    auto parser = formats::make_parser(fo);
    std::unique_ptr<formats::Decompressor> dec;
    uint64_t index = 0;  // records seen in this object (including skipped ones)
    std::vector<std::pair<EventBatch, uint64_t>> ready;
    EventBatch batch;
    uint16_t meta[4] = {0, 0, 0, 0};  // host, source, sourcetype, index: interned once a batch
    auto start_batch = [&] {
      batch = EventBatch();
      batch.reserve(1024, kBatchBytes + 64 * 1024);
      meta[0] = batch.intern(cfg_.host);
      meta[1] = batch.intern(what);
      meta[2] = batch.intern(cfg_.sourcetype);
      meta[3] = batch.intern(cfg_.index);
    };
    start_batch();
    const int64_t read_time = now_ns();
    auto emit = [&](const formats::Record& r) {
      if (index++ < skip) return;
      Event& e = batch.add(r.text, r.time_set ? r.time_ns : read_time);
      if (r.json_value) e.flags |= Event::kJsonValue;
      if (!r.fields_json.empty()) batch.set_fields(e, r.fields_json);
      e.host = meta[0];
      e.source = meta[1];
      e.sourcetype = meta[2];
      e.index = meta[3];
      if (batch.text_bytes() >= kBatchBytes || batch.size() >= kBatchEvents) {
        ready.emplace_back(std::move(batch), index);
        start_batch();
      }
    };
    auto sink = [&](std::string_view d) {
      decompressed_bytes_.inc(d.size());
      parser->feed(d, emit);
    };
    auto send_ready = [&]() -> awaitable<bool> {
      for (auto& [b, end] : ready) {
        if (b.empty()) continue;
        m_.received_events.inc(b.size());
        m_.received_bytes.inc(b.text_bytes());
        prog->add(end);
        AckHandle ack = AckHandle::make([prog, end = end](DeliveryStatus s) { prog->ack(end, s); });
        if (!co_await out.send(std::move(b), std::move(ack))) {
          ready.clear();
          co_return false;
        }
      }
      ready.clear();
      co_return true;
    };

    std::string failure;   // final: the object is marked failed
    std::string transient; // retried at the next poll
    bool complete = false;
    try {
      uint64_t off = 0;
      std::shared_ptr<Fetch> next;
      if (o.size > 0) next = fetch_range(o, 0, std::min(o.size, kChunkBytes) - 1);
      while (off < o.size) {
        HttpResponse r = co_await take(next);
        next.reset();
        if (r.status != 206 && r.status != 200) {
          auto e = aws::parse_aws_error(r);
          std::string code = e ? e->code : "";
          if (r.status == 404 || code == "NoSuchKey") {
            failure = "deleted before it was read (NoSuchKey)";
          } else if (r.status == 412 || code == "PreconditionFailed") {
            failure = "replaced while it was read (its ETag changed); the new version is read as a new object";
          } else {
            transient = explain(r, "reading " + what);
          }
          break;
        }
        if (r.status == 200 && off > 0) {
          transient = "reading " + what + ": the server ignored the Range header";
          break;
        }
        if (!dec) {
          dec = std::make_unique<formats::Decompressor>(compression_, r.header("content-encoding").value_or(""),
                                                        cfg_.max_object_bytes);
        }
        uint64_t got = r.body.size();
        if (got == 0) {
          transient = "reading " + what + ": empty response body";
          break;
        }
        compressed_bytes_.inc(got);
        uint64_t next_off = off + got;
        if (r.status == 200) next_off = o.size = std::max<uint64_t>(got, o.size);
        if (next_off < o.size && !ctx_.lifecycle->stopping())
          next = fetch_range(o, next_off, std::min(o.size, next_off + kChunkBytes) - 1);
        std::string_view body = r.body;
        while (!body.empty()) {
          size_t n = std::min(body.size(), kSliceBytes);
          dec->feed(body.substr(0, n), sink);
          body.remove_prefix(n);
          if (!ready.empty() && !co_await send_ready()) break;
        }
        off = next_off;
        if (ctx_.lifecycle->stopping()) break;
      }
      if (failure.empty() && transient.empty() && off >= o.size && !ctx_.lifecycle->stopping()) {
        if (!dec) dec = std::make_unique<formats::Decompressor>(compression_, "", cfg_.max_object_bytes);
        dec->finish(sink);
        parser->finish(emit);
        complete = true;
      }
      if (next) co_await take(next);  // let a prefetch finish before its state goes away
    } catch (const formats::DecompressLimitError& e) {
      failure = e.what();
    } catch (const formats::DecompressError& e) {
      failure = e.what();
    } catch (const formats::FormatError& e) {
      failure = e.what();
    }
    if (!batch.empty()) ready.emplace_back(std::move(batch), index);
    bool sent = co_await send_ready();
    if (fopts_.format == formats::Format::kVpcFlow) {
      skipdata_rows_.inc(parser->skipdata_rows());
      nodata_rows_.inc(parser->nodata_rows());
      if (parser->skipdata_rows() > 0)
        report_error_for(m_, "parse", "vpcflow_skipdata", o.key, std::chrono::hours(1),
                         fmt::format("{}: {} SKIPDATA row(s): AWS could not capture some flow records "
                                     "(data lost upstream)",
                                     what, parser->skipdata_rows()));
    }
    if (!failure.empty()) {
      report_error_for(m_, "object", "failed", o.key, std::chrono::hours(1),
                       fmt::format("{} failed after {} record(s): {}; marked failed (not retried)", what,
                                   index, failure));
      prog->fail(failure);
      objects_failed_.inc();
    } else if (!transient.empty()) {
      report_error_for(m_, "object", "read", o.key, std::chrono::minutes(10), transient + "; retrying at the next poll");
    }
    prog->reader_done(complete && sent && failure.empty());
  }

  S3SourceConfig cfg_;
  ComponentContext ctx_;
  ComponentMetrics m_;
  Counter &objects_done_, &objects_failed_, &objects_listed_, &list_requests_, &get_requests_;
  Counter &compressed_bytes_, &decompressed_bytes_, &skipdata_rows_, &nodata_rows_;
  Gauge &state_objects_, &active_gauge_;
  formats::FormatOptions fopts_;
  formats::Compression compression_ = formats::Compression::kAuto;

  std::unique_ptr<HttpClient> http_;
  std::unique_ptr<aws::CredentialProvider> creds_;
  std::unique_ptr<aws::AwsClient> client_;
  std::string region_, endpoint_;
  bool path_style_ = false;

  State state_;
  std::map<std::string, std::vector<Run>> runs_;
  std::mutex mu_;
  WaitQueue wq_;
  size_t running_ = 0;
  std::set<uint64_t> active_;
};

}  // namespace

std::unique_ptr<Source> make_s3_source(S3SourceConfig cfg, const ComponentContext& ctx) {
  return std::make_unique<S3Source>(std::move(cfg), ctx);
}

}  // namespace logship::s3
