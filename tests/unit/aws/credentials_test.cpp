#include "agent/aws/credentials.h"

#include <doctest/doctest.h>

#include <atomic>
#include <thread>

#include "tests/unit/aws/aws_test_env.h"

using namespace logship;
using namespace logship::aws;
using namespace std::chrono_literals;
using aws_test::AwsEnv;
using aws_test::run_sync;
using aws_test::TestHttpServer;
using aws_test::TestLoop;

namespace {

constexpr const char* kFarExpiry = "2030-01-01T00:00:00Z";

std::chrono::system_clock::time_point far_expiry() {
  return *parse_iso8601(kFarExpiry);
}

/// An IMDSv2 server: token PUT, role listing, role credentials, placement region.
struct ImdsServer {
  std::string expiration = kFarExpiry;
  std::chrono::milliseconds delay{0};
  std::atomic<int> credential_gets{0};
  TestHttpServer server{[this](const TestHttpServer::Request& r) -> std::optional<std::string> {
    if (delay.count()) std::this_thread::sleep_for(delay);
    if (r.method == "PUT" && r.target == "/latest/api/token") {
      if (r.header("x-aws-ec2-metadata-token-ttl-seconds") != "21600")
        return TestHttpServer::response(400, "missing ttl");
      return TestHttpServer::response(200, "IMDS-SESSION-TOKEN");
    }
    if (r.header("x-aws-ec2-metadata-token") != "IMDS-SESSION-TOKEN")
      return TestHttpServer::response(401, "");
    if (r.target == "/latest/meta-data/iam/security-credentials/")
      return TestHttpServer::response(200, "instance-role\n");
    if (r.target == "/latest/meta-data/iam/security-credentials/instance-role") {
      int n = ++credential_gets;
      return TestHttpServer::response(
          200, aws_test::json_credentials("ASIAIMDS" + std::to_string(n), "imds-secret",
                                          "imds-token", expiration));
    }
    if (r.target == "/latest/meta-data/placement/region")
      return TestHttpServer::response(200, "eu-west-3");
    return TestHttpServer::response(404, "");
  }};
  void use(AwsEnv& env) {
    env.unset("AWS_EC2_METADATA_DISABLED");
    env.set("AWS_EC2_METADATA_SERVICE_ENDPOINT", server.url());
  }
};

CredentialProviderOptions options(std::function<std::chrono::system_clock::time_point()> now = {}) {
  CredentialProviderOptions o;
  o.region = "us-east-1";
  o.now = std::move(now);
  return o;
}

}  // namespace

TEST_CASE("aws credentials: environment variables supply credentials") {
  // Verifies the environment provider, including the session token.
  AwsEnv env;
  env.set("AWS_ACCESS_KEY_ID", "AKIAENV");
  env.set("AWS_SECRET_ACCESS_KEY", "env-secret");
  env.set("AWS_SESSION_TOKEN", "env-token");
  TestLoop loop;
  HttpClient http(loop.executor(), TlsOptions{});
  CredentialProvider p(http, options());
  Credentials c = run_sync(loop, p.get());
  CHECK(c.access_key_id == "AKIAENV");
  CHECK(c.secret_access_key == "env-secret");
  CHECK(c.session_token == "env-token");
  CHECK(c.provider == "environment");
  CHECK_FALSE(c.expiration.has_value());
}

TEST_CASE("aws credentials: explicit config wins over the environment") {
  // Verifies chain order step 1 before step 2.
  AwsEnv env;
  env.set("AWS_ACCESS_KEY_ID", "AKIAENV");
  env.set("AWS_SECRET_ACCESS_KEY", "env-secret");
  TestLoop loop;
  HttpClient http(loop.executor(), TlsOptions{});
  CredentialProviderOptions o = options();
  o.config.access_key_id = "AKIACFG";
  o.config.secret_access_key = "cfg-secret";
  CredentialProvider p(http, o);
  Credentials c = run_sync(loop, p.get());
  CHECK(c.access_key_id == "AKIACFG");
  CHECK(c.provider == "config");
}

TEST_CASE("aws credentials: the environment wins over the shared files, which come next") {
  // Verifies chain order (environment → profile) and ~/.aws/credentials under HOME.
  AwsEnv env;
  env.write(".aws/credentials",
            "[default]\naws_access_key_id = AKIAFILE\naws_secret_access_key = file-secret\n");
  env.set("AWS_ACCESS_KEY_ID", "AKIAENV");
  env.set("AWS_SECRET_ACCESS_KEY", "env-secret");
  TestLoop loop;
  HttpClient http(loop.executor(), TlsOptions{});
  {
    CredentialProvider p(http, options());
    CHECK(run_sync(loop, p.get()).access_key_id == "AKIAENV");
  }
  env.unset("AWS_ACCESS_KEY_ID");
  env.unset("AWS_SECRET_ACCESS_KEY");
  CredentialProvider p(http, options());
  Credentials c = run_sync(loop, p.get());
  CHECK(c.access_key_id == "AKIAFILE");
  CHECK(c.secret_access_key == "file-secret");
  CHECK(c.provider == "profile:default");
}

TEST_CASE(
    "aws credentials: AWS_PROFILE selects a profile across the config and credentials files") {
  // Verifies "[profile x]" sections in the config file, AWS_CONFIG_FILE /
  // AWS_SHARED_CREDENTIALS_FILE, comments, and that the credentials file wins for a key.
  AwsEnv env;
  std::string cfg = env.write("conf/cfg",
                              "# comment\n[default]\nregion = us-west-2\n"
                              "[profile prod]\nregion = eu-central-1\n"
                              "aws_access_key_id = AKIAFROMCONFIG\n"
                              "aws_secret_access_key = config-secret\n"
                              "[prod]\naws_access_key_id = NOT-A-PROFILE-IN-CONFIG\n");
  std::string creds = env.write("conf/creds",
                                "[prod]\n; comment\naws_access_key_id=AKIAPROD\n"
                                "aws_secret_access_key=prod-secret\naws_session_token = tok\n");
  env.set("AWS_CONFIG_FILE", cfg);
  env.set("AWS_SHARED_CREDENTIALS_FILE", creds);
  env.set("AWS_PROFILE", "prod");
  TestLoop loop;
  HttpClient http(loop.executor(), TlsOptions{});
  CredentialProvider p(http, options());
  Credentials c = run_sync(loop, p.get());
  CHECK(c.access_key_id == "AKIAPROD");
  CHECK(c.secret_access_key == "prod-secret");
  CHECK(c.session_token == "tok");
  CHECK(c.provider == "profile:prod");
  CHECK(resolve_region_sync("") == "eu-central-1");
  CHECK(resolve_region_sync("", "default") == "us-west-2");
}

TEST_CASE("aws credentials: web identity calls STS AssumeRoleWithWebIdentity unsigned") {
  // Verifies the form fields, that the call is not signed, and the XML answer's parsing.
  AwsEnv env;
  std::string token_file = env.write("token", "eyJ.web.identity\n");
  TestHttpServer sts([](const TestHttpServer::Request&) {
    return TestHttpServer::response(
        200, aws_test::sts_response("AssumeRoleWithWebIdentity", "ASIAWEB", "web-secret",
                                    "web-token", "2030-01-01T00:00:00.000Z"));
  });
  env.set("AWS_ENDPOINT_URL_STS", sts.url());
  env.set("AWS_WEB_IDENTITY_TOKEN_FILE", token_file);
  env.set("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/irsa");
  env.set("AWS_ROLE_SESSION_NAME", "my session");
  TestLoop loop;
  HttpClient http(loop.executor(), TlsOptions{});
  CredentialProvider p(http, options());
  Credentials c = run_sync(loop, p.get());
  CHECK(c.access_key_id == "ASIAWEB");
  CHECK(c.secret_access_key == "web-secret");
  CHECK(c.session_token == "web-token");
  REQUIRE(c.expiration.has_value());
  CHECK(*c.expiration == far_expiry());
  CHECK(c.provider == "web-identity:arn:aws:iam::123456789012:role/irsa");

  auto got = sts.received();
  REQUIRE(got.size() == 1);
  CHECK(got[0].method == "POST");
  CHECK(got[0].target == "/");
  CHECK(got[0].header("authorization").empty());
  CHECK(got[0].header("content-type").rfind("application/x-www-form-urlencoded", 0) == 0);
  auto f = aws_test::form_fields(got[0].body);
  CHECK(f["Action"] == "AssumeRoleWithWebIdentity");
  CHECK(f["Version"] == "2011-06-15");
  CHECK(f["RoleArn"] == "arn:aws:iam::123456789012:role/irsa");
  CHECK(f["RoleSessionName"] == "my session");
  CHECK(f["WebIdentityToken"] == "eyJ.web.identity");
}

TEST_CASE("aws credentials: a profile role_arn + source_profile calls a signed STS AssumeRole") {
  // Verifies the source profile's keys sign AssumeRole (SigV4, service sts) and the form fields.
  AwsEnv env;
  env.write(".aws/credentials",
            "[base]\naws_access_key_id = AKIABASE\n"
            "aws_secret_access_key = base-secret\n");
  env.write(".aws/config",
            "[profile app]\nrole_arn = arn:aws:iam::1:role/app\n"
            "source_profile = base\nrole_session_name = app-session\n"
            "external_id = ext-42\nregion = eu-west-1\n");
  env.set("AWS_PROFILE", "app");
  TestHttpServer sts([](const TestHttpServer::Request&) {
    return TestHttpServer::response(
        200,
        aws_test::sts_response("AssumeRole", "ASIAROLE", "role-secret", "role-token", kFarExpiry));
  });
  env.set("AWS_ENDPOINT_URL_STS", sts.url());
  TestLoop loop;
  HttpClient http(loop.executor(), TlsOptions{});
  CredentialProviderOptions o = options();
  o.region = "";  // the profile's region signs the STS call
  CredentialProvider p(http, o);
  Credentials c = run_sync(loop, p.get());
  CHECK(c.access_key_id == "ASIAROLE");
  CHECK(c.session_token == "role-token");
  CHECK(c.provider == "profile:app (assume-role via profile:base)");
  auto got = sts.received();
  REQUIRE(got.size() == 1);
  std::string auth = got[0].header("authorization");
  CHECK(auth.rfind("AWS4-HMAC-SHA256 Credential=AKIABASE/", 0) == 0);
  CHECK(auth.find("/eu-west-1/sts/aws4_request") != std::string::npos);
  CHECK(auth.find("base-secret") == std::string::npos);
  CHECK_FALSE(got[0].header("x-amz-date").empty());
  auto f = aws_test::form_fields(got[0].body);
  CHECK(f["Action"] == "AssumeRole");
  CHECK(f["Version"] == "2011-06-15");
  CHECK(f["RoleArn"] == "arn:aws:iam::1:role/app");
  CHECK(f["RoleSessionName"] == "app-session");
  CHECK(f["ExternalId"] == "ext-42");
}

TEST_CASE("aws credentials: config role_arn assumes the role with the chain's credentials") {
  // Verifies explicit role_arn: source = environment, signed AssumeRole, AWS_ENDPOINT_URL used
  // for STS when AWS_ENDPOINT_URL_STS is unset.
  AwsEnv env;
  env.set("AWS_ACCESS_KEY_ID", "AKIAENV");
  env.set("AWS_SECRET_ACCESS_KEY", "env-secret");
  TestHttpServer sts([](const TestHttpServer::Request&) {
    return TestHttpServer::response(
        200, aws_test::sts_response("AssumeRole", "ASIACFGROLE", "s", "t", kFarExpiry));
  });
  env.unset("AWS_ENDPOINT_URL_STS");
  env.set("AWS_ENDPOINT_URL", sts.url());
  TestLoop loop;
  HttpClient http(loop.executor(), TlsOptions{});
  CredentialProviderOptions o = options();
  o.config.role_arn = "arn:aws:iam::2:role/reader";
  CredentialProvider p(http, o);
  Credentials c = run_sync(loop, p.get());
  CHECK(c.access_key_id == "ASIACFGROLE");
  CHECK(c.provider == "assume-role:arn:aws:iam::2:role/reader via environment");
  auto got = sts.received();
  REQUIRE(got.size() == 1);
  CHECK(got[0].header("authorization").find("Credential=AKIAENV/") != std::string::npos);
  CHECK(aws_test::form_fields(got[0].body)["RoleArn"] == "arn:aws:iam::2:role/reader");
}

TEST_CASE("aws credentials: ECS full URI with an authorization token, then a token file") {
  // Verifies AWS_CONTAINER_CREDENTIALS_FULL_URI, the Authorization header from
  // AWS_CONTAINER_AUTHORIZATION_TOKEN, and that AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE wins.
  AwsEnv env;
  TestHttpServer ecs([](const TestHttpServer::Request& r) {
    if (r.target != "/creds") return TestHttpServer::response(404, "");
    return TestHttpServer::response(
        200, aws_test::json_credentials("ASIAECS", "ecs-secret", "ecs-token", kFarExpiry));
  });
  env.set("AWS_CONTAINER_CREDENTIALS_FULL_URI", ecs.url() + "/creds");
  env.set("AWS_CONTAINER_AUTHORIZATION_TOKEN", "inline-auth");
  TestLoop loop;
  HttpClient http(loop.executor(), TlsOptions{});
  {
    CredentialProvider p(http, options());
    Credentials c = run_sync(loop, p.get());
    CHECK(c.access_key_id == "ASIAECS");
    CHECK(c.session_token == "ecs-token");
    CHECK(c.provider == "ecs");
    REQUIRE(c.expiration.has_value());
    CHECK(*c.expiration == far_expiry());
  }
  env.set("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", env.write("ecs-token", "file-auth\n"));
  CredentialProvider p(http, options());
  CHECK(run_sync(loop, p.get()).access_key_id == "ASIAECS");
  auto got = ecs.received();
  REQUIRE(got.size() == 2);
  CHECK(got[0].method == "GET");
  CHECK(got[0].header("authorization") == "inline-auth");
  CHECK(got[1].header("authorization") == "file-auth");
}

TEST_CASE("aws credentials: EC2 IMDSv2 token flow (PUT token, then GETs with the token)") {
  // Verifies the IMDSv2 sequence, headers, and JSON credentials parsing.
  AwsEnv env;
  ImdsServer imds;
  imds.use(env);
  TestLoop loop;
  HttpClient http(loop.executor(), TlsOptions{});
  CredentialProvider p(http, options());
  Credentials c = run_sync(loop, p.get());
  CHECK(c.access_key_id == "ASIAIMDS1");
  CHECK(c.secret_access_key == "imds-secret");
  CHECK(c.session_token == "imds-token");
  CHECK(c.provider == "imds");
  auto got = imds.server.received();
  REQUIRE(got.size() == 3);
  CHECK(got[0].method == "PUT");
  CHECK(got[0].target == "/latest/api/token");
  CHECK(got[0].header("x-aws-ec2-metadata-token-ttl-seconds") == "21600");
  CHECK(got[1].method == "GET");
  CHECK(got[1].target == "/latest/meta-data/iam/security-credentials/");
  CHECK(got[1].header("x-aws-ec2-metadata-token") == "IMDS-SESSION-TOKEN");
  CHECK(got[2].target == "/latest/meta-data/iam/security-credentials/instance-role");
  CHECK(got[2].header("x-aws-ec2-metadata-token") == "IMDS-SESSION-TOKEN");
}

TEST_CASE("aws credentials: metadata requests bypass a configured proxy") {
  // The proxy variables point at a closed port: going through it would fail. IMDS must still
  // answer (link-local metadata endpoints are never proxied).
  AwsEnv env;
  ImdsServer imds;
  imds.use(env);
  for (const char* v : {"http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "ALL_PROXY"})
    env.set(v, "http://127.0.0.1:1");
  for (const char* v : {"no_proxy", "NO_PROXY"}) env.unset(v);
  TestLoop loop;
  HttpClient http(loop.executor(), TlsOptions{});
  CredentialProvider p(http, options());
  Credentials c = run_sync(loop, p.get());
  CHECK(c.provider == "imds");
  CHECK(imds.server.received().size() == 3);
}

TEST_CASE("aws credentials: a profile wins over ECS and IMDS") {
  // Verifies chain order: shared files before the container and instance providers.
  AwsEnv env;
  ImdsServer imds;
  imds.use(env);
  env.write(".aws/credentials",
            "[default]\naws_access_key_id=AKIAFILE\n"
            "aws_secret_access_key=s\n");
  TestLoop loop;
  HttpClient http(loop.executor(), TlsOptions{});
  CredentialProvider p(http, options());
  CHECK(run_sync(loop, p.get()).provider == "profile:default");
  CHECK(imds.server.requests() == 0);
}

TEST_CASE("aws credentials: credentials expiring within 5 minutes are fetched again") {
  // Verifies refresh before Expiration with an injected clock: 4 min left → refetch,
  // 1 h left → cached; invalidate() forces a refetch.
  AwsEnv env;
  ImdsServer imds;
  imds.use(env);
  TestLoop loop;
  HttpClient http(loop.executor(), TlsOptions{});
  std::atomic<int64_t> now_s{0};
  auto clock = [&] { return far_expiry() + std::chrono::seconds(now_s.load()); };

  now_s = -4 * 60;
  CredentialProvider soon(http, options(clock));
  CHECK(run_sync(loop, soon.get()).access_key_id == "ASIAIMDS1");
  CHECK(run_sync(loop, soon.get()).access_key_id == "ASIAIMDS2");
  CHECK(soon.fetches() == 2);

  now_s = -3600;
  CredentialProvider later(http, options(clock));
  CHECK(run_sync(loop, later.get()).access_key_id == "ASIAIMDS3");
  CHECK(run_sync(loop, later.get()).access_key_id == "ASIAIMDS3");
  CHECK(later.fetches() == 1);
  later.invalidate();
  CHECK(run_sync(loop, later.get()).access_key_id == "ASIAIMDS4");
  CHECK(later.fetches() == 2);
  CHECK(imds.credential_gets == 4);
}

TEST_CASE("aws credentials: concurrent get() calls share one fetch") {
  // Verifies that only one chain resolution is in flight; the others wait for its result.
  AwsEnv env;
  ImdsServer imds;
  imds.delay = 50ms;
  imds.use(env);
  TestLoop loop(2);
  HttpClient http(loop.executor(), TlsOptions{});
  CredentialProvider p(http, options());
  std::vector<std::future<Credentials>> futs;
  for (int i = 0; i < 10; ++i)
    futs.push_back(asio::co_spawn(loop.executor(), p.get(), asio::use_future));
  for (auto& f : futs) {
    REQUIRE(f.wait_for(10s) == std::future_status::ready);
    CHECK(f.get().access_key_id == "ASIAIMDS1");
  }
  CHECK(p.fetches() == 1);
  CHECK(imds.credential_gets == 1);
  CHECK(imds.server.requests() == 3);
}

TEST_CASE("aws credentials: the error lists every provider tried and contains no secret") {
  // Verifies the aggregated error text; a half-set environment and a failing role profile
  // must not leak the secret values.
  AwsEnv env;
  env.set("AWS_SECRET_ACCESS_KEY", "SUPER-SECRET-ENV");
  env.write(".aws/credentials",
            "[base]\naws_access_key_id=AKIABASE\n"
            "aws_secret_access_key=SUPER-SECRET-FILE\n");
  env.write(".aws/config", "[default]\nrole_arn=arn:aws:iam::1:role/x\nsource_profile=base\n");
  TestHttpServer sts([](const TestHttpServer::Request&) {
    return TestHttpServer::response(
        403,
        "<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>not "
        "authorized to perform sts:AssumeRole</Message></Error></ErrorResponse>");
  });
  env.set("AWS_ENDPOINT_URL_STS", sts.url());
  TestLoop loop;
  HttpClient http(loop.executor(), TlsOptions{});
  CredentialProvider p(http, options());
  std::string msg;
  try {
    run_sync(loop, p.get());
  } catch (const std::runtime_error& e) {
    msg = e.what();
  }
  CAPTURE(msg);
  CHECK(msg.find("no AWS credentials found") != std::string::npos);
  CHECK(msg.find("environment: AWS_SECRET_ACCESS_KEY set without AWS_ACCESS_KEY_ID") !=
        std::string::npos);
  CHECK(msg.find("web identity: AWS_WEB_IDENTITY_TOKEN_FILE not set") != std::string::npos);
  CHECK(msg.find("shared files: AssumeRole: AccessDenied: not authorized") != std::string::npos);
  CHECK(msg.find("ecs: ") != std::string::npos);
  CHECK(msg.find("imds: disabled by AWS_EC2_METADATA_DISABLED") != std::string::npos);
  CHECK(msg.find("SUPER-SECRET") == std::string::npos);
  // The failure is not cached as success: the next get() tries again.
  CHECK_THROWS_AS(run_sync(loop, p.get()), std::runtime_error);
  CHECK(p.fetches() == 2);
}

TEST_CASE("aws credentials: IMDS unreachable falls through with a reason, quickly") {
  // Verifies a closed metadata port fails the imds provider without hanging.
  AwsEnv env;
  env.unset("AWS_EC2_METADATA_DISABLED");
  env.set("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:1");
  TestLoop loop;
  HttpClient http(loop.executor(), TlsOptions{});
  CredentialProvider p(http, options());
  auto t0 = std::chrono::steady_clock::now();
  std::string msg;
  try {
    run_sync(loop, p.get());
  } catch (const std::runtime_error& e) {
    msg = e.what();
  }
  CHECK(std::chrono::steady_clock::now() - t0 < 5s);
  CHECK(msg.find("imds: no IMDSv2 token") != std::string::npos);
}

TEST_CASE("aws region: config, AWS_REGION, AWS_DEFAULT_REGION, profile, then IMDS") {
  // Verifies the region resolution order, IMDS last (with the IMDSv2 token).
  AwsEnv env;
  ImdsServer imds;
  imds.use(env);
  TestLoop loop;
  HttpClient http(loop.executor(), TlsOptions{});
  CHECK(run_sync(loop, resolve_region(http, "")) == "eu-west-3");
  env.write(".aws/config", "[default]\nregion = ap-south-1\n");
  CHECK(run_sync(loop, resolve_region(http, "")) == "ap-south-1");
  env.set("AWS_DEFAULT_REGION", "us-east-2");
  CHECK(run_sync(loop, resolve_region(http, "")) == "us-east-2");
  env.set("AWS_REGION", "ca-central-1");
  CHECK(run_sync(loop, resolve_region(http, "")) == "ca-central-1");
  CHECK(run_sync(loop, resolve_region(http, "sa-east-1")) == "sa-east-1");
  auto got = imds.server.received();
  REQUIRE(got.size() == 2);
  CHECK(got[1].target == "/latest/meta-data/placement/region");

  env.unset("AWS_REGION");
  env.unset("AWS_DEFAULT_REGION");
  env.write(".aws/config", "");
  env.set("AWS_EC2_METADATA_DISABLED", "true");
  CHECK_THROWS_WITH_AS(run_sync(loop, resolve_region(http, "")), doctest::Contains("no AWS region"),
                       std::runtime_error);
}

TEST_CASE("aws endpoints: config, per-service variable, AWS_ENDPOINT_URL, then the default") {
  // Verifies endpoint resolution for S3/SQS/KMS/STS and the China partition suffix.
  AwsEnv env;
  env.unset("AWS_ENDPOINT_URL_STS");
  CHECK(resolve_endpoint("s3", "", "us-east-1") == "https://s3.us-east-1.amazonaws.com");
  CHECK(resolve_endpoint("sqs", "", "eu-west-1") == "https://sqs.eu-west-1.amazonaws.com");
  CHECK(resolve_endpoint("kms", "", "cn-north-1") == "https://kms.cn-north-1.amazonaws.com.cn");
  CHECK(resolve_endpoint("sts", "", "us-west-2") == "https://sts.us-west-2.amazonaws.com");
  env.set("AWS_ENDPOINT_URL", "http://127.0.0.1:4566/");
  CHECK(resolve_endpoint("s3", "", "us-east-1") == "http://127.0.0.1:4566");
  env.set("AWS_ENDPOINT_URL_S3", "http://localhost:9000");
  CHECK(resolve_endpoint("s3", "", "us-east-1") == "http://localhost:9000");
  CHECK(resolve_endpoint("sqs", "", "us-east-1") == "http://127.0.0.1:4566");
  CHECK(resolve_endpoint("s3", "https://minio.internal", "us-east-1") == "https://minio.internal");
}

TEST_CASE("aws endpoints: path style is forced for IP addresses and localhost") {
  // Verifies force_path_style for IPv4, IPv6 in brackets, localhost, and DNS names.
  CHECK(force_path_style("http://127.0.0.1:9000", false));
  CHECK(force_path_style("http://[::1]:9000", false));
  CHECK(force_path_style("http://LOCALHOST:4566", false));
  CHECK(force_path_style("10.1.2.3:9000", false));
  CHECK_FALSE(force_path_style("https://s3.us-east-1.amazonaws.com", false));
  CHECK_FALSE(force_path_style("https://minio.internal", false));
  CHECK(force_path_style("https://minio.internal", true));
}

TEST_CASE("aws credentials: metadata endpoints come from the environment") {
  // Verifies the ECS relative URI host, the IMDS override and AWS_EC2_METADATA_DISABLED
  // (pure functions: nothing is contacted).
  AwsEnv env;
  CHECK(ecs_credentials_url().empty());
  env.set("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/v2/credentials/abc");
  CHECK(ecs_credentials_url() == "http://169.254.170.2/v2/credentials/abc");
  CHECK(imds_endpoint().empty());  // AwsEnv disables IMDS
  env.set("AWS_EC2_METADATA_DISABLED", "TRUE");
  CHECK(imds_endpoint().empty());
  env.unset("AWS_EC2_METADATA_DISABLED");
  CHECK(imds_endpoint() == "http://169.254.169.254");
  env.set("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://[::1]:8080/");
  CHECK(imds_endpoint() == "http://[::1]:8080");
}

TEST_CASE("aws time parsing: ISO 8601 and HTTP dates") {
  // Verifies the formats AWS uses for Expiration and the Date header.
  auto t = parse_iso8601("2015-08-30T12:36:00Z");
  REQUIRE(t.has_value());
  CHECK(amz_date(*t) == "20150830T123600Z");
  CHECK(parse_iso8601("2015-08-30T12:36:00.123Z") == t);
  CHECK(parse_iso8601("2015-08-30T12:36:00+00:00") == t);
  CHECK(parse_http_date("Sun, 30 Aug 2015 12:36:00 GMT") == t);
  CHECK_FALSE(parse_iso8601("2015-08-30 12:36").has_value());
  CHECK_FALSE(parse_iso8601("2015-08-30T12:36:00+02:00").has_value());
  CHECK_FALSE(parse_http_date("yesterday").has_value());
}
