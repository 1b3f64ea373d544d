#include "agent/aws/kms.h"

#include <fmt/format.h>
#include <openssl/crypto.h>
#include <simdjson.h>

#include "agent/core/base64.h"
#include "agent/core/json_escape.h"

namespace logship::aws {

KeyBytes& KeyBytes::operator=(KeyBytes&& o) noexcept {
  if (this != &o) {
    wipe();
    v_ = std::move(o.v_);
    o.wipe();
  }
  return *this;
}

void KeyBytes::wipe() {
  if (!v_.empty()) OPENSSL_cleanse(v_.data(), v_.size());
  v_.clear();
  v_.shrink_to_fit();
}

namespace {

void append_context(std::string& out, const EncryptionContext& ctx) {
  out += '{';
  bool first = true;
  for (auto& [k, v] : ctx) {
    if (!first) out += ',';
    first = false;
    json_quote_append(out, k);
    out += ':';
    json_quote_append(out, v);
  }
  out += '}';
}

std::string key_name(std::string_view key_id) {
  return key_id.empty() ? std::string("the key that wrapped it") : fmt::format("key {}", key_id);
}

/// The string members of a KMS answer. They are read in place from a padded copy of the body
/// that is wiped afterwards: simdjson's DOM would copy the key's base64 into buffers of its own
/// that outlive the call unwiped. Only the (non-secret) member names go through simdjson's
/// unescaping buffer; values are taken as written, so a value with a JSON escape (base64 and
/// key ids never need one) counts as absent.
struct Answer {
  std::optional<std::string> plaintext, blob, key_id;
};

Answer read_answer(std::string& body) {
  Answer a;
  simdjson::padded_string buf(body);
  OPENSSL_cleanse(body.data(), body.size());
  {
    simdjson::ondemand::parser parser;
    simdjson::ondemand::document doc;
    simdjson::ondemand::object obj;
    if (parser.iterate(buf).get(doc) == simdjson::SUCCESS &&
        doc.get_object().get(obj) == simdjson::SUCCESS) {
      for (auto field : obj) {
        std::string_view name, tok;
        if (field.unescaped_key().get(name) != simdjson::SUCCESS) break;
        if (field.value().raw_json_token().get(tok) != simdjson::SUCCESS) break;
        while (!tok.empty() && (tok.back() == ' ' || tok.back() == '\n' || tok.back() == '\r' ||
                                tok.back() == '\t'))
          tok.remove_suffix(1);
        if (tok.size() < 2 || tok.front() != '"' || tok.back() != '"') continue;
        tok = tok.substr(1, tok.size() - 2);
        if (tok.find('\\') != std::string_view::npos) continue;
        if (name == "Plaintext")
          a.plaintext.emplace(tok);
        else if (name == "CiphertextBlob")
          a.blob.emplace(tok);
        else if (name == "KeyId")
          a.key_id.emplace(tok);
      }
    }
  }
  OPENSSL_cleanse(buf.data(), buf.size());
  return a;
}

}  // namespace

KmsClient::KmsClient(AwsClient& client, std::string endpoint, std::string region,
                     Lifecycle* lifecycle)
    : client_(client),
      endpoint_(std::move(endpoint)),
      region_(std::move(region)),
      lifecycle_(lifecycle) {}

std::string KmsClient::decrypt_body(std::string_view blob, const EncryptionContext& ctx,
                                    std::string_view key_id) {
  std::string body = "{\"CiphertextBlob\":";
  json_quote_append(body, base64_encode(blob));
  body += ",\"EncryptionContext\":";
  append_context(body, ctx);
  if (!key_id.empty()) {
    body += ",\"KeyId\":";
    json_quote_append(body, key_id);
  }
  body += '}';
  return body;
}

awaitable<HttpResponse> KmsClient::call(std::string_view target, std::string body) {
  HttpRequest req;
  req.method = "POST";
  req.url = endpoint_ + "/";
  req.headers.emplace_back("Content-Type", "application/x-amz-json-1.1");
  req.headers.emplace_back("X-Amz-Target", "TrentService." + std::string(target));
  req.body = std::move(body);
  SendOptions o;
  o.service = "kms";
  o.region = region_;
  o.lifecycle = lifecycle_;
  calls_.fetch_add(1, std::memory_order_relaxed);
  co_return co_await send_or_fail(client_, std::move(req), o);
}

KmsError KmsClient::explain(const HttpResponse& r, std::string_view op, std::string_view key_id,
                            std::string_view what) const {
  KmsError out;
  if (r.transport_error()) {
    out.kind = KmsError::Kind::kTransport;
    out.message = fmt::format("kms:{} on {} for {}: no answer from {}: {}", op, key_name(key_id),
                              what, endpoint_, r.error);
    return out;
  }
  auto e = parse_aws_error(r);
  if (!e) {
    out.message = fmt::format("kms:{} on {} for {}: unexpected answer (HTTP {})", op,
                              key_name(key_id), what, r.status);
    return out;
  }
  out.code = e->code;
  const std::string detail = e->to_string();
  if (e->code == "AccessDeniedException") {
    out.kind = KmsError::Kind::kAccessDenied;
    out.message = fmt::format(
        "kms:{} denied on {} for {} (grant kms:{} on it to these "
        "credentials): {}",
        op, key_name(key_id), what, op, detail);
  } else if (e->code == "InvalidCiphertextException") {
    out.kind = KmsError::Kind::kInvalidCiphertext;
    out.message = fmt::format(
        "kms:{} refused the wrapped data key of {}: wrong key or encryption context ({}): {}", op,
        what, key_name(key_id), detail);
  } else if (e->code == "IncorrectKeyException") {
    out.kind = KmsError::Kind::kIncorrectKey;
    out.message = fmt::format("kms:{}: the data key of {} was not wrapped by {}: {}", op, what,
                              key_name(key_id), detail);
  } else if (e->code == "KMSInvalidStateException" || e->code == "DisabledException" ||
             e->code == "NotFoundException" || e->code == "KeyUnavailableException") {
    out.kind = KmsError::Kind::kKeyUnusable;
    out.message = fmt::format(
        "kms:{} for {}: {} cannot be used (disabled, pending deletion or "
        "not found): {}",
        op, what, key_name(key_id), detail);
  } else if (retryable(*e)) {
    out.kind = KmsError::Kind::kThrottled;
    out.message = fmt::format("kms:{} on {} for {}: still failing after retries: {}", op,
                              key_name(key_id), what, detail);
  } else {
    out.message = fmt::format("kms:{} on {} for {} failed: {}", op, key_name(key_id), what, detail);
  }
  return out;
}

awaitable<KmsResult<KmsDecrypted>> KmsClient::decrypt(std::string_view blob,
                                                      const EncryptionContext& ctx,
                                                      std::string_view key_id,
                                                      std::string_view what) {
  KmsResult<KmsDecrypted> out;
  HttpResponse r = co_await call("Decrypt", decrypt_body(blob, ctx, key_id));
  if (r.status != 200) {
    out.error = explain(r, "Decrypt", key_id, what);
    co_return out;
  }
  Answer ans = read_answer(r.body);  // wipes the body (it held the key)
  auto& pt = ans.plaintext;
  auto& kid = ans.key_id;
  std::optional<std::string> key = pt ? base64_decode(*pt) : std::nullopt;
  if (pt) OPENSSL_cleanse(pt->data(), pt->size());
  if (!key) {
    out.error = KmsError{KmsError::Kind::kOther, "",
                         fmt::format("kms:Decrypt on {} for {}: the answer holds no valid "
                                     "Plaintext",
                                     key_name(key_id), what)};
    co_return out;
  }
  out.value = KmsDecrypted{KeyBytes(std::move(*key)), kid.value_or(std::string(key_id))};
  co_return out;
}

awaitable<KmsResult<KmsDataKey>> KmsClient::generate_data_key(std::string_view key_id,
                                                              const EncryptionContext& ctx,
                                                              std::string_view what) {
  KmsResult<KmsDataKey> out;
  std::string body = "{\"KeyId\":";
  json_quote_append(body, key_id);
  body += ",\"KeySpec\":\"AES_256\",\"EncryptionContext\":";
  append_context(body, ctx);
  body += '}';
  HttpResponse r = co_await call("GenerateDataKey", std::move(body));
  if (r.status != 200) {
    out.error = explain(r, "GenerateDataKey", key_id, what);
    co_return out;
  }
  Answer ans = read_answer(r.body);  // wipes the body (it held the key)
  auto& pt = ans.plaintext;
  auto& kid = ans.key_id;
  std::optional<std::string> key = pt ? base64_decode(*pt) : std::nullopt;
  std::optional<std::string> wrapped = ans.blob ? base64_decode(*ans.blob) : std::nullopt;
  if (pt) OPENSSL_cleanse(pt->data(), pt->size());
  if (!key || key->size() != 32 || !wrapped || wrapped->empty()) {
    if (key) OPENSSL_cleanse(key->data(), key->size());
    out.error = KmsError{KmsError::Kind::kOther, "",
                         fmt::format("kms:GenerateDataKey on {} for {}: the answer holds no "
                                     "256-bit Plaintext and CiphertextBlob",
                                     key_name(key_id), what)};
    co_return out;
  }
  out.value =
      KmsDataKey{KeyBytes(std::move(*key)), std::move(*wrapped), kid.value_or(std::string(key_id))};
  co_return out;
}

}  // namespace logship::aws
