// Verifies the splunk_hec source's configuration keys (CONFIG.md, "Source splunk_hec").
#include <doctest/doctest.h>

#include "agent/config/config.h"
#include "plugins/sources/splunk_hec/config.h"
#include "tests/unit/tls_test_files.h"

using namespace logship;
using namespace logship::hec_receiver;

namespace {

HecSourceConfig parse(const std::string& source_body) {
  std::string text = "data_dir: /tmp/x\nsources:\n  in:\n    type: splunk_hec\n" + source_body +
                     "sinks:\n  out: {type: blackhole, inputs: [in]}\n";
  Config cfg = load_config_text(text, "test.yaml");
  REQUIRE(cfg.sources.size() == 1);
  return parse_hec_source_config(*cfg.sources[0].node);
}

}  // namespace

TEST_CASE("splunk_hec source defaults") {
  HecSourceConfig c = parse("    tokens: [abc]\n");
  CHECK(c.address == "127.0.0.1:8088");
  REQUIRE(c.tokens.size() == 1);
  CHECK(c.tokens[0]->value() == "abc");
  CHECK(c.max_body_bytes == 8u << 20);
  CHECK_FALSE(c.acks_enabled);
  CHECK_FALSE(c.tls_enabled());
  CHECK(c.host.empty());
}

TEST_CASE("splunk_hec source reads every key") {
  auto tls = test::make_tls_files();
  HecSourceConfig c = parse(
      "    address: \"0.0.0.0:9000\"\n"
      "    tokens: t1\n"
      "    max_body_bytes: 1MiB\n"
      "    acknowledgements: {enabled: true}\n"
      "    tls: {cert_file: \"" + tls.cert + "\", key_file: \"" + tls.key + "\", ca_file: \"" + tls.ca + "\"}\n"
      "    host: h\n    source: s\n    sourcetype: st\n    index: i\n");
  CHECK(c.address == "0.0.0.0:9000");
  CHECK(c.tokens.size() == 1);
  CHECK(c.max_body_bytes == 1u << 20);
  CHECK(c.acks_enabled);
  CHECK(c.tls_cert_file == tls.cert);
  CHECK(c.tls_key_file == tls.key);
  CHECK(c.tls_ca_file == tls.ca);
  CHECK(c.tls_enabled());
  CHECK(c.sourcetype == "st");
  CHECK(c.index == "i");
}

TEST_CASE("splunk_hec source rejects bad configurations") {
  CHECK_THROWS_AS(parse("    address: \"127.0.0.1:8088\"\n"), ConfigError);  // no tokens
  CHECK_THROWS_AS(parse("    tokens: [a]\n    max_body_bytes: 0\n"), ConfigError);
  CHECK_THROWS_AS(parse("    tokens: [a]\n    tls: {cert_file: /c.pem}\n"), ConfigError);
  CHECK_THROWS_AS(parse("    tokens: [a]\n    tls: {cert_file: /c, key_file: /k, crt: x}\n"),
                  ConfigError);
  CHECK_THROWS_AS(parse("    tokens: [a]\n    acknowledgements: {enable: true}\n"), ConfigError);
  CHECK_THROWS_WITH_AS(parse("    tokens: [a]\n    max_bodybytes: 1\n"),
                       doctest::Contains("max_bodybytes"), ConfigError);
}
