#include "agent/crypto/kms_key.h"

#include <fcntl.h>
#include <openssl/sha.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include <fmt/format.h>
#include <simdjson.h>

#include "agent/aws/client.h"
#include "agent/aws/credentials.h"
#include "agent/aws/kms.h"
#include "agent/core/base64.h"
#include "agent/core/json_escape.h"
#include "agent/core/log.h"
#include "agent/net/http_client.h"

namespace logship::crypto {

namespace {
std::string file_for(const std::string& dir, const std::string& kms_key_id) {
  unsigned char md[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(kms_key_id.data()), kms_key_id.size(), md);
  return fmt::format("{}/kms-{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}.json", dir, md[0],
                     md[1], md[2], md[3], md[4], md[5], md[6], md[7]);
}

struct Wrapped {
  std::string kms_key_id, blob;
};

std::optional<Wrapped> read_wrapped(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  std::string text = ss.str();
  simdjson::dom::parser p;
  simdjson::dom::element doc;
  if (p.parse(text).get(doc)) return std::nullopt;
  std::string_view id, blob;
  if (doc["kms_key_id"].get(id) || doc["ciphertext_blob"].get(blob)) return std::nullopt;
  auto raw = base64_decode(blob);
  if (!raw) return std::nullopt;
  return Wrapped{std::string(id), std::move(*raw)};
}

void write_wrapped(const std::string& path, const std::string& kms_key_id,
                   const std::string& blob) {
  std::string body = "{\"kms_key_id\":\"";
  json_escape_append(body, kms_key_id);
  body += "\",\"ciphertext_blob\":\"" + base64_encode(blob) + "\"}\n";
  std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  bool ok = fd >= 0 && ::write(fd, body.data(), body.size()) == static_cast<ssize_t>(body.size()) &&
            ::fsync(fd) == 0;
  if (fd >= 0) ::close(fd);
  if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0)
    throw std::runtime_error(
        fmt::format("cannot write the wrapped data key {}: {}", path, std::strerror(errno)));
  int dfd = ::open(std::filesystem::path(path).parent_path().c_str(), O_RDONLY | O_DIRECTORY);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

std::string region_of_arn(const std::string& id) {
  // arn:aws:kms:<region>:<account>:key/<id>
  if (id.rfind("arn:", 0) != 0) return "";
  size_t a = 0;
  for (int i = 0; i < 3; ++i) {
    a = id.find(':', a);
    if (a == std::string::npos) return "";
    ++a;
  }
  size_t b = id.find(':', a);
  return b == std::string::npos ? "" : id.substr(a, b - a);
}
}  // namespace

awaitable<void> load_kms_keys(Executor ex, const std::string& data_dir,
                              const std::string& kms_key_id, KeyRing& ring) {
  std::string dir = data_dir + "/keys";
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw std::runtime_error(fmt::format("cannot create {}: {}", dir, ec.message()));
  ::chmod(dir.c_str(), 0700);
  HttpClient http(ex, TlsOptions{}, 2);
  std::string region = co_await aws::resolve_region(http, region_of_arn(kms_key_id));
  aws::CredentialProviderOptions po;
  po.region = region;
  aws::CredentialProvider creds(http, std::move(po));
  aws::AwsClient client(http, creds);
  aws::KmsClient kms(client, aws::resolve_endpoint("kms", "", region), region);
  aws::EncryptionContext ctx{{"logship", "at-rest data key"}};

  std::string mine = file_for(dir, kms_key_id);
  if (!std::filesystem::exists(mine)) {
    auto r = co_await kms.generate_data_key(kms_key_id, ctx, "the at-rest data key");
    if (!r.ok())
      throw std::runtime_error(
          fmt::format("encryption.kms_key_id: cannot make the at-rest data "
                      "key: {}",
                      r.error ? r.error->message : "unknown error"));
    write_wrapped(mine, kms_key_id, r.value->ciphertext_blob);
    auto k = std::make_shared<MasterKey>(r.value->plaintext.bytes());
    k->origin = "kms " + kms_key_id;
    spdlog::info(
        "at-rest encryption: made a data key with KMS key {} (id {}), stored wrapped in {}",
        kms_key_id, k->id_hex(), mine);
    ring.set_current(std::move(k));
  }
  std::vector<std::string> files;
  for (auto& de : std::filesystem::directory_iterator(dir, ec)) {
    std::string n = de.path().filename().string();
    if (n.starts_with("kms-") && n.ends_with(".json")) files.push_back(de.path().string());
  }
  std::sort(files.begin(), files.end());
  for (auto& f : files) {
    bool current = f == mine;
    if (current && ring.current()) continue;  // just made
    auto w = read_wrapped(f);
    if (!w) {
      if (current)
        throw std::runtime_error(
            fmt::format("{} is not a wrapped data key (damaged?); move it "
                        "away only if no buffered data needs it",
                        f));
      spdlog::warn("at-rest encryption: {} is not a wrapped data key; ignored", f);
      continue;
    }
    auto r = co_await kms.decrypt(w->blob, ctx, w->kms_key_id, f);
    if (!r.ok()) {
      std::string msg = r.error ? r.error->message : "unknown error";
      if (current)
        throw std::runtime_error(fmt::format(
            "encryption.kms_key_id: cannot unwrap the at-rest data key {}: {}", f, msg));
      spdlog::warn("at-rest encryption: cannot unwrap the earlier data key {} (KMS key {}): {}", f,
                   w->kms_key_id, msg);
      continue;
    }
    auto k = std::make_shared<MasterKey>(r.value->plaintext.bytes());
    k->origin = "kms " + w->kms_key_id;
    if (current)
      ring.set_current(std::move(k));
    else
      ring.add_previous(std::move(k));
  }
  http.shutdown();
  co_return;
}

}  // namespace logship::crypto
