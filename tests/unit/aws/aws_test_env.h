#pragma once
// Test helpers for the AWS tests: an environment sandbox (every AWS_* variable the library reads
// saved, cleared and restored; HOME and the shared files moved to a temp dir; IMDS disabled and
// STS pointed at a closed loopback port, so no test can reach a real AWS or metadata address),
// and a synchronous runner for awaitables.
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <doctest/doctest.h>
#include <boost/asio/use_future.hpp>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "agent/aws/credentials.h"
#include "agent/aws/sigv4.h"
#include "agent/core/asio.h"
#include "tests/unit/aws/aws_test_server.h"

namespace logship::aws_test {

/// Static credentials in us-east-1 (the clients' tests sign with them).
inline aws::CredentialProviderOptions static_keys(std::string access_key_id, std::string secret) {
  aws::CredentialProviderOptions o;
  o.region = "us-east-1";
  o.config.access_key_id = std::move(access_key_id);
  o.config.secret_access_key = std::move(secret);
  return o;
}

inline const char* const kAwsVars[] = {"AWS_ACCESS_KEY_ID",
                                       "AWS_SECRET_ACCESS_KEY",
                                       "AWS_SESSION_TOKEN",
                                       "AWS_PROFILE",
                                       "AWS_DEFAULT_PROFILE",
                                       "AWS_REGION",
                                       "AWS_DEFAULT_REGION",
                                       "AWS_WEB_IDENTITY_TOKEN_FILE",
                                       "AWS_ROLE_ARN",
                                       "AWS_ROLE_SESSION_NAME",
                                       "AWS_SHARED_CREDENTIALS_FILE",
                                       "AWS_CONFIG_FILE",
                                       "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                                       "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                                       "AWS_CONTAINER_AUTHORIZATION_TOKEN",
                                       "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
                                       "AWS_EC2_METADATA_SERVICE_ENDPOINT",
                                       "AWS_EC2_METADATA_DISABLED",
                                       "AWS_ENDPOINT_URL",
                                       "AWS_ENDPOINT_URL_STS",
                                       "AWS_ENDPOINT_URL_S3",
                                       "AWS_ENDPOINT_URL_SQS",
                                       "AWS_ENDPOINT_URL_KMS",
                                       "HOME",
                                       "http_proxy",
                                       "HTTP_PROXY",
                                       "https_proxy",
                                       "HTTPS_PROXY",
                                       "ALL_PROXY",
                                       "no_proxy",
                                       "NO_PROXY"};

/// Saves and clears the AWS environment for one test; restores it on destruction.
class AwsEnv {
 public:
  AwsEnv() {
    for (const char* v : kAwsVars) {
      const char* cur = ::getenv(v);
      saved_[v] = cur ? std::optional<std::string>(cur) : std::nullopt;
      ::unsetenv(v);
    }
    char tmpl[] = "/tmp/logship-aws-test-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    set("HOME", dir_);
    set("AWS_EC2_METADATA_DISABLED", "true");
    set("AWS_ENDPOINT_URL_STS", "http://127.0.0.1:1");  // closed: a test must set its own
  }
  ~AwsEnv() {
    for (auto& [k, v] : saved_) {
      if (v)
        ::setenv(k.c_str(), v->c_str(), 1);
      else
        ::unsetenv(k.c_str());
    }
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  AwsEnv(const AwsEnv&) = delete;
  AwsEnv& operator=(const AwsEnv&) = delete;

  void set(const std::string& k, const std::string& v) { ::setenv(k.c_str(), v.c_str(), 1); }
  void unset(const std::string& k) { ::unsetenv(k.c_str()); }
  const std::string& dir() const { return dir_; }
  /// Writes `text` to dir()/name (mode 0600) and returns the path.
  std::string write(const std::string& name, const std::string& text) {
    std::string path = dir_ + "/" + name;
    std::filesystem::create_directories(std::filesystem::path(path).parent_path());
    std::ofstream(path, std::ios::binary) << text;
    ::chmod(path.c_str(), 0600);
    return path;
  }

 private:
  std::map<std::string, std::optional<std::string>> saved_;
  std::string dir_;
};

template <class T>
T run_sync(TestLoop& loop, awaitable<T> a, std::chrono::seconds limit = std::chrono::seconds(15)) {
  auto fut = asio::co_spawn(loop.executor(), std::move(a), asio::use_future);
  REQUIRE(fut.wait_for(limit) == std::future_status::ready);
  return fut.get();
}

/// Form fields of an application/x-www-form-urlencoded body.
inline std::map<std::string, std::string> form_fields(const std::string& body) {
  std::map<std::string, std::string> out;
  size_t start = 0;
  while (start <= body.size()) {
    size_t amp = body.find('&', start);
    std::string part =
        body.substr(start, amp == std::string::npos ? std::string::npos : amp - start);
    size_t eq = part.find('=');
    if (!part.empty()) {
      std::string k = part.substr(0, eq), v = eq == std::string::npos ? "" : part.substr(eq + 1);
      for (char& c : k)
        if (c == '+') c = ' ';
      for (char& c : v)
        if (c == '+') c = ' ';
      out[aws::percent_decode(k)] = aws::percent_decode(v);
    }
    if (amp == std::string::npos) break;
    start = amp + 1;
  }
  return out;
}

/// An STS Query-protocol success answer for `action`.
inline std::string sts_response(const std::string& action, const std::string& key_id,
                                const std::string& secret, const std::string& token,
                                const std::string& expiration) {
  return "<" + action + "Response xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\n  <" +
         action + "Result>\n    <Credentials>\n      <AccessKeyId>" + key_id +
         "</AccessKeyId>\n      <SecretAccessKey>" + secret +
         "</SecretAccessKey>\n      <SessionToken>" + token +
         "</SessionToken>\n      <Expiration>" + expiration +
         "</Expiration>\n    </Credentials>\n  </" + action +
         "Result>\n  <ResponseMetadata>"
         "<RequestId>req-1</RequestId></ResponseMetadata>\n</" +
         action + "Response>\n";
}

/// ECS / IMDS JSON credentials.
inline std::string json_credentials(const std::string& key_id, const std::string& secret,
                                    const std::string& token, const std::string& expiration) {
  return "{\"Code\":\"Success\",\"LastUpdated\":\"2030-01-01T00:00:00Z\",\"Type\":\"AWS-HMAC\","
         "\"AccessKeyId\":\"" +
         key_id + "\",\"SecretAccessKey\":\"" + secret + "\",\"Token\":\"" + token +
         "\",\"Expiration\":\"" + expiration + "\"}";
}

}  // namespace logship::aws_test
