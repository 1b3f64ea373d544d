#pragma once
// The AWS default credential chain (AWS.md §2), region and endpoint resolution.
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "agent/aws/sigv4.h"
#include "agent/core/asio.h"
#include "agent/net/http_client.h"
#include "agent/pipeline/wait_queue.h"

namespace logship::aws {

/// The `credentials` block of an AWS-using component (CONFIG.md). All fields optional.
struct CredentialsConfig {
  std::string access_key_id;      ///< with secret_access_key: static keys
  std::string secret_access_key;  ///< never logged
  std::string session_token;      ///< never logged
  std::string profile;            ///< a profile of the shared files (overrides AWS_PROFILE)
  std::string role_arn;           ///< assume this role with the credentials found otherwise
  std::string role_session_name;  ///< default "logship-<unix time>"
  std::string external_id;        ///< sent with AssumeRole when set
};

/// Options of a CredentialProvider.
struct CredentialProviderOptions {
  CredentialsConfig config;
  /// Region for STS (role_arn, web identity, profile roles); "" = resolve_region_sync(), then
  /// us-east-1.
  std::string region;
  /// Temporary credentials are refreshed this long before their Expiration. Default 5 min.
  std::chrono::seconds refresh_margin{300};
  /// Injected wall clock (tests); default std::chrono::system_clock::now.
  std::function<std::chrono::system_clock::time_point()> now;
};

/// Resolves credentials through the default chain: explicit config → environment → web identity
/// → shared files (profile, role_arn + source_profile) → ECS container → EC2 IMDSv2.
///
/// Guarantees: get() returns cached credentials until ~refresh_margin before their Expiration
/// or until invalidate(); at most one fetch runs at a time (concurrent callers wait for it and
/// share its result or its error); errors are std::runtime_error listing every provider tried
/// and why it failed, never containing a secret; one info line names the provider used.
/// Thread-safe. `http` must outlive the provider.
class CredentialProvider {
 public:
  CredentialProvider(HttpClient& http, CredentialProviderOptions opts);
  CredentialProvider(const CredentialProvider&) = delete;
  CredentialProvider& operator=(const CredentialProvider&) = delete;

  /// Cached or freshly fetched credentials; throws std::runtime_error when no provider works.
  awaitable<Credentials> get();
  /// Drops the cache (e.g. after ExpiredToken): the next get() fetches again.
  void invalidate();
  /// Number of chain resolutions started (for tests and metrics).
  uint64_t fetches() const;

 private:
  awaitable<Credentials> fetch();
  bool fresh(const Credentials& c) const;
  std::chrono::system_clock::time_point now() const;

  HttpClient& http_;
  CredentialProviderOptions opts_;
  mutable std::mutex mu_;
  WaitQueue wq_;
  std::optional<Credentials> cached_;
  bool refreshing_ = false;
  uint64_t seq_ = 0;  ///< completed fetches
  uint64_t fetches_ = 0;
  std::optional<std::string> last_error_;
  std::string last_provider_;
};

// ---- shared config files --------------------------------------------------------------------

/// One profile merged from ~/.aws/config and ~/.aws/credentials (credentials file wins).
/// Keys lower-cased ("aws_access_key_id", "region", "role_arn", "source_profile", …).
using Profile = std::map<std::string, std::string>;

/// The profile `name` from the shared files (AWS_SHARED_CREDENTIALS_FILE / AWS_CONFIG_FILE or
/// ~/.aws/…); nullopt when neither file has it.
std::optional<Profile> load_profile(const std::string& name);
/// Config profile → AWS_PROFILE → "default".
std::string profile_name(const std::string& configured);

// ---- region and endpoints -------------------------------------------------------------------

/// config value → AWS_REGION → AWS_DEFAULT_REGION → profile `region`; "" when none.
std::string resolve_region_sync(const std::string& configured, const std::string& profile = "");
/// resolve_region_sync(), then IMDS /latest/meta-data/placement/region (unless disabled).
/// Throws std::runtime_error naming every place looked at when none has a region.
awaitable<std::string> resolve_region(HttpClient& http, const std::string& configured,
                                      const std::string& profile = "");

/// Endpoint for `service` ("s3", "sqs", "kms", "sts"): config value → AWS_ENDPOINT_URL_<SERVICE>
/// → AWS_ENDPOINT_URL → https://<service>.<region>.amazonaws.com (".com.cn" in cn- regions).
/// Trailing slashes are removed.
std::string resolve_endpoint(std::string_view service, const std::string& configured,
                             const std::string& region);
/// True when `configured`, or when the endpoint host is an IP address (v4, or v6 in brackets) or
/// `localhost` (virtual-hosted bucket names cannot work there).
bool force_path_style(std::string_view endpoint, bool configured);

// ---- helpers shared with the clients (exposed for tests) ------------------------------------

/// Parses ISO 8601 UTC times as AWS returns them ("2015-08-30T12:36:00Z", fractional seconds
/// and "+00:00" accepted); nullopt when malformed.
std::optional<std::chrono::system_clock::time_point> parse_iso8601(std::string_view s);
/// Parses an RFC 1123 HTTP date ("Sun, 30 Aug 2015 12:36:00 GMT"); nullopt when malformed.
std::optional<std::chrono::system_clock::time_point> parse_http_date(std::string_view s);
/// The ECS container credentials URL from the environment, or "" when not configured.
std::string ecs_credentials_url();
/// The IMDS base URL (AWS_EC2_METADATA_SERVICE_ENDPOINT or http://169.254.169.254), or "" when
/// AWS_EC2_METADATA_DISABLED=true.
std::string imds_endpoint();

}  // namespace logship::aws
