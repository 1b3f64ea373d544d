#include "plugins/sources/s3/config.h"

#include <openssl/crypto.h>

#include <algorithm>
#include <cctype>

#include "agent/config/config.h"
#include "agent/core/base64.h"
#include "agent/core/secret.h"
#include "agent/crypto/at_rest.h"
#include "plugins/sources/file/decode_timestamp.h"

namespace logship {

bool S3CredentialsConfig::any() const {
  return !access_key_id.empty() || secret_access_key || session_token || !profile.empty() ||
         !role_arn.empty();
}

S3SourceConfig S3SourceConfig::parse(ConfigNode& cfg) {
  S3SourceConfig c;
  c.mode = cfg.choice("mode", std::nullopt, {"poll", "sqs"});
  const bool sqs = c.mode == "sqs";
  // sqs: the bucket is optional (notifications name theirs); when set, others are refused.
  c.bucket = sqs ? cfg.str("bucket", std::string()) : cfg.str("bucket");
  if ((!sqs || !c.bucket.empty()) &&
      (c.bucket.empty() || c.bucket.size() > 255 || c.bucket.find('/') != std::string::npos))
    cfg.error("bucket", "bucket must be a bucket name (no '/', at most 255 characters)");
  if (sqs) {
    c.queue_url = cfg.str("queue_url");
    if (c.queue_url.rfind("http://", 0) != 0 && c.queue_url.rfind("https://", 0) != 0)
      cfg.error("queue_url",
                "queue_url must be the queue's URL, such as "
                "https://sqs.us-east-1.amazonaws.com/123456789012/cloudtrail-events");
    c.visibility_timeout = cfg.duration("visibility_timeout", std::chrono::seconds(300));
    if (c.visibility_timeout < std::chrono::seconds(10) ||
        c.visibility_timeout > std::chrono::hours(12))
      cfg.error("visibility_timeout", "visibility_timeout must be between 10s and 12h");
    if (auto q = cfg.map("sqs")) {
      c.sqs.max_messages = static_cast<int>(q->integer("max_messages", 10, 1, 10));
      c.sqs.wait_time = q->duration("wait_time", std::chrono::seconds(20));
      if (c.sqs.wait_time > std::chrono::seconds(20) || c.sqs.wait_time < std::chrono::seconds(0))
        q->error("wait_time", "wait_time must be between 0s and 20s (SQS's long poll limit)");
      c.sqs.max_in_flight = static_cast<int>(q->integer("max_in_flight", 20, 1, 10000));
      c.sqs.delete_failed = q->boolean("delete_failed", false);
      c.sqs.endpoint = q->str("endpoint", std::string());
      if (!c.sqs.endpoint.empty() && c.sqs.endpoint.rfind("http://", 0) != 0 &&
          c.sqs.endpoint.rfind("https://", 0) != 0)
        q->error("endpoint", "sqs.endpoint must be an http:// or https:// URL");
      q->finish();
    }
  } else {
    for (const char* k : {"queue_url", "visibility_timeout", "sqs"}) {
      cfg.touch(k);
      if (cfg.has(k)) cfg.error(k, std::string(k) + " is only used with mode: sqs");
    }
  }
  c.prefix = cfg.list("prefix", std::vector<std::string>{""});
  if (c.prefix.empty()) c.prefix.push_back("");
  for (auto& p : c.prefix)
    if (p.size() > 1024) cfg.error("prefix", "a prefix is at most 1024 bytes (S3's key limit)");
  c.key_include = cfg.list("key_include", std::vector<std::string>{});
  c.key_exclude = cfg.list("key_exclude", std::vector<std::string>{});
  c.format = cfg.choice("format", std::nullopt, {"cloudtrail", "vpcflow", "ndjson", "lines"});
  c.compression = cfg.choice("compression", "auto", {"auto", "gzip", "zstd", "none"});
  c.region = cfg.str("region", std::string());
  c.endpoint = cfg.str("endpoint", std::string());
  if (!c.endpoint.empty() && c.endpoint.rfind("http://", 0) != 0 &&
      c.endpoint.rfind("https://", 0) != 0)
    cfg.error("endpoint", "endpoint must be an http:// or https:// URL");
  if (cfg.has("force_path_style")) c.force_path_style = cfg.boolean("force_path_style", false);
  if (auto cr = cfg.map("credentials")) {
    c.credentials.access_key_id = cr->str("access_key_id", std::string());
    c.credentials.secret_access_key = cr->secret("secret_access_key", false);
    c.credentials.session_token = cr->secret("session_token", false);
    c.credentials.profile = cr->str("profile", std::string());
    c.credentials.role_arn = cr->str("role_arn", std::string());
    if (c.credentials.access_key_id.empty() != !c.credentials.secret_access_key)
      cr->error("", "credentials: access_key_id and secret_access_key go together");
    if (c.credentials.session_token && c.credentials.access_key_id.empty())
      cr->error("session_token", "credentials: session_token needs access_key_id");
    if (!c.credentials.profile.empty() && !c.credentials.access_key_id.empty())
      cr->error("profile", "credentials: give either keys or a profile, not both");
    cr->finish();
  }
  c.poll_interval = cfg.duration("poll_interval", std::chrono::seconds(60));
  if (c.poll_interval < std::chrono::milliseconds(100))
    cfg.error("poll_interval", "poll_interval must be at least 100ms");
  if (auto s = cfg.opt_str("since")) {
    int64_t ns = 0;
    if (!decode::parse_rfc3339(*s, ns))
      cfg.error("since", "since must be an RFC 3339 time such as 2026-01-31T00:00:00Z");
    c.since_ns = ns;
  }
  c.lookback = cfg.duration("lookback", std::chrono::hours(24));
  if (c.lookback < std::chrono::minutes(1)) cfg.error("lookback", "lookback must be at least 1m");
  c.max_concurrent_objects = cfg.integer("max_concurrent_objects", 4, 1, 256);
  c.max_object_bytes = cfg.size("max_object_bytes", 10ull << 30);
  if (c.max_object_bytes < 1024)
    cfg.error("max_object_bytes", "max_object_bytes must be at least 1KiB");
  c.indexed_fields = cfg.list("indexed_fields", std::vector<std::string>{});
  if (!c.indexed_fields.empty() && c.format != "cloudtrail")
    cfg.error("indexed_fields", "indexed_fields applies to format: cloudtrail");
  if (auto v = cfg.map("vpcflow")) {
    c.vpc_emit_json = v->choice("emit", "raw", {"raw", "json"}) == "json";
    v->finish();
    if (c.format != "vpcflow") cfg.error("vpcflow", "vpcflow options apply to format: vpcflow");
  }
  if (auto s = cfg.map("sse_c")) {
    auto path = s->str("key_file");
    std::string key;
    try {
      key = Secret::read_file(path, SecretForm::kBytes);
    } catch (const std::exception& e) {
      s->error("key_file", e.what());
    }
    auto decoded = key.size() == 44 ? base64_decode(key) : std::nullopt;
    if (key.size() != 32 && !(decoded && decoded->size() == 32))
      s->error("key_file",
               "the SSE-C key file must hold a 256-bit key: 32 raw bytes or 44 "
               "characters of base64");
    if (!s->has_error("key_file"))
      c.sse_c_key = SecretStore::instance().add(std::move(key), path, SecretForm::kBytes);
    s->finish();
  }
  if (auto e = cfg.map("client_side_encryption")) {
    c.cse.enabled = true;
    if (auto path = e->opt_str("kek_file")) {
      std::string key;
      try {
        key = Secret::read_file(*path, SecretForm::kBytes);
      } catch (const std::exception& ex) {
        e->error("kek_file", ex.what());
      }
      if (!e->has_error("kek_file")) {
        if (!crypto::decode_key_256(key)) {
          OPENSSL_cleanse(key.data(), key.size());
          e->error("kek_file",
                   "the key-encryption key file must hold a 256-bit key: 32 raw bytes or 64 hex "
                   "characters");
        } else {
          c.cse.kek = SecretStore::instance().add(std::move(key), *path, SecretForm::kBytes);
        }
      }
    }
    c.cse.allow_legacy = e->boolean("allow_legacy", false);
    c.cse.require_commitment = e->choice("commitment", "allow", {"allow", "require"}) == "require";
    c.cse.required = e->boolean("required", false);
    if (auto ctx = e->map("encryption_context")) {
      for (auto it : ctx->raw()) {
        std::string k = it.first.as<std::string>();
        if (k == "aws:x-amz-cek-alg" || k == "kms_cmk_id") {
          ctx->touch(k);
          ctx->error(k, k + " is reserved (set by the S3 Encryption Client)");
          continue;
        }
        c.cse.context[k] = ctx->str(k);
      }
      ctx->finish();
    }
    e->finish();
  }
  c.kms_endpoint = cfg.str("kms_endpoint", std::string());
  if (!c.kms_endpoint.empty() && c.kms_endpoint.rfind("http://", 0) != 0 &&
      c.kms_endpoint.rfind("https://", 0) != 0)
    cfg.error("kms_endpoint", "kms_endpoint must be an http:// or https:// URL");
  if (!c.kms_endpoint.empty() && !c.cse.enabled)
    cfg.error("kms_endpoint", "kms_endpoint is used only with client_side_encryption");
  c.host = cfg.str("host", std::string());
  c.sourcetype =
      cfg.str("sourcetype", c.format == "cloudtrail" ? std::string("aws:cloudtrail")
                            : c.format == "vpcflow"  ? std::string("aws:cloudwatchlogs:vpcflow")
                                                     : std::string());
  c.index = cfg.str("index", std::string());
  c.event_id = cfg.boolean("event_id", false);
  for (auto& g : c.key_include)
    if (g.find("CloudTrail-Insight") != std::string::npos) c.include_insights = true;
  cfg.finish();
  return c;
}

}  // namespace logship
