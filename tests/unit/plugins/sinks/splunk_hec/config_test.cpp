#include "plugins/sinks/splunk_hec/config.h"

#include <doctest/doctest.h>

#include "agent/config/config.h"
#include "tests/unit/tls_test_files.h"

using namespace logship;
using namespace std::chrono_literals;

namespace {

HecSinkConfig parse(const std::string& yaml) {
  ConfigNode node(YAML::Load(yaml), std::make_shared<const std::string>("test.yaml"), "sinks.hec");
  return parse_hec_sink_config(node, "/data", "hec");
}

}  // namespace

TEST_CASE("splunk_hec config defaults match CONFIG.md") {
  // Verifies every default of the sink's keys.
  HecSinkConfig c = parse("endpoints: https://hec:8088\ntoken: abc\n");
  REQUIRE(c.endpoints.size() == 1);
  CHECK(c.endpoints[0] == "https://hec:8088");
  REQUIRE(c.token);
  CHECK(c.token->value() == "abc");
  CHECK(c.target == HecSinkConfig::Target::kEvent);
  CHECK(c.compression == HecSinkConfig::Compression::kGzip);
  CHECK(c.compression_level == 1);
  CHECK(c.batch_max_bytes == 1024 * 1024);
  CHECK(c.batch_max_events == 10000);
  CHECK(c.batch_timeout == 100ms);
  CHECK(c.request_concurrency == 4);
  CHECK(c.request_timeout == 30s);
  CHECK(c.retry_initial_backoff == 1s);
  CHECK(c.retry_max_backoff == 60s);
  CHECK(c.acks_enabled);
  CHECK(c.acks_poll_interval == 2s);
  CHECK(c.acks_timeout == 300s);
  CHECK(c.acks_max_pending_bytes == 64ull * 1024 * 1024);
  CHECK(c.tls.verify);
  CHECK(c.tls.min_version == "1.2");
  CHECK(c.dead_letter_path == "/data/dead_letter/hec.jsonl");
  CHECK(c.dead_letter_max_bytes == 1ull << 30);
  CHECK(c.host.kind == HecTemplate::Kind::kFromEvent);
  CHECK(c.index.kind == HecTemplate::Kind::kFromEvent);
  CHECK(c.index.meta == HecTemplate::Meta::kIndex);
}

TEST_CASE("splunk_hec config reads every key") {
  // Verifies nested mappings, templates and the runtime's `buffer` key being accepted.
  auto tls = test::make_tls_files();
  std::string yaml = R"(
endpoints: ["http://a:8088/", "https://b:443/proxy/services/collector/event/1.0"]
token: t
endpoint_target: raw
compression: none
compression_level: 9
batch: {max_bytes: 64KiB, max_events: 10, timeout: 5ms}
request: {concurrency: 2, timeout: 3s}
retry: {initial_backoff: 10ms, max_backoff: 20ms}
acknowledgements: {enabled: false, poll_interval: 1s, timeout: 60s, max_pending_bytes: 1MiB}
tls: {verify: false, ca_file: "@CA@", ca_dir: "@CADIR@", cert_file: "@CERT@", key_file: "@KEY@", server_name: hec.local, min_version: "1.3"}
dead_letter: {path: /dl/x.jsonl, max_bytes: 1MiB}
buffer: {type: memory}
host: "{{ host }}"
source: literal
sourcetype: "{{ team }}"
)";
  for (auto [from, to] : {std::pair<std::string, std::string>{"@CADIR@", tls.dir}, {"@CA@", tls.ca},
                          {"@CERT@", tls.cert}, {"@KEY@", tls.key}})
    yaml.replace(yaml.find(from), from.size(), to);
  HecSinkConfig c = parse(yaml);
  CHECK(c.endpoints == std::vector<std::string>{"http://a:8088", "https://b:443/proxy"});
  CHECK(c.target == HecSinkConfig::Target::kRaw);
  CHECK(c.compression == HecSinkConfig::Compression::kNone);
  CHECK(c.compression_level == 9);
  CHECK(c.batch_max_bytes == 65536);
  CHECK(c.batch_max_events == 10);
  CHECK(c.batch_timeout == 5ms);
  CHECK(c.request_concurrency == 2);
  CHECK(c.request_timeout == 3s);
  CHECK(c.retry_initial_backoff == 10ms);
  CHECK(c.retry_max_backoff == 20ms);
  CHECK_FALSE(c.acks_enabled);
  CHECK(c.tls.ca_file == tls.ca);
  CHECK(c.tls.key_file == tls.key);
  // The files are checked when the config is read.
  auto other = test::make_tls_files();
  auto fails = [&](const std::string& t, const char* what) {
    std::string y = "endpoints: https://hec:8088\ntoken: abc\ntls: " + t + "\n";
    CHECK_THROWS_WITH_AS(parse(y), doctest::Contains(what), ConfigError);
  };
  fails("{ca_file: " + tls.dir + "/nope.pem}", "No such file");
  fails("{ca_file: " + tls.key + "}", "holds no PEM certificate");
  fails("{ca_dir: " + tls.cert + "}", "is not a directory");
  fails("{cert_file: " + tls.cert + ", key_file: " + other.key + "}", "does not match");
  CHECK(c.tls.server_name == "hec.local");
  CHECK(c.tls.min_version == "1.3");
  CHECK_FALSE(c.tls.verify);
  CHECK(c.dead_letter_path == "/dl/x.jsonl");
  CHECK(c.host.kind == HecTemplate::Kind::kMeta);
  CHECK(c.source.kind == HecTemplate::Kind::kLiteral);
  CHECK(c.source.value == "literal");
  CHECK(c.sourcetype.kind == HecTemplate::Kind::kField);
  CHECK(c.sourcetype.value == "team");
}

TEST_CASE("splunk_hec endpoints are normalised to base URLs") {
  // Verifies a user-given /services/collector… path and trailing slashes are removed.
  std::string err;
  CHECK(normalize_hec_endpoint("https://h:8088", err) == "https://h:8088");
  CHECK(normalize_hec_endpoint("https://h:8088/", err) == "https://h:8088");
  CHECK(normalize_hec_endpoint("https://h:8088/services/collector", err) == "https://h:8088");
  CHECK(normalize_hec_endpoint("https://h:8088/services/collector/event", err) == "https://h:8088");
  CHECK(normalize_hec_endpoint("HTTP://h/services/collector/raw/1.0", err) == "http://h");
  CHECK(normalize_hec_endpoint("https://h/prefix/", err) == "https://h/prefix");
  CHECK(normalize_hec_endpoint("h:8088", err).empty());
  CHECK(normalize_hec_endpoint("ftp://h", err).empty());
  CHECK(normalize_hec_endpoint("https://h/?a=1", err).empty());
  CHECK(normalize_hec_endpoint("https:///x", err).empty());
}

TEST_CASE("splunk_hec config rejects invalid values") {
  // Verifies range checks, choices, unknown keys and missing required keys fail with position.
  CHECK_THROWS_AS(parse("endpoints: https://h\ntoken: t\ncompression_level: 0\n"), ConfigError);
  CHECK_THROWS_AS(parse("endpoints: https://h\ntoken: t\ncompression_level: 10\n"), ConfigError);
  CHECK_THROWS_AS(parse("endpoints: https://h\ntoken: t\ncompression: deflate\n"), ConfigError);
  CHECK_THROWS_AS(parse("endpoints: https://h\ntoken: t\nendpoint_target: json\n"), ConfigError);
  CHECK_THROWS_AS(parse("endpoints: https://h\ntoken: t\nbogus: 1\n"), ConfigError);
  CHECK_THROWS_AS(parse("endpoints: https://h\ntoken: t\nbatch: {bogus: 1}\n"), ConfigError);
  CHECK_THROWS_AS(parse("endpoints: https://h\n"), ConfigError);
  CHECK_THROWS_AS(parse("token: t\n"), ConfigError);
  CHECK_THROWS_AS(parse("endpoints: not-a-url\ntoken: t\n"), ConfigError);
  CHECK_THROWS_AS(parse("endpoints: https://h\ntoken: t\ntls: {min_version: '1.1'}\n"),
                  ConfigError);
  CHECK_THROWS_AS(parse("endpoints: https://h\ntoken: t\nretry: {initial_backoff: 2s, "
                        "max_backoff: 1s}\n"),
                  ConfigError);
  CHECK_THROWS_AS(parse("endpoints: https://h\ntoken: t\nhost: '{{ host'\n"), ConfigError);
  try {
    parse("endpoints: https://h\ntoken: t\ncompression_level: 12\n");
  } catch (const ConfigError& e) {
    CHECK(std::string(e.what()).find("test.yaml:3:") == 0);
  }
}
