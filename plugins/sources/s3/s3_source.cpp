#include "plugins/sources/s3/s3_source.h"

#include <fmt/format.h>
#include <openssl/evp.h>
#include <openssl/crypto.h>
#include <openssl/md5.h>
#include <spdlog/spdlog.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>

#include <algorithm>
#include <array>
#include <deque>
#include <map>
#include <mutex>
#include <set>
#include <vector>

#include "agent/aws/client.h"
#include "agent/aws/credentials.h"
#include "agent/aws/kms.h"
#include "agent/aws/sigv4.h"
#include "agent/aws/sqs.h"
#include "agent/core/base64.h"
#include "agent/core/secret.h"
#include "agent/net/http_client.h"
#include "agent/observe/metrics.h"
#include "agent/pipeline/checkpoints.h"
#include "agent/pipeline/event_id.h"
#include "agent/pipeline/wait_queue.h"
#include "agent/replay/replay.h"
#include "plugins/formats/decompress.h"
#include "plugins/formats/format.h"
#include "plugins/sources/file/discovery.h"
#include "plugins/sources/s3/envelope.h"
#include "plugins/sources/s3/listing.h"
#include "plugins/sources/s3/notification.h"
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
constexpr std::chrono::seconds kTransientRetry{30};  // sqs: a message left after a transient failure

std::string env_or(const char* name, const std::string& dflt) {
  const char* v = std::getenv(name);
  return v && *v ? std::string(v) : dflt;
}

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

/// The delivery bookkeeping of one object being read: batches complete in any order; the state
/// records the acknowledged prefix of records; the object is done once the stream ended and
/// every batch is acknowledged. Shared with the acknowledgement callbacks (any thread).
struct ObjectProgress {
  ObjectInfo obj;
  State* state = nullptr;
  CheckpointStore* checkpoints = nullptr;
  std::string id;
  std::function<void(const ObjectInfo&, bool finished, bool failed)> on_final;  // releases the active slot

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
    if (release) on_final(obj, finished, failed);
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
    if (release) on_final(obj, finished, failed);
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
        rp_(ctx.replay),
        m_(ctx.id, ctx.type, ctx.kind),
        objects_done_(metrics().counter("logship_s3_objects_total",
                                        "S3 objects finished, by final status",
                                        {{"component_id", ctx.id}, {"status", "done"}})),
        objects_failed_(metrics().counter("logship_s3_objects_total",
                                          "S3 objects finished, by final status",
                                          {{"component_id", ctx.id}, {"status", "failed"}})),
        objects_listed_(metrics().counter("logship_s3_objects_listed_total",
                                          "Objects returned by ListObjectsV2",
                                          {{"component_id", ctx.id}})),
        list_requests_(metrics().counter("logship_s3_list_requests_total", "ListObjectsV2 requests",
                                         {{"component_id", ctx.id}})),
        get_requests_(metrics().counter("logship_s3_get_requests_total", "Ranged GET requests",
                                        {{"component_id", ctx.id}})),
        compressed_bytes_(metrics().counter("logship_s3_compressed_bytes_total",
                                            "Object bytes downloaded", {{"component_id", ctx.id}})),
        decompressed_bytes_(metrics().counter("logship_s3_decompressed_bytes_total",
                                              "Object bytes after decompression",
                                              {{"component_id", ctx.id}})),
        skipdata_rows_(
            metrics().counter("logship_s3_vpcflow_skipdata_rows_total",
                              "VPC flow rows with log-status SKIPDATA (records lost upstream)",
                              {{"component_id", ctx.id}})),
        nodata_rows_(metrics().counter("logship_s3_vpcflow_nodata_rows_total",
                                       "VPC flow rows with log-status NODATA",
                                       {{"component_id", ctx.id}})),
        kms_calls_(metrics().counter("logship_s3_kms_calls_total",
                                     "kms:Decrypt calls for data keys",
                                     {{"component_id", ctx.id}})),
        kms_cache_hits_(metrics().counter("logship_s3_kms_cache_hits_total",
                                          "Data keys served from the cache (no KMS call)",
                                          {{"component_id", ctx.id}})),
        state_objects_(metrics().gauge("logship_s3_state_objects",
                                       "Objects remembered in the source's state (within lookback)",
                                       {{"component_id", ctx.id}})),
        active_gauge_(metrics().gauge("logship_s3_objects_in_progress", "Objects being read now",
                                      {{"component_id", ctx.id}})) {
    if (rp_) {
      // A replay lists what the run names, once: the live mode's settings do not apply.
      cfg_.mode = "poll";
      if (rp_->limiter) {
        batch_bytes_ = rp_->limiter->batch_bytes(kBatchBytes);
        batch_events_ = rp_->limiter->batch_events(kBatchEvents);
      }
    }
    fopts_.format = *formats::parse_format(cfg_.format);
    fopts_.indexed_fields = cfg_.indexed_fields;
    fopts_.vpc_emit_json = cfg_.vpc_emit_json;
    compression_ = *formats::parse_compression(cfg_.compression);
    char hn[256] = {0};
    if (cfg_.host.empty() && ::gethostname(hn, sizeof hn - 1) == 0) cfg_.host = hn;
  }

  bool ready() const override { return cfg_.mode != "sqs" || sqs_ready_.load(); }

  awaitable<void> run(Fanout& out) override {
    http_ = std::make_unique<HttpClient>(ctx_.executor, TlsOptions{},
                                         static_cast<int>(cfg_.max_concurrent_objects) * 2 + 2);
    std::string err;
    if (!state_.load(ctx_.checkpoints->load(ctx_.id), &err))
      spdlog::warn("[{}] checkpoint unreadable ({}); starting with an empty state", ctx_.id, err);
    ctx_.checkpoints->set_provider(ctx_.id, [this] { return state_.serialize(); });
    if (cfg_.cse.enabled) {
      clean_spool();
      if (cfg_.cse.allow_legacy)
        spdlog::warn("[{}] client_side_encryption.allow_legacy: v1 (AES/CBC) and kms-wrapped objects without an "
                     "encryption context are read; they are not authenticated (an altered object is not detected)",
                     ctx_.id);
    }
    if (rp_) {
      co_await run_replay(out);
      co_return;
    }
    if (cfg_.mode == "sqs") {
      co_await run_sqs(out);
      co_return;
    }
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
    remove_spools();
  }

 private:
  // ---- setup: region, endpoint, credentials ---------------------------------------------------
  awaitable<bool> setup() {
    if (client_) co_return true;
    try {
      std::string want = cfg_.region;
      if (want.empty() && !cfg_.queue_url.empty())
        want = aws::SqsClient::region_of(cfg_.queue_url).value_or(std::string());
      region_ = co_await aws::resolve_region(*http_, want, cfg_.credentials.profile);
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
    if (cfg_.cse.enabled) {
      kms_ = std::make_unique<aws::KmsClient>(
          *client_, aws::resolve_endpoint("kms", cfg_.kms_endpoint, region_), region_,
          ctx_.lifecycle);
      spdlog::info("[{}] client-side encrypted objects are decrypted (KMS at {}{}{}{})", ctx_.id,
                   kms_->endpoint(), cfg_.cse.kek ? ", a key-encryption key" : "",
                   cfg_.cse.require_commitment ? ", key commitment required" : "",
                   cfg_.cse.required ? ", plaintext objects refused" : "");
    }
    // Joined by hand: fmt::join trips GCC 12's -Wstringop-overflow false positive at -O3.
    std::string prefixes;
    for (auto& p : cfg_.prefix) prefixes += (prefixes.empty() ? "\"" : ", \"") + p + "\"";
    if (cfg_.mode == "sqs") {
      std::string sqs_endpoint = cfg_.sqs.endpoint;
      if (sqs_endpoint.empty()) sqs_endpoint = env_or("AWS_ENDPOINT_URL_SQS", env_or("AWS_ENDPOINT_URL", ""));
      if (sqs_endpoint.empty()) sqs_endpoint = aws::SqsClient::endpoint_of(cfg_.queue_url);
      sqs_ = std::make_unique<aws::SqsClient>(*client_, sqs_endpoint, region_, cfg_.queue_url, ctx_.lifecycle);
      // Long polls go through their own connections, aborted at stop (a poll waits up to 20 s).
      sqs_http_ = std::make_unique<HttpClient>(ctx_.executor, TlsOptions{}, 2);
      sqs_client_ = std::make_unique<aws::AwsClient>(*sqs_http_, *creds_);
      sqs_recv_ = std::make_unique<aws::SqsClient>(*sqs_client_, sqs_endpoint, region_, cfg_.queue_url,
                                                   ctx_.lifecycle);
      spdlog::info("[{}] reading S3 objects named by the notifications of {} (SQS at {}; objects from {}{}) in {}{}",
                   ctx_.id, cfg_.queue_url, sqs_endpoint, endpoint_,
                   cfg_.bucket.empty() ? std::string() : ", bucket " + cfg_.bucket + " only", region_,
                   path_style_ ? ", path-style" : "");
      co_return true;
    }
    if (rp_) {
      std::string from;
      for (auto& f : rp_->from) from += (from.empty() ? "" : " ") + f;
      spdlog::info("[{}] replaying {} from {} in {}{}", ctx_.id, from, endpoint_, region_,
                   path_style_ ? ", path-style" : "");
      co_return true;
    }
    spdlog::info("[{}] reading s3://{}/ (prefixes: {}) from {} in {}{}", ctx_.id, cfg_.bucket, prefixes,
                 endpoint_, region_, path_style_ ? ", path-style" : "");
    co_return true;
  }

  const std::string& bucket_of(const ObjectInfo& o) const { return o.bucket.empty() ? cfg_.bucket : o.bucket; }
  std::string object_url(const ObjectInfo& o, const std::string& suffix = {}) const {
    const std::string& bucket = bucket_of(o);
    std::string enc = aws::uri_encode(o.key + suffix, /*encode_slash=*/false);
    if (path_style_) return endpoint_ + "/" + bucket + "/" + enc;
    auto p = endpoint_.find("://");
    return endpoint_.substr(0, p + 3) + bucket + "." + endpoint_.substr(p + 3) + "/" + enc;
  }
  std::string bucket_url() const { return bucket_url(cfg_.bucket); }
  std::string bucket_url(const std::string& bucket) const {
    if (path_style_) return endpoint_ + "/" + bucket;
    auto p = endpoint_.find("://");
    return endpoint_.substr(0, p + 3) + bucket + "." + endpoint_.substr(p + 3) + "/";
  }

  aws::SendOptions send_options() const {
    aws::SendOptions so;
    so.service = "s3";
    so.region = region_;
    so.lifecycle = ctx_.lifecycle;
    return so;
  }

  awaitable<HttpResponse> send(HttpRequest req) {
    co_return co_await aws::send_or_fail(*client_, std::move(req), send_options());
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

  // ---- client-side encryption ---------------------------------------------------------------
  void sse_c_headers(HttpRequest& req) const {
    if (!cfg_.sse_c_key) return;
    std::string key = cfg_.sse_c_key->value();
    if (key.size() == 44) key = base64_decode(key).value_or(std::string());
    unsigned char md5[MD5_DIGEST_LENGTH];
    EVP_Digest(key.data(), key.size(), md5, nullptr, EVP_md5(), nullptr);
    req.headers.emplace_back("x-amz-server-side-encryption-customer-algorithm", "AES256");
    req.headers.emplace_back("x-amz-server-side-encryption-customer-key", base64_encode(key));
    req.headers.emplace_back("x-amz-server-side-encryption-customer-key-MD5",
                             base64_encode(std::string_view(reinterpret_cast<char*>(md5), sizeof md5)));
    OPENSSL_cleanse(key.data(), key.size());
  }

  /// What reading one object takes: plaintext, or an envelope and the content key.
  struct Decryption {
    bool encrypted = false;
    s3ec::Envelope env;
    std::optional<s3ec::ContentKey> key;
    std::string failure;    // permanent: the object is failed with this reason
    std::string reason;     // the failure's metric label
    std::string transient;  // retried at the next poll
  };

  static std::string format_label(const s3ec::Envelope& e) {
    std::string v = e.version == s3ec::Version::kV1 ? "v1" : e.version == s3ec::Version::kV2 ? "v2" : "v3";
    std::string w = e.wrap == s3ec::Wrap::kKmsContext ? "kms_context"
                    : e.wrap == s3ec::Wrap::kKmsLegacy ? "kms"
                                                       : "aes_gcm";
    return v + "_" + w;
  }

  void decryption_failed(const std::string& reason) {
    metrics()
        .counter("logship_s3_decryption_failures_total",
                 "Client-side encrypted objects refused, by reason (nothing of them forwarded)",
                 {{"component_id", ctx_.id}, {"reason", reason}})
        .inc();
  }

  /// HEAD of the object (its envelope may be in its metadata), then its instruction file when the
  /// metadata holds no wrapped key; then the data key (KMS, cached, or the key-encryption key).
  /// `first`: the answer to the object's first ranged GET, whose headers carry the same metadata
  /// as a HEAD (one round trip less per object); a HEAD is sent without it (empty objects).
  awaitable<Decryption> prepare_decryption(const ObjectInfo& o, const std::string& what,
                                           const HttpResponse* first) {
    Decryption d;
    HttpResponse head;
    if (!first) {
      HttpRequest req;
      req.method = "HEAD";
      req.path_as_is = true;
      req.url = object_url(o);
      req.timeout = std::chrono::seconds(60);
      if (!o.etag.empty()) req.headers.emplace_back("If-Match", "\"" + o.etag + "\"");
      sse_c_headers(req);
      head = co_await send(std::move(req));
    }
    const HttpResponse& r = first ? *first : head;
    auto error = first ? aws::parse_aws_error(r) : std::nullopt;
    if (r.status == 404 || (error && error->code == "NoSuchKey")) {
      d.failure = "deleted before it was read (NoSuchKey)";
      co_return d;
    }
    if (r.status == 412) {
      d.failure = "replaced while it was read (its ETag changed); the new version is read as a new object";
      co_return d;
    }
    if (r.status != 200 && r.status != 206) {
      d.transient = explain(r, (first ? "reading " : "HEAD ") + what);
      co_return d;
    }
    s3ec::Meta meta;
    for (auto& [k, v] : r.headers)
      if (k.size() > 11 && k.compare(0, 11, "x-amz-meta-") == 0) meta[k.substr(11)] = v;
    const bool keys_in_meta = meta.count("x-amz-key") || meta.count("x-amz-key-v2") || meta.count("x-amz-3");
    std::optional<s3ec::Meta> ins;
    std::string err;
    if (!keys_in_meta) {
      HttpRequest ir;
      ir.method = "GET";
      ir.path_as_is = true;
      ir.url = object_url(o, ".instruction");
      ir.timeout = std::chrono::seconds(60);
      HttpResponse ires = co_await send(std::move(ir));
      if (ires.status == 200) {
        ins = s3ec::parse_instruction(ires.body, &err);
        if (!ins) {
          d.failure = fmt::format("its instruction file {}.instruction is invalid: {}", o.key, err);
          d.reason = "envelope";
          co_return d;
        }
      } else if (ires.status != 404 && ires.status != 403) {
        d.transient = explain(ires, "reading the instruction file of " + what);
        co_return d;
      }
    }
    if (!keys_in_meta && !ins) {
      if (s3ec::has_envelope(meta)) {
        d.failure = fmt::format("it is client-side encrypted but its instruction file {}.instruction is missing", o.key);
        d.reason = "instruction_missing";
      } else if (cfg_.cse.required) {
        d.failure = "it is not client-side encrypted (client_side_encryption.required: true)";
        d.reason = "not_encrypted";
      }
      co_return d;  // a plaintext object
    }
    d.encrypted = true;
    auto env = s3ec::parse_envelope(meta, ins ? &*ins : nullptr, &err);
    if (!env) {
      d.failure = "invalid encryption envelope: " + err;
      d.reason = "envelope";
      co_return d;
    }
    d.env = *env;
    if (cfg_.cse.require_commitment && env->version != s3ec::Version::kV3) {
      d.failure = fmt::format("format {} has no key commitment (client_side_encryption.commitment: require)",
                              env->describe());
      d.reason = "commitment_required";
      co_return d;
    }
    if (!cfg_.cse.allow_legacy && (env->content == s3ec::Content::kCbc || env->wrap == s3ec::Wrap::kKmsLegacy)) {
      d.failure = fmt::format("legacy format {} is not authenticated; set client_side_encryption.allow_legacy: "
                              "true to read it anyway",
                              env->describe());
      d.reason = "legacy_refused";
      co_return d;
    }
    if (std::string bad = s3ec::check_context(*env, cfg_.cse.context); !bad.empty()) {
      d.failure = bad;
      d.reason = "context";
      co_return d;
    }
    std::optional<aws::KeyBytes> data_key;
    if (env->wrap == s3ec::Wrap::kAesGcm) {
      if (!cfg_.cse.kek) {
        d.failure = "its data key is wrapped with a local key (AES/GCM) and client_side_encryption.kek_file is not set";
        d.reason = "no_kek";
        co_return d;
      }
      aws::KeyBytes kek(cfg_.cse.kek->value());
      data_key = s3ec::unwrap_aes_gcm(*env, kek, &err);
      if (!data_key) {
        d.failure = err;
        d.reason = "wrong_kek";
        co_return d;
      }
    } else {
      data_key = co_await kms_key(*env, what, d);
      if (!data_key) co_return d;
    }
    d.key = s3ec::content_key(*env, *data_key, &err);
    if (!d.key) {
      d.failure = err;
      d.reason = env->version == s3ec::Version::kV3 ? "commitment" : "data_key";
    }
    co_return d;
  }

  /// The data key of a KMS-wrapped envelope: from the cache (same wrapped key and context), else
  /// by kms:Decrypt. Cached keys expire after 5 minutes; at most 1,000 are held.
  awaitable<std::optional<aws::KeyBytes>> kms_key(const s3ec::Envelope& e, const std::string& what, Decryption& d) {
    std::string id = e.wrapped_key;
    for (auto& [k, v] : e.context) id += '\0' + k + '\0' + v;
    id = aws::sha256_hex(id);
    auto now = Clock::now();
    // One kms:Decrypt per wrapped key at a time: objects that share it and miss the cache together
    // wait for the call in flight and take its answer from the cache.
    for (;;) {
      {
        std::lock_guard lk(keys_mu_);
        auto it = keys_.find(id);
        if (it != keys_.end() && it->second.expires > now) {
          kms_cache_hits_.inc();
          co_return it->second.key.copy();
        }
        if (keys_inflight_.insert(id).second) break;
      }
      co_await keys_wq_.wait(keys_mu_, [&] { return keys_inflight_.count(id) == 0; });
      now = Clock::now();
    }
    struct Done {
      S3Source* self;
      const std::string& id;
      ~Done() {
        std::lock_guard lk(self->keys_mu_);
        self->keys_inflight_.erase(id);
        self->keys_wq_.notify_all();
      }
    } done{this, id};
    kms_calls_.inc();
    auto r = co_await kms_->decrypt(e.wrapped_key, e.context, e.kms_key_id, what);
    if (!r.ok()) {
      using K = aws::KmsError::Kind;
      if (r.error->kind == K::kThrottled || r.error->kind == K::kTransport) {
        d.transient = r.error->message;
      } else {
        d.failure = r.error->message;
        d.reason = r.error->kind == K::kAccessDenied        ? "kms_access_denied"
                   : r.error->kind == K::kInvalidCiphertext ? "kms_invalid_ciphertext"
                   : r.error->kind == K::kIncorrectKey      ? "kms_incorrect_key"
                   : r.error->kind == K::kKeyUnusable       ? "kms_key_unusable"
                                                            : "kms_error";
      }
      co_return std::nullopt;
    }
    std::lock_guard lk(keys_mu_);
    for (auto it = keys_.begin(); it != keys_.end();) it = it->second.expires <= now ? keys_.erase(it) : std::next(it);
    if (keys_.size() >= 1000) keys_.erase(keys_.begin());
    keys_[id] = CachedKey{r.value->plaintext.copy(), now + std::chrono::minutes(5)};
    co_return std::move(r.value->plaintext);
  }

  /// A spooled ciphertext: a 0600 file under data_dir, emptied (truncated) when the object is
  /// done and reused for the next one (creating and unlinking a file per object cost about 1 ms
  /// of kernel time each on ext4, more than decrypting a CloudTrail object), removed at stop and
  /// at start-up after a crash. Never plaintext.
  /// A SHA-256 of every kChunkBytes block is kept in memory while it is written, and each block
  /// is checked against it before it is decrypted again: a spool altered on disk between the two
  /// passes is refused before any byte of the altered block is forwarded.
  struct Spool {
    using Digest = std::array<unsigned char, 32>;
    int fd = -1;
    std::string path;
    std::vector<Digest> blocks;
    EVP_MD_CTX* md = nullptr;
    uint64_t in_block = 0;
    S3Source* owner = nullptr;  // the pool the file goes back to
    Spool() = default;
    Spool(const Spool&) = delete;
    Spool& operator=(const Spool&) = delete;
    ~Spool() {
      if (md) EVP_MD_CTX_free(md);
      if (fd < 0) return;
      if (owner && ::ftruncate(fd, 0) == 0 && ::lseek(fd, 0, SEEK_SET) == 0) {
        owner->give_back_spool(fd, std::move(path));
        return;
      }
      ::close(fd);
      if (!path.empty()) ::unlink(path.c_str());
    }
    void digest(std::string_view b) {
      while (!b.empty()) {
        if (!md) {
          md = EVP_MD_CTX_new();
          if (!md || EVP_DigestInit_ex(md, EVP_sha256(), nullptr) != 1) throw std::bad_alloc();
        }
        size_t n = static_cast<size_t>(std::min<uint64_t>(b.size(), kChunkBytes - in_block));
        EVP_DigestUpdate(md, b.data(), n);
        in_block += n;
        b.remove_prefix(n);
        if (in_block == kChunkBytes) close_block();
      }
    }
    void close_block() {
      if (!md) return;
      Digest d{};
      unsigned int len = 0;
      EVP_DigestFinal_ex(md, d.data(), &len);
      EVP_MD_CTX_free(md);
      md = nullptr;
      in_block = 0;
      blocks.push_back(d);
    }
    static Digest of(std::string_view b) {
      Digest d{};
      unsigned int len = 0;
      EVP_Digest(b.data(), b.size(), d.data(), &len, EVP_sha256(), nullptr);
      return d;
    }
  };

  /// A spool file from the pool, or a new one; false (with `err`) when none can be created.
  bool take_spool(Spool& sp, std::string* err) {
    {
      std::lock_guard lk(spool_mu_);
      if (!spool_pool_.empty()) {
        sp.fd = spool_pool_.back().first;
        sp.path = std::move(spool_pool_.back().second);
        spool_pool_.pop_back();
        sp.owner = this;
        return true;
      }
      sp.path = fmt::format("{}/{}.ciphertext", spool_dir_, ++spool_files_);
    }
    sp.fd = ::open(sp.path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (sp.fd < 0) {
      *err = fmt::format("cannot create the spool file {}: {}", sp.path, std::strerror(errno));
      sp.path.clear();
      return false;
    }
    sp.owner = this;
    return true;
  }
  void give_back_spool(int fd, std::string path) {
    std::lock_guard lk(spool_mu_);
    spool_pool_.emplace_back(fd, std::move(path));
  }
  /// At stop: the (empty) spool files are removed.
  void remove_spools() {
    std::lock_guard lk(spool_mu_);
    for (auto& [fd, path] : spool_pool_) {
      ::close(fd);
      ::unlink(path.c_str());
    }
    spool_pool_.clear();
  }

  void clean_spool() {
    spool_dir_ = ctx_.data_dir + "/s3-spool-" + ctx_.id;
    std::error_code ec;
    std::filesystem::create_directories(spool_dir_, ec);
    ::chmod(spool_dir_.c_str(), 0700);
    for (auto& e : std::filesystem::directory_iterator(spool_dir_, ec)) std::filesystem::remove(e.path(), ec);
  }

  // ---- listing ------------------------------------------------------------------------------
  bool wanted(const ObjectInfo& o) const {
    if (o.key.empty() || o.key.back() == '/') return false;
    // The envelope of a client-side encrypted object, not a log.
    if (cfg_.cse.enabled && o.key.size() > 12 &&
        o.key.compare(o.key.size() - 12, 12, ".instruction") == 0)
      return false;
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
    return active_.count(State::hash(o.state_key(), o.version())) > 0;
  }

  awaitable<void> wait_workers(size_t at_most) {
    co_await wq_.wait_until(mu_, [this, at_most] { return running_ <= at_most; });
  }

  void start_reader(ObjectInfo o, Fanout& out) {
    {
      std::lock_guard lk(mu_);
      ++running_;
      active_.insert(State::hash(o.state_key(), o.version()));
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
    active_.erase(State::hash(o.state_key(), o.version()));
    active_gauge_.set(static_cast<int64_t>(active_.size()));
    wq_.notify_all();
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
    req.url = object_url(o);
    req.timeout = std::chrono::seconds(120);
    req.headers.emplace_back("Range", fmt::format("bytes={}-{}", from, to));
    if (!o.etag.empty()) req.headers.emplace_back("If-Match", "\"" + o.etag + "\"");
    sse_c_headers(req);
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
    prog->on_final = [this](const ObjectInfo& obj, bool finished, bool failed) {
      if (rp_ && finished) {
        rp_->progress.units_done.fetch_add(1, std::memory_order_relaxed);
        rp_->progress.bytes_done.fetch_add(obj.size, std::memory_order_relaxed);
      }
      release(obj, finished, false);
      if (sqs_) sqs_object_final(obj, finished, failed);
    };
    const uint64_t skip = state_.resume_point(o);
    const std::string what = fmt::format("s3://{}/{}", bucket_of(o), o.key);
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
      batch.reserve(std::min<size_t>(1024, batch_events_), batch_bytes_ + 64 * 1024);
      meta[0] = batch.intern(cfg_.host);
      meta[1] = batch.intern(what);
      meta[2] = batch.intern(cfg_.sourcetype);
      meta[3] = batch.intern(cfg_.index);
    };
    start_batch();
    // A replayed record without a time of its own takes the time its object was stored.
    const int64_t read_time = rp_ ? o.last_modified_ns : now_ns();
    std::string fields;
    auto emit = [&](const formats::Record& r) {
      if (index++ < skip) return;
      const int64_t t = r.time_set ? r.time_ns : read_time;
      if (rp_) {
        if (!rp_->window.contains(t)) {
          rp_->progress.events_outside.fetch_add(1, std::memory_order_relaxed);
          return;
        }
        rp_->progress.saw_time(t);
      }
      Event& e = batch.add(r.text, t);
      if (r.json_value) e.flags |= Event::kJsonValue;
      std::string_view f = r.fields_json;
      if (cfg_.event_id) {
        // The record's position: the object (its URI and ETag) and its index in it.
        fields = with_event_id(f, event_id(ctx_.id, what + "\n" + o.etag, index - 1, 0));
        f = fields;
      }
      if (rp_ && !rp_->mark.empty()) {
        fields = replay::with_mark(f, rp_->mark);
        f = fields;
      }
      if (!f.empty()) batch.set_fields(batch.events().back(), f);
      e.host = meta[0];
      e.source = meta[1];
      e.sourcetype = meta[2];
      e.index = meta[3];
      if (batch.text_bytes() >= batch_bytes_ || batch.size() >= batch_events_) {
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
        if (rp_) {
          // --rate / --events-rate: waits here (the batch is not counted as sent before).
          uint64_t text = 0;  // the events' own text (not the fields added to them)
          for (const Event& e : b.events()) text += e.length;
          if (!co_await replay::throttle(rp_->limiter ? &*rp_->limiter : nullptr, *ctx_.lifecycle,
                                         text, b.size())) {
            ready.clear();
            co_return false;
          }
          rp_->progress.events_sent.fetch_add(b.size(), std::memory_order_relaxed);
          rp_->progress.event_bytes_sent.fetch_add(text, std::memory_order_relaxed);
        }
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
    // Client-side encrypted: authenticated content (GCM) is spooled as ciphertext and verified
    // before a byte of it is decrypted for the pipeline; legacy CBC is decrypted as it arrives.
    Decryption dx;
    // The envelope comes with the first ranged GET's headers: no HEAD, one round trip less per
    // object (then the instruction file, when needed, and the data key).
    std::shared_ptr<Fetch> first;
    if (cfg_.cse.enabled && o.size > 0) {
      auto f = fetch_range(o, 0, std::min(o.size, kChunkBytes) - 1);
      HttpResponse got = co_await take(f);
      first = std::make_shared<Fetch>();
      first->resp = std::move(got);
    }
    if (cfg_.cse.enabled) {
      dx = co_await prepare_decryption(o, what, first ? &*first->resp : nullptr);
      failure = dx.failure;
      transient = dx.transient;
      if (!dx.failure.empty() && !dx.reason.empty()) decryption_failed(dx.reason);
    }
    const bool spooled = dx.encrypted && dx.key && dx.env.content != s3ec::Content::kCbc;
    std::unique_ptr<s3ec::ContentDecryptor> cbc, verify;
    Spool spool;
    auto feed = [&](std::string_view body) -> awaitable<bool> {
      while (!body.empty()) {
        size_t n = std::min(body.size(), kSliceBytes);
        dec->feed(body.substr(0, n), sink);
        body.remove_prefix(n);
        if (!ready.empty() && !co_await send_ready()) co_return false;
      }
      co_return true;
    };
    try {
      if (dx.encrypted && dx.key && failure.empty()) {
        if (spooled) {
          verify = std::make_unique<s3ec::ContentDecryptor>(dx.env.content, *dx.key);
          take_spool(spool, &transient);
        } else {
          cbc = std::make_unique<s3ec::ContentDecryptor>(dx.env.content, *dx.key);
        }
      }
      uint64_t off = 0;
      std::shared_ptr<Fetch> next = std::move(first);
      if (!next && o.size > 0 && failure.empty() && transient.empty())
        next = fetch_range(o, 0, std::min(o.size, kChunkBytes) - 1);
      if (next && (!failure.empty() || !transient.empty())) {
        co_await take(next);  // not needed: let it finish before its state goes away
        next.reset();
      }
      while (off < o.size && failure.empty() && transient.empty()) {
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
        if (rp_) rp_->progress.bytes_read.fetch_add(got, std::memory_order_relaxed);
        uint64_t next_off = off + got;
        if (r.status == 200) next_off = o.size = std::max<uint64_t>(got, o.size);
        if (next_off < o.size && !ctx_.lifecycle->stopping())
          next = fetch_range(o, next_off, std::min(o.size, next_off + kChunkBytes) - 1);
        if (spooled) {
          // Pass 1: the ciphertext goes to disk and through the tag computation only.
          std::string_view body = r.body;
          while (!body.empty()) {
            ssize_t w = ::write(spool.fd, body.data(), body.size());
            if (w < 0 && errno == EINTR) continue;
            if (w <= 0) {
              transient = fmt::format("writing the spool file {}: {}", spool.path, std::strerror(errno));
              break;
            }
            body.remove_prefix(static_cast<size_t>(w));
          }
          spool.digest(r.body);
          std::string scratch;
          verify->update(r.body, scratch);
          OPENSSL_cleanse(scratch.data(), scratch.size());
        } else if (cbc) {
          std::string plain;
          cbc->update(r.body, plain);
          co_await feed(plain);
          OPENSSL_cleanse(plain.data(), plain.size());
        } else {
          co_await feed(r.body);
        }
        off = next_off;
        if (ctx_.lifecycle->stopping()) break;
      }
      if (failure.empty() && transient.empty() && off >= o.size && !ctx_.lifecycle->stopping()) {
        if (!dec) dec = std::make_unique<formats::Decompressor>(compression_, "", cfg_.max_object_bytes);
        if (spooled) {
          std::string rest;
          if (!verify->finish(rest)) {
            failure = "authentication failed: its AES-GCM tag does not verify (the object or its envelope was "
                      "altered, or it was encrypted with another key); nothing of it was forwarded";
            decryption_failed("tag");
          } else if (::lseek(spool.fd, 0, SEEK_SET) != 0) {
            transient = fmt::format("rewinding the spool file {}: {}", spool.path, std::strerror(errno));
          } else {
            // Pass 2: verified; decrypted again from the spool for the pipeline, each block
            // checked against its digest from pass 1 before it is decrypted.
            spool.close_block();
            s3ec::ContentDecryptor pass(dx.env.content, *dx.key);
            std::string chunk(static_cast<size_t>(std::min<uint64_t>(kChunkBytes, std::max<uint64_t>(o.size, 1))),
                              '\0');
            std::string plain;
            size_t block = 0;
            while (transient.empty() && failure.empty() && !ctx_.lifecycle->stopping()) {
              size_t n = 0;
              while (n < chunk.size()) {  // a whole block (the last one may be shorter)
                ssize_t k = ::read(spool.fd, chunk.data() + n, chunk.size() - n);
                if (k < 0 && errno == EINTR) continue;
                if (k < 0) transient = fmt::format("reading the spool file {}: {}", spool.path, std::strerror(errno));
                if (k <= 0) break;
                n += static_cast<size_t>(k);
              }
              if (!transient.empty()) break;
              std::string_view got(chunk.data(), n);
              if (n == 0 && block == spool.blocks.size()) break;
              if (block >= spool.blocks.size() || Spool::of(got) != spool.blocks[block]) {
                failure = "the spooled ciphertext changed on disk between verification and decryption";
                decryption_failed("spool");
                break;
              }
              ++block;
              plain.clear();
              pass.update(got, plain);
              co_await feed(plain);
              OPENSSL_cleanse(plain.data(), plain.size());
            }
            plain.clear();
            if (transient.empty() && failure.empty() && !ctx_.lifecycle->stopping()) {
              if (!pass.finish(plain)) {
                failure = "the spooled ciphertext changed on disk between verification and decryption";
                decryption_failed("spool");
              } else {
                co_await feed(plain);
              }
            }
          }
        } else if (cbc) {
          std::string plain;
          if (!cbc->finish(plain)) {
            failure = "decryption failed: bad AES-CBC padding (the wrong key, or an altered object)";
            decryption_failed("padding");
          } else {
            co_await feed(plain);
          }
        }
        if (failure.empty() && transient.empty() && !ctx_.lifecycle->stopping()) {
          dec->finish(sink);
          parser->finish(emit);
          complete = true;
          if (dx.encrypted)
            metrics()
                .counter("logship_s3_objects_decrypted_total", "Client-side encrypted objects read, by format",
                         {{"component_id", ctx_.id}, {"format", format_label(dx.env)}})
                .inc();
        }
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
      if (rp_) {
        rp_->progress.fail(what, failure);
        rp_->progress.units_failed.fetch_add(1, std::memory_order_relaxed);
      }
    } else if (!transient.empty() && rp_) {
      report_error_for(m_, "object", "read", o.key, std::chrono::minutes(10),
                       transient + "; retried");
      std::lock_guard lk(mu_);
      replay_retry_.push_back({o, transient});
    } else if (!transient.empty()) {
      report_error_for(m_, "object", "read", o.key, std::chrono::minutes(10), transient + "; retrying at the next poll");
    }
    prog->reader_done(complete && sent && failure.empty());
  }

  // ---- logship replay ------------------------------------------------------------------------
  /// Lists each `--from` prefix once (date levels outside the window pruned before they are
  /// listed), reads every selected object, retries transient failures three times, and returns.
  awaitable<void> run_replay(Fanout& out) {
    replay::Progress& P = rp_->progress;
    bool ready = false;
    for (int attempt = 0; attempt < 3 && !ready && !ctx_.lifecycle->stopping(); ++attempt) {
      if (attempt > 0 && co_await ctx_.lifecycle->sleep(std::chrono::seconds(2 * attempt))) break;
      ready = co_await setup();
    }
    if (!ready) {
      if (!ctx_.lifecycle->stopping())
        for (auto& uri : rp_->from)
          P.fail(uri, "no S3 client (region or credentials): see the log above");
      P.listing_done = true;
      co_return;
    }
    for (auto& uri : rp_->from) {
      if (ctx_.lifecycle->stopping()) break;
      // s3://bucket/prefix (validated by the command line).
      std::string rest = uri.substr(5);
      auto slash = rest.find('/');
      std::string bucket = rest.substr(0, slash);
      std::string prefix = slash == std::string::npos ? std::string() : rest.substr(slash + 1);
      co_await replay_walk(bucket, prefix, out);
    }
    P.listing_done = true;
    // Transient failures (throttling, timeouts, 5xx) are read again once the earlier attempt's
    // batches are final, resuming after its acknowledged records.
    for (int round = 1; round <= 3 && !ctx_.lifecycle->stopping(); ++round) {
      co_await wq_.wait_until(mu_, [this] { return running_ == 0 && active_.empty(); });
      std::vector<std::pair<ObjectInfo, std::string>> again;
      {
        std::lock_guard lk(mu_);
        again.swap(replay_retry_);
      }
      if (again.empty()) break;
      if (co_await ctx_.lifecycle->sleep(std::chrono::seconds(round))) {
        std::lock_guard lk(mu_);
        replay_retry_ = std::move(again);
        break;
      }
      for (auto& [o, why] : again) {
        co_await wait_workers(static_cast<size_t>(cfg_.max_concurrent_objects) - 1);
        if (ctx_.lifecycle->stopping()) break;
        start_reader(o, out);
      }
    }
    co_await wq_.wait_until(mu_, [this] { return running_ == 0; });
    if (!ctx_.lifecycle->stopping()) {
      co_await wq_.wait_until(mu_, [this] { return active_.empty(); });
      std::lock_guard lk(mu_);
      for (auto& [o, why] : replay_retry_) {
        P.fail(fmt::format("s3://{}/{}", bucket_of(o), o.key), why + " (after 3 retries)");
        P.units_failed.fetch_add(1, std::memory_order_relaxed);
      }
    }
    http_->shutdown();
    remove_spools();
  }

  /// One listing request with up to three retries; nullopt once they failed (recorded).
  awaitable<std::optional<ListPage>> replay_list(const std::string& bucket,
                                                 const std::string& prefix, bool delimited,
                                                 const std::string& token) {
    std::string uri = fmt::format("s3://{}/{}", bucket, prefix);
    std::string why;
    for (int attempt = 0; attempt < 4 && !ctx_.lifecycle->stopping(); ++attempt) {
      if (attempt > 0 && co_await ctx_.lifecycle->sleep(std::chrono::seconds(attempt))) break;
      HttpRequest req;
      req.method = "GET";
      std::string url =
          bucket_url(bucket) + "?list-type=2&max-keys=1000&prefix=" + aws::uri_encode(prefix, true);
      if (delimited) url += "&delimiter=%2F";
      if (!token.empty()) url += "&continuation-token=" + aws::uri_encode(token, true);
      req.url = std::move(url);
      req.timeout = std::chrono::seconds(60);
      list_requests_.inc();
      rp_->progress.list_requests.fetch_add(1, std::memory_order_relaxed);
      HttpResponse r = co_await send(std::move(req));
      if (r.status == 200) {
        std::string err;
        auto page = parse_list_objects_v2(r.body, &err);
        if (page) co_return page;
        why = "listing " + uri + ": " + err;
      } else {
        why = explain(r, "listing " + uri);
        auto e = aws::parse_aws_error(r);
        // Not worth retrying: the bucket does not exist or the credentials may not list it.
        if (r.status == 404 || r.status == 403 ||
            (e && (e->code == "NoSuchBucket" || e->code == "AccessDenied"))) {
          attempt = 4;
        }
      }
      report_error_for(m_, "list", "failed", uri, std::chrono::minutes(10), why);
    }
    if (!ctx_.lifecycle->stopping()) rp_->progress.fail(uri, why);
    co_return std::nullopt;
  }

  /// Lists `root` depth first in key order. With a bounded window and a date-partitioned
  /// layout, each level is listed with a delimiter and only the date prefixes that can hold the
  /// window's events are descended.
  awaitable<void> replay_walk(const std::string& bucket, const std::string& root, Fanout& out) {
    replay::Progress& P = rp_->progress;
    const replay::TimeWindow& w = rp_->window;
    struct Level {
      std::string prefix;
      bool delimited;
      int depth;
    };
    std::vector<Level> todo{{root, w.bounded(), 0}};
    while (!todo.empty() && !ctx_.lifecycle->stopping()) {
      Level lv = std::move(todo.back());
      todo.pop_back();
      std::vector<Level> children;
      std::string token;
      for (;;) {
        auto page = co_await replay_list(bucket, lv.prefix, lv.delimited, token);
        if (!page) break;
        objects_listed_.inc(page->objects.size());
        for (auto& cp : page->common_prefixes) {
          if (fopts_.format == formats::Format::kCloudTrail && !cfg_.include_insights &&
              (cp.ends_with("/CloudTrail-Digest/") || cp.ends_with("/CloudTrail-Insight/")))
            continue;
          switch (replay::classify_prefix(cp, w, lv.depth + 1)) {
            case replay::WalkStep::kSkip:
              break;
            case replay::WalkStep::kDescend:
              children.push_back({cp, true, lv.depth + 1});
              break;
            case replay::WalkStep::kListAll:
              children.push_back({cp, false, lv.depth + 1});
              break;
          }
        }
        for (auto& o : page->objects) {
          if (ctx_.lifecycle->stopping()) break;
          o.bucket = bucket;
          if (!wanted(o)) continue;
          std::optional<int64_t> delivered = replay::key_delivery_time(o.key);
          // Events precede the storing of their file: one stored before `since` holds none of
          // the window's (its LastModified says nothing of `until`: a copy is stored later).
          bool inside = delivered ? w.may_hold(*delivered)
                                  : (!w.since_ns || o.last_modified_ns >= *w.since_ns);
          if (!inside) {
            P.units_outside.fetch_add(1, std::memory_order_relaxed);
            continue;
          }
          P.units_selected.fetch_add(1, std::memory_order_relaxed);
          P.bytes_selected.fetch_add(o.size, std::memory_order_relaxed);
          if (state_.status(o) == State::Status::kDone) {
            // Done by an earlier attempt of this run (--resume).
            P.units_skipped.fetch_add(1, std::memory_order_relaxed);
            P.bytes_read.fetch_add(o.size, std::memory_order_relaxed);
            continue;
          }
          if (rp_->dry_run) {
            P.saw_time(delivered.value_or(o.last_modified_ns));
            continue;
          }
          co_await wait_workers(static_cast<size_t>(cfg_.max_concurrent_objects) - 1);
          if (ctx_.lifecycle->stopping()) break;
          start_reader(std::move(o), out);
        }
        if (!page->truncated || ctx_.lifecycle->stopping()) break;
        token = page->next_token;
      }
      for (auto it = children.rbegin(); it != children.rend(); ++it) todo.push_back(std::move(*it));
    }
  }

  // ---- mode: sqs ----------------------------------------------------------------------------
  /// A message held by this agent: received, not yet deleted or let go.
  struct SqsHeld {
    aws::SqsMessage m;
    Clock::time_point visible_until;
    size_t open = 0;          // objects it names whose outcome is not known yet
    bool failed = false;      // one of them failed permanently
    bool incomplete = false;  // one of them stopped before every record was final
    bool lost = false;        // its receipt handle no longer works (logged once)
  };

  Counter& sqs_counter(const char* name, const char* help, const char* reason = nullptr) {
    Labels l{{"component_id", ctx_.id}};
    if (reason) l.emplace_back("reason", reason);
    return metrics().counter(name, help, l);
  }

  awaitable<void> run_sqs(Fanout& out) {
    // The queue first: /ready waits for its answer; no RedrivePolicy is worth a warning.
    while (!ctx_.lifecycle->stopping()) {
      if (co_await setup()) {
        auto a = co_await sqs_->attributes();
        if (a.ok()) {
          sqs_ready_ = true;
          if (!a.value->count("RedrivePolicy"))
            spdlog::warn("[{}] the queue {} has no RedrivePolicy (dead-letter queue): a message that can never "
                         "be processed comes back for ever; configure one (maxReceiveCount 5 or so)",
                         ctx_.id, cfg_.queue_url);
          break;
        }
        report_error_for(m_, "sqs", "queue", cfg_.queue_url, std::chrono::minutes(10),
                         a.error->message + "; retrying in 5s");
      }
      if (co_await ctx_.lifecycle->sleep(std::chrono::seconds(5))) break;
    }
    if (ctx_.lifecycle->stopping()) co_return;
    asio::co_spawn(ctx_.executor, sqs_dispatch(out), asio::detached);
    asio::co_spawn(ctx_.executor, sqs_maintain(), asio::detached);
    const auto vis = std::chrono::duration_cast<std::chrono::seconds>(cfg_.visibility_timeout);
    const auto wait = std::chrono::duration_cast<std::chrono::seconds>(cfg_.sqs.wait_time);
    while (!ctx_.lifecycle->stopping()) {
      size_t room = 0;
      {
        std::unique_lock lk(sqs_mu_);
        room = held_.size() < static_cast<size_t>(cfg_.sqs.max_in_flight)
                   ? static_cast<size_t>(cfg_.sqs.max_in_flight) - held_.size()
                   : 0;
      }
      if (room == 0) {  // at the limit (a slow or blocked pipeline): no more messages
        co_await sqs_wq_.wait(
            sqs_mu_, [&] { return held_.size() < static_cast<size_t>(cfg_.sqs.max_in_flight); },
            std::chrono::seconds(1));
        continue;
      }
      int n = static_cast<int>(std::min<size_t>(room, static_cast<size_t>(cfg_.sqs.max_messages)));
      auto r = co_await sqs_recv_->receive(n, wait, vis);
      if (ctx_.lifecycle->stopping()) {
        // Received while stopping: let them go at once for another agent.
        if (r.ok() && !r.value->empty()) {
          std::vector<aws::SqsBatchEntry> back;
          for (auto& m : *r.value) back.push_back({m.id, m.receipt_handle, 0});
          co_await sqs_->change_visibility_batch(back);
        }
        break;
      }
      if (!r.ok()) {
        report_error_for(m_, "sqs", "receive", cfg_.queue_url, std::chrono::minutes(10),
                         r.error->message + "; retrying in 5s");
        if (co_await ctx_.lifecycle->sleep(std::chrono::seconds(5))) break;
        continue;
      }
      auto now = Clock::now();
      for (auto& m : *r.value) sqs_take(std::move(m), now + vis);
    }
    // Stop: readers end; what they had in flight is acknowledged while the sinks drain (waited
    // for a few seconds); resolved messages are deleted, the others let go at once.
    co_await wait_workers(0);
    auto until = Clock::now() + std::chrono::seconds(5);
    while (Clock::now() < until) {
      bool open = false;
      {
        std::lock_guard lk(sqs_mu_);
        for (auto& [id, h] : held_)
          if (h.open > 0) open = true;
      }
      co_await sqs_flush();
      if (!open) break;
      co_await asio::steady_timer(ctx_.executor, std::chrono::milliseconds(50)).async_wait(asio::use_awaitable);
    }
    {
      std::lock_guard lk(sqs_mu_);  // a last try for deletions that failed
      resolved_.insert(resolved_.end(), delete_again_.begin(), delete_again_.end());
      delete_again_.clear();
    }
    co_await sqs_flush();
    std::vector<aws::SqsBatchEntry> back;
    {
      std::lock_guard lk(sqs_mu_);
      for (auto& [id, h] : held_)
        if (!h.lost) back.push_back({std::to_string(id), h.m.receipt_handle, 0});
      if (!back.empty())
        sqs_counter("logship_sqs_messages_left_total", "Messages not deleted, by reason", "stopped")
            .inc(back.size());
      held_.clear();
      waiting_.clear();
    }
    if (!back.empty()) {
      spdlog::info("[{}] stopping: {} message(s) not finished are made visible again for another agent "
                   "(their objects resume where delivery stopped)",
                   ctx_.id, back.size());
      co_await sqs_->change_visibility_batch(back);
    }
    {
      std::lock_guard lk(mu_);
      queued_.clear();
    }
    sqs_http_->shutdown();
    http_->shutdown();
    remove_spools();
  }

  /// A received message: its objects are queued for the readers (or found already done, in
  /// progress, or failed); a message that is not a notification is counted and left alone.
  void sqs_take(aws::SqsMessage m, Clock::time_point visible_until) {
    static const char* kHelpLeft = "Messages not deleted, by reason";
    sqs_counter("logship_sqs_messages_received_total", "SQS messages received").inc();
    Notification n = parse_notification(m.body);
    std::string bad;
    if (n.kind == Notification::Kind::kInvalid) bad = n.error;
    if (bad.empty() && !cfg_.bucket.empty())
      for (auto& o : n.objects)
        if (o.bucket != cfg_.bucket) {
          bad = fmt::format("it names bucket {}, not {} (the source's bucket)", o.bucket, cfg_.bucket);
          break;
        }
    if (!bad.empty()) {
      // Never deleted: the queue's redrive policy moves it to its dead-letter queue.
      sqs_counter("logship_sqs_messages_invalid_total", "Messages that are not S3 notifications").inc();
      sqs_counter("logship_sqs_messages_left_total", kHelpLeft, "invalid").inc();
      report_error_for(m_, "sqs", "invalid_message", "invalid", std::chrono::minutes(10),
                       fmt::format("message {} (received {} time(s)) is not usable: {}; left in the queue for its "
                                   "redrive policy: {:.200}",
                                   m.id, m.receive_count, bad, m.body));
      return;
    }
    std::lock_guard lk(sqs_mu_);
    uint64_t id = ++next_held_;
    SqsHeld& h = held_[id];
    h.m = std::move(m);
    h.visible_until = visible_until;
    sqs_in_flight_.set(static_cast<int64_t>(held_.size()));
    if (n.kind == Notification::Kind::kTest) {
      if (!test_event_logged_.exchange(true))
        spdlog::info("[{}] s3:TestEvent received from {} (notifications are configured); deleted", ctx_.id,
                     cfg_.queue_url);
      resolved_.push_back(id);
      return;
    }
    std::set<uint64_t> seen;
    for (auto& no : n.objects) {
      ObjectInfo o;
      o.bucket = no.bucket;
      o.key = no.key;
      o.etag = no.etag;
      o.size = no.size;
      o.sequencer = no.sequencer;
      o.last_modified_ns = no.event_time_ns ? no.event_time_ns : now_ns();
      if (!wanted(o) || !std::any_of(cfg_.prefix.begin(), cfg_.prefix.end(),
                                     [&](const std::string& p) { return o.key.rfind(p, 0) == 0; }))
        continue;
      uint64_t hk = State::hash(o.state_key(), o.version());
      if (!seen.insert(hk).second) continue;  // named twice in one message
      if (auto st = state_.status(o)) {
        if (*st == State::Status::kFailed) h.failed = true;  // still failed: per sqs.delete_failed
        continue;  // done: a repeated notification
      }
      ++h.open;
      bool attached = waiting_.count(hk) > 0;  // in progress or queued for another message
      waiting_.emplace(hk, id);
      if (!attached && !is_active(o)) {
        std::lock_guard lk2(mu_);
        queued_.push_back(std::move(o));
        wq_.notify_all();
      }
    }
    if (h.open == 0) resolved_.push_back(id);
    sqs_wq_.notify_all();
  }

  /// Starts readers for queued objects, at most max_concurrent_objects at a time.
  awaitable<void> sqs_dispatch(Fanout& out) {
    while (!ctx_.lifecycle->stopping()) {
      co_await wq_.wait(
          mu_,
          [&] {
            return ctx_.lifecycle->stopping() ||
                   (!queued_.empty() && running_ < static_cast<size_t>(cfg_.max_concurrent_objects));
          },
          std::chrono::seconds(1));
      std::optional<ObjectInfo> o;
      {
        std::lock_guard lk(mu_);
        if (ctx_.lifecycle->stopping() || queued_.empty() ||
            running_ >= static_cast<size_t>(cfg_.max_concurrent_objects))
          continue;
        o = std::move(queued_.front());
        queued_.pop_front();
      }
      start_reader(std::move(*o), out);
    }
  }

  /// An object's outcome (any thread): the messages that name it learn it.
  void sqs_object_final(const ObjectInfo& o, bool finished, bool failed) {
    std::lock_guard lk(sqs_mu_);
    auto [b, e] = waiting_.equal_range(State::hash(o.state_key(), o.version()));
    for (auto it = b; it != e; ++it) {
      auto h = held_.find(it->second);
      if (h == held_.end()) continue;
      if (failed)
        h->second.failed = true;
      else if (!finished)
        h->second.incomplete = true;
      if (h->second.open > 0 && --h->second.open == 0) resolved_.push_back(it->second);
    }
    waiting_.erase(b, e);
    sqs_wq_.notify_all();
  }

  /// Deletes the resolved messages whose objects are all delivered (or failed, with
  /// sqs.delete_failed); lets the others be.
  awaitable<void> sqs_flush() {
    static const char* kHelpLeft = "Messages not deleted, by reason";
    std::vector<aws::SqsBatchEntry> del, retry;
    std::vector<int64_t> sent;
    {
      std::lock_guard lk(sqs_mu_);
      for (uint64_t id : resolved_) {
        auto it = held_.find(id);
        if (it == held_.end()) continue;
        SqsHeld& h = it->second;
        if (h.failed && !cfg_.sqs.delete_failed) {
          sqs_counter("logship_sqs_messages_left_total", kHelpLeft, "failed").inc();
          report_error_for(m_, "sqs", "left_failed", h.m.id, std::chrono::hours(1),
                           fmt::format("message {} names an object that failed (see the object's error); left in the "
                                       "queue for its redrive policy (sqs.delete_failed: false)",
                                       h.m.id));
        } else if (h.incomplete) {
          // A stop: made visible again at the end of run_sqs. A transient failure: it reappears
          // when its visibility runs out. Either way its objects resume after what was delivered.
          if (ctx_.lifecycle->stopping()) continue;
          sqs_counter("logship_sqs_messages_left_total", kHelpLeft, "transient").inc();
          // Back in the queue after a short delay rather than the rest of its visibility.
          if (!h.lost) {
            auto vis = std::chrono::duration_cast<std::chrono::seconds>(cfg_.visibility_timeout);
            retry.push_back({std::to_string(id), h.m.receipt_handle,
                             static_cast<int>(std::min<int64_t>(kTransientRetry.count(), vis.count()))});
          }
        } else if (!h.lost) {
          del.push_back({std::to_string(id), h.m.receipt_handle, 0});
          sent.push_back(h.m.sent_ms);
          continue;  // erased once deleted
        }
        held_.erase(it);
      }
      resolved_.clear();
      sqs_in_flight_.set(static_cast<int64_t>(held_.size()));
    }
    if (!retry.empty()) co_await sqs_->change_visibility_batch(retry);  // failures: it comes back later
    if (del.empty()) co_return;
    auto r = co_await sqs_->delete_batch(del);
    std::map<std::string, bool> failed;  // entry id -> its receipt handle is lost
    if (r.value)
      for (auto& f : *r.value) {
        failed[f.id] = f.receipt_lost();
        if (f.receipt_lost())
          report_error_for(m_, "sqs", "delete_lost", "delete", std::chrono::minutes(10),
                           fmt::format("a message could not be deleted: {} {} (its visibility ran out and it was "
                                       "received again: its records may be sent twice)",
                                       f.code, f.message));
      }
    if (r.error)
      report_error_for(m_, "sqs", "delete", cfg_.queue_url, std::chrono::minutes(10),
                       r.error->message + "; retried");
    auto& deleted = sqs_counter("logship_sqs_messages_deleted_total", "Messages deleted after delivery");
    int64_t now_ms = now_ns() / 1'000'000;
    std::lock_guard lk(sqs_mu_);
    for (size_t i = 0; i < del.size(); ++i) {
      uint64_t id = std::stoull(del[i].id);
      auto f = failed.find(del[i].id);
      auto it = held_.find(id);
      if (f == failed.end()) {
        deleted.inc();
        if (sent[i] > 0) age_at_delete_.observe(static_cast<double>(std::max<int64_t>(0, now_ms - sent[i])) / 1000.0);
        if (it != held_.end()) held_.erase(it);
        continue;
      }
      // Not deleted: retried at the next tick (not at once: a failing DeleteMessage would be
      // called in a loop) unless its receipt is lost.
      if (it != held_.end()) {
        if (f->second)
          held_.erase(it);
        else
          delete_again_.push_back(id);
      }
    }
    sqs_in_flight_.set(static_cast<int64_t>(held_.size()));
    sqs_wq_.notify_all();
  }

  /// Every second: deletes what is resolved, extends the visibility of messages whose objects
  /// are in progress (at half of visibility_timeout, batched), forgets old state.
  awaitable<void> sqs_maintain() {
    const auto vis = std::chrono::duration_cast<std::chrono::seconds>(cfg_.visibility_timeout);
    auto& ext = sqs_counter("logship_sqs_visibility_extensions_total", "ChangeMessageVisibility extensions");
    auto last_prune = Clock::now();
    while (!ctx_.lifecycle->stopping()) {
      co_await sqs_wq_.wait(sqs_mu_, [&] { return !resolved_.empty() || ctx_.lifecycle->stopping(); },
                            std::chrono::seconds(1));
      if (ctx_.lifecycle->stopping()) break;
      {
        std::lock_guard lk(sqs_mu_);
        resolved_.insert(resolved_.end(), delete_again_.begin(), delete_again_.end());
        delete_again_.clear();
      }
      co_await sqs_flush();
      std::vector<aws::SqsBatchEntry> extend;
      auto now = Clock::now();
      {
        std::lock_guard lk(sqs_mu_);
        for (auto& [id, h] : held_)
          if (!h.lost && h.visible_until - now <= vis / 2)
            extend.push_back({std::to_string(id), h.m.receipt_handle, static_cast<int>(vis.count())});
      }
      if (!extend.empty()) {
        auto r = co_await sqs_->change_visibility_batch(extend);
        std::set<std::string> failed;
        if (r.value)
          for (auto& f : *r.value) {
            failed.insert(f.id);
            if (!f.receipt_lost()) continue;
            std::lock_guard lk(sqs_mu_);
            auto it = held_.find(std::stoull(f.id));
            if (it != held_.end() && !it->second.lost) {
              it->second.lost = true;
              report_error_for(m_, "sqs", "receipt_lost", it->second.m.id, std::chrono::hours(1),
                               fmt::format("message {}: its visibility can no longer be extended ({} {}); it may be "
                                           "processed again by another consumer (raise visibility_timeout)",
                                           it->second.m.id, f.code, f.message));
            }
          }
        std::lock_guard lk(sqs_mu_);
        for (auto& e : extend) {
          if (failed.count(e.id)) continue;
          auto it = held_.find(std::stoull(e.id));
          if (it == held_.end()) continue;
          it->second.visible_until = now + vis;
          ext.inc();
        }
      }
      if (now - last_prune > std::chrono::minutes(1)) {
        last_prune = now;
        state_.prune(now_ns() - std::chrono::duration_cast<std::chrono::nanoseconds>(cfg_.lookback).count() -
                     kPruneMarginNs);
        state_objects_.set(static_cast<int64_t>(state_.size()));
        ctx_.checkpoints->mark_dirty(ctx_.id);
      }
    }
    // A long poll in flight would hold the stop for up to sqs.wait_time: aborted (a message it
    // was about to hand over becomes visible again when its visibility runs out).
    sqs_http_->shutdown();
  }

  S3SourceConfig cfg_;
  ComponentContext ctx_;
  std::shared_ptr<replay::Context> rp_;
  size_t batch_bytes_ = kBatchBytes, batch_events_ = kBatchEvents;
  std::vector<std::pair<ObjectInfo, std::string>> replay_retry_;  // transient failures (under mu_)
  ComponentMetrics m_;
  Counter &objects_done_, &objects_failed_, &objects_listed_, &list_requests_, &get_requests_;
  Counter &compressed_bytes_, &decompressed_bytes_, &skipdata_rows_, &nodata_rows_;
  Counter &kms_calls_, &kms_cache_hits_;
  Gauge &state_objects_, &active_gauge_;
  formats::FormatOptions fopts_;
  formats::Compression compression_ = formats::Compression::kAuto;

  std::unique_ptr<HttpClient> http_;
  std::unique_ptr<aws::CredentialProvider> creds_;
  std::unique_ptr<aws::AwsClient> client_;
  std::unique_ptr<aws::KmsClient> kms_;
  struct CachedKey {
    aws::KeyBytes key;
    Clock::time_point expires;
  };
  std::mutex keys_mu_;
  std::map<std::string, CachedKey> keys_;  // sha256(wrapped key, context) -> data key
  std::set<std::string> keys_inflight_;    // ids whose kms:Decrypt is under way
  WaitQueue keys_wq_;                      // woken when one of them ends (under keys_mu_)
  std::string spool_dir_;
  std::mutex spool_mu_;
  std::vector<std::pair<int, std::string>> spool_pool_;  // emptied spool files, reused
  uint64_t spool_files_ = 0;
  std::string region_, endpoint_;
  bool path_style_ = false;

  State state_;
  std::map<std::string, std::vector<Run>> runs_;
  std::mutex mu_;
  WaitQueue wq_;
  size_t running_ = 0;
  std::set<uint64_t> active_;
  std::deque<ObjectInfo> queued_;  // sqs: objects waiting for a reader (under mu_)

  // sqs (under sqs_mu_ unless atomic)
  std::unique_ptr<aws::SqsClient> sqs_, sqs_recv_;
  std::unique_ptr<HttpClient> sqs_http_;
  std::unique_ptr<aws::AwsClient> sqs_client_;
  std::atomic<bool> sqs_ready_{false}, test_event_logged_{false};
  std::mutex sqs_mu_;
  WaitQueue sqs_wq_;
  std::map<uint64_t, SqsHeld> held_;
  uint64_t next_held_ = 0;
  std::multimap<uint64_t, uint64_t> waiting_;  // object (State::hash) -> held messages naming it
  std::vector<uint64_t> resolved_;             // held messages whose objects all have an outcome
  std::vector<uint64_t> delete_again_;         // resolved messages whose deletion failed
  Gauge& sqs_in_flight_ = metrics().gauge("logship_sqs_messages_in_flight",
                                          "Messages received and not yet deleted or let go",
                                          {{"component_id", ctx_.id}});
  Histogram& age_at_delete_ = metrics().histogram(
      "logship_sqs_message_age_seconds", "Age of a message (since it was sent) when it was deleted",
      {{"component_id", ctx_.id}}, {1, 5, 15, 60, 300, 900, 3600, 21600});
};

}  // namespace

std::unique_ptr<Source> make_s3_source(S3SourceConfig cfg, const ComponentContext& ctx) {
  return std::make_unique<S3Source>(std::move(cfg), ctx);
}

}  // namespace logship::s3
