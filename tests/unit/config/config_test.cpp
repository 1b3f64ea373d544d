// Configuration loader: positions in messages, strict types, interpolation, secrets, topology.
#include "agent/config/config.h"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>

namespace logship {
namespace {

/// The message of the ConfigError that loading `yaml` throws, or "(no error)".
std::string load_error(const std::string& yaml) {
  try {
    load_config_text(yaml, "t.yaml");
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "(no error)";
}

/// The message of the ConfigError that `fn` throws, or "(no error)".
template <typename Fn>
std::string error_of(Fn&& fn) {
  try {
    fn();
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "(no error)";
}

bool starts_with(const std::string& s, std::string_view prefix) {
  return s.rfind(prefix, 0) == 0;
}
bool contains(const std::string& s, std::string_view part) {
  return s.find(part) != std::string::npos;
}

/// A ConfigNode over `yaml` (parsed directly, without the load-time checks), named n.yaml.
ConfigNode node_of(const std::string& yaml, std::string path = "sinks.splunk") {
  return ConfigNode(YAML::Load(yaml), std::make_shared<const std::string>("n.yaml"),
                    std::move(path));
}

/// A temporary directory removed (with its files) at scope exit.
class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/logship-config-test-XXXXXX";
    REQUIRE(::mkdtemp(tmpl) != nullptr);
    path_ = tmpl;
  }
  ~TempDir() {
    for (const auto& f : files_) ::unlink(f.c_str());
    ::rmdir(path_.c_str());
  }
  /// Writes `content` to `name` with exactly `mode`; returns the full path.
  std::string write(const std::string& name, const std::string& content, mode_t mode) {
    std::string p = path_ + "/" + name;
    {
      std::ofstream out(p, std::ios::binary);
      out << content;
    }
    REQUIRE(::chmod(p.c_str(), mode) == 0);
    files_.push_back(p);
    return p;
  }

 private:
  std::string path_;
  std::vector<std::string> files_;
};

constexpr const char* kMinimal = R"(sources:
  app: { type: file, include: /var/log/app.log }
sinks:
  out: { type: console, inputs: app }
)";

}  // namespace

TEST_CASE("config: a YAML syntax error becomes a ConfigError at its line and column") {
  // Verifies ParserException is translated with 1-based positions.
  std::string msg = load_error("sources:\n  app: a: b\n");
  CHECK(starts_with(msg, "t.yaml:2:9: invalid YAML: illegal map value"));
  msg = load_error("sinks: {out: {type: console}\n");
  CHECK(starts_with(msg, "t.yaml:2:1: invalid YAML: "));
}

TEST_CASE("config: a duplicate top-level key is an error at its second occurrence") {
  // Verifies the pre-pass catches what yaml-cpp would silently keep.
  CHECK(YAML::Load("a: 1\na: 2\n").size() == 2);  // yaml-cpp keeps both: hence the pre-pass
  std::string msg = load_error(std::string(kMinimal) + "sinks:\n  other: {type: console}\n");
  CHECK(starts_with(msg, "t.yaml:5:1: duplicate key \"sinks\" at the top level (first at line 3)"));
}

TEST_CASE("config: a duplicate key in a nested mapping is an error at its second occurrence") {
  // Verifies duplicates are tracked per mapping level, in block and flow style.
  std::string msg = load_error(R"(sources:
  app:
    type: file
    include: /a
    type: file
sinks:
  out: { type: console, inputs: app }
)");
  CHECK(starts_with(msg, "t.yaml:5:5: duplicate key \"type\" in sources.app (first at line 3)"));
  msg = load_error(R"(sources:
  app: { type: file, include: /a }
sinks:
  out: { type: console, inputs: app, batch: { max_bytes: 1, max_bytes: 2 } }
)");
  CHECK(starts_with(msg, "t.yaml:4:61: duplicate key \"max_bytes\" in sinks.out.batch"));
  // The same key in sibling mappings is fine.
  CHECK(load_error(R"(sources:
  a: { type: file }
  b: { type: file }
sinks:
  out: { type: console, inputs: [a, b] }
)") == "(no error)");
}

TEST_CASE("config: an unknown top-level key is an error that lists the known keys") {
  // Verifies the top level rejects unknown keys and suggests the closest one.
  std::string msg = load_error(std::string(kMinimal) + "thread: 4\n");
  CHECK(starts_with(msg,
                    "t.yaml:5:1: unknown key \"thread\" at the top level; expected one of: "
                    "admin, data_dir, encryption, log, sinks, sources, threads, transforms"));
  CHECK(contains(msg, "did you mean \"threads\"?"));
}

TEST_CASE("config: unknown keys in log and admin are errors") {
  // Verifies the nested top-level mappings finish() themselves.
  std::string msg = load_error(std::string(kMinimal) + "log:\n  level: info\n  colour: true\n");
  CHECK(starts_with(msg,
                    "t.yaml:7:3: unknown key \"colour\" in log; expected one of: format, "
                    "level"));
  msg = load_error(std::string(kMinimal) + "admin: { address: \"127.0.0.1:9880\", tls: x }\n");
  CHECK(starts_with(msg, "t.yaml:5:37: unknown key \"tls\" in admin; expected one of: address"));
}

TEST_CASE("config: ConfigNode::finish reports the first key no getter read or touched") {
  // Verifies plugins get unknown-key errors listing what they read.
  ConfigNode n = node_of("endpoints: [a]\nbatch: {}\ntoken: x\nendpoint_target: raw\n");
  n.list("endpoints");
  n.touch("token");
  n.choice("compression", "gzip", {"none", "gzip"});
  CHECK(error_of([&] { n.finish(); }) ==
        "n.yaml:2:1: unknown key \"batch\" in sinks.splunk; expected one of: compression, "
        "endpoints, token");
  n.map("batch")->finish();
  std::string msg = error_of([&] { n.finish(); });
  CHECK(starts_with(msg, "n.yaml:4:1: unknown key \"endpoint_target\" in sinks.splunk"));
  n.choice("endpoint_target", "event", {"event", "raw"});
  CHECK(error_of([&] { n.finish(); }) == "(no error)");
}

TEST_CASE("config: a missing required key is reported at the mapping") {
  // Verifies required getters fail at the mapping's position, naming the key.
  ConfigNode n = node_of("\n  path: /x\n", "sinks.f");
  std::string msg = error_of([&] { n.str("file"); });
  CHECK(starts_with(msg, "n.yaml:2:3: missing required key file in sinks.f"));
  msg = load_error("sources:\n  app: { include: /a }\nsinks:\n  o: { type: x, inputs: app }\n");
  CHECK(starts_with(msg, "t.yaml:2:8: missing required key type in sources.app"));
}

TEST_CASE(
    "config: bad sizes, durations, booleans, integers and choices are reported at the value") {
  // Verifies strict typing and the exact expectation texts.
  ConfigNode n = node_of(R"(max_bytes: 12 parsecs
timeout: 5 fortnights
enabled: yes
level: 12
level2: nine
compression: zip
bytes: 64KiB
wait: 250ms
on: false
)");
  CHECK(error_of([&] { n.size("max_bytes", 1); }) ==
        "n.yaml:1:12: invalid size \"12 parsecs\"; expected a size such as 512, 64KiB, 10MiB, "
        "1GiB");
  CHECK(error_of([&] { n.duration("timeout", std::nullopt); }) ==
        "n.yaml:2:10: invalid duration \"5 fortnights\"; expected a duration such as 250ms, 5s, "
        "10m, 2h, 7d");
  CHECK(error_of([&] { n.boolean("enabled", true); }) ==
        "n.yaml:3:10: invalid boolean \"yes\"; expected true or false");
  CHECK(error_of([&] { n.integer("level", 1, 1, 9); }) ==
        "n.yaml:4:8: 12 is out of range; expected an integer from 1 to 9");
  CHECK(error_of([&] { n.integer("level2", 1, 1, 9); }) ==
        "n.yaml:5:9: invalid integer \"nine\"; expected an integer from 1 to 9");
  CHECK(error_of([&] {
          n.choice("compression", "gzip", {"none", "gzip"});
        }) == "n.yaml:6:14: invalid compression \"zip\"; expected one of: none, gzip");
  CHECK(n.size("bytes", 1) == 64 * 1024);
  CHECK(n.duration("wait", std::nullopt) == std::chrono::milliseconds(250));
  CHECK(n.boolean("on", true) == false);
  CHECK(n.size("absent", 7) == 7);
  CHECK(n.opt_duration("absent2") == std::nullopt);
  // A mapping where a scalar belongs.
  ConfigNode m = node_of("timeout: { s: 1 }\n");
  CHECK(starts_with(error_of([&] { m.duration("timeout", std::nullopt); }),
                    "n.yaml:1:10: timeout is a mapping; expected a duration"));
}

TEST_CASE("config: an unset ${VAR} is named at its scalar even in keys no getter reads") {
  // Verifies interpolation is checked over the whole tree at load time.
  ::unsetenv("LOGSHIP_TEST_UNSET");
  std::string msg = load_error(R"(sources:
  app: { type: file, include: /a }
sinks:
  out:
    type: splunk_hec
    inputs: app
    plugin_only: "x-${LOGSHIP_TEST_UNSET}"
)");
  CHECK(starts_with(msg, "t.yaml:7:18: environment variable LOGSHIP_TEST_UNSET is not set"));
  CHECK_THROWS_AS(interpolate("${LOGSHIP_TEST_UNSET}"), std::invalid_argument);
  // Reported with the others ("no sinks" at the start of the file comes first).
  CHECK(contains(load_error("sources: { a: { type: \"${oops\" } }\n"),
                 "\nt.yaml:1:23: unterminated \"${\""));
}

TEST_CASE("config: ${VAR:-default} falls back when the variable is unset or empty") {
  // Verifies defaults, set values and nested defaults.
  ::unsetenv("LOGSHIP_TEST_UNSET");
  ::setenv("LOGSHIP_TEST_SET", "fromenv", 1);
  ::setenv("LOGSHIP_TEST_EMPTY", "", 1);
  CHECK(interpolate("${LOGSHIP_TEST_UNSET:-dflt}") == "dflt");
  CHECK(interpolate("${LOGSHIP_TEST_EMPTY:-dflt}") == "dflt");
  CHECK(interpolate("a/${LOGSHIP_TEST_SET:-dflt}/b") == "a/fromenv/b");
  CHECK(interpolate("${LOGSHIP_TEST_UNSET:-${LOGSHIP_TEST_SET}}") == "fromenv");
  CHECK(interpolate("${LOGSHIP_TEST_UNSET:-}") == "");
  Config cfg = load_config_text(std::string(kMinimal) +
                                    "data_dir: ${LOGSHIP_TEST_UNSET:-/srv/logship}\n"
                                    "threads: ${LOGSHIP_TEST_THREADS:-3}\n",
                                "t.yaml");
  CHECK(cfg.data_dir == "/srv/logship");
  CHECK(cfg.threads == 3);
  ::unsetenv("LOGSHIP_TEST_SET");
  ::unsetenv("LOGSHIP_TEST_EMPTY");
}

TEST_CASE("config: $$ is a literal dollar and a lone $ is kept") {
  // Verifies escaping and that values from the environment are not re-interpolated.
  ::setenv("LOGSHIP_TEST_DOLLAR", "${NOT_EXPANDED}", 1);
  CHECK(interpolate("price: $$5") == "price: $5");
  CHECK(interpolate("$${HOME}") == "${HOME}");
  CHECK(interpolate("a$b $ c$") == "a$b $ c$");
  CHECK(interpolate("${LOGSHIP_TEST_DOLLAR}") == "${NOT_EXPANDED}");
  ConfigNode n = node_of("pattern: \"^$$x$\"\n");
  CHECK(n.str("pattern") == "^$x$");
  ::unsetenv("LOGSHIP_TEST_DOLLAR");
}

TEST_CASE("config: a dangling input is an error at the list item naming the known ids") {
  // Verifies inputs must name an existing source or transform.
  std::string msg = load_error(R"(sources:
  app: { type: file }
transforms:
  scrub: { type: redact, inputs: app }
sinks:
  out: { type: console, inputs: [scrub, nope] }
)");
  CHECK(msg ==
        "t.yaml:6:41: unknown input \"nope\" in sinks.out; expected a source or "
        "transform: app, scrub");
}

TEST_CASE("config: a cycle among transforms is an error naming the cycle") {
  // Verifies cycle detection and the data-flow order of the message.
  std::string msg = load_error(R"(sources:
  app: { type: file }
transforms:
  a: { type: filter, inputs: [app, b] }
  b: { type: filter, inputs: a }
sinks:
  out: { type: console, inputs: b }
)");
  CHECK(starts_with(msg, "t.yaml:5:30: cycle among transforms: a -> b -> a"));
  msg = load_error(R"(sources:
  app: { type: file }
transforms:
  a: { type: filter, inputs: [a] }
sinks:
  out: { type: console, inputs: app }
)");
  CHECK(starts_with(msg, "t.yaml:4:31: cycle among transforms: a -> a"));
}

TEST_CASE("config: a sink cannot be an input") {
  // Verifies sinks are not accepted as inputs.
  std::string msg = load_error(R"(sources:
  app: { type: file }
sinks:
  one: { type: console, inputs: app }
  two: { type: console, inputs: [one] }
)");
  CHECK(starts_with(msg, "t.yaml:5:34: input \"one\" of sinks.two is a sink"));
  CHECK(contains(msg, "expected a source or transform: app"));
}

TEST_CASE("config: component ids must match [a-z0-9_]+") {
  // Verifies the id check at the id's position.
  std::string msg = load_error(R"(sources:
  My-App: { type: file }
sinks:
  out: { type: console, inputs: My-App }
)");
  CHECK(starts_with(msg,
                    "t.yaml:2:3: invalid component id \"My-App\" in sources; expected "
                    "lowercase letters, digits and _ ([a-z0-9_]+)"));
}

TEST_CASE("config: a component id may not be used by two kinds") {
  // Verifies ids are unique across sources, transforms and sinks.
  std::string msg = load_error(R"(sources:
  app: { type: file }
sinks:
  app: { type: console, inputs: app }
)");
  CHECK(starts_with(msg,
                    "t.yaml:4:3: component id \"app\" is already used by sources.app (line "
                    "2)"));
}

TEST_CASE("config: sources take no inputs, sinks need inputs, and both kinds must exist") {
  // Verifies the shape rules of components.
  CHECK(starts_with(load_error("sources:\n  a: { type: file, inputs: b }\nsinks:\n  o: { type: x, "
                               "inputs: a }\n"),
                    "t.yaml:2:20: sources take no inputs"));
  CHECK(starts_with(load_error("sources:\n  a: { type: file }\nsinks:\n  o: { type: x }\n"),
                    "t.yaml:4:6: missing required key inputs in sinks.o"));
  CHECK(starts_with(load_error("sources:\n  a: { type: file }\nsinks:\n  o: { type: x, inputs: [] "
                               "}\n"),
                    "t.yaml:4:25: inputs is empty"));
  CHECK(starts_with(load_error("# comment\nsources:\n  a: { type: file }\n"),
                    "t.yaml:2:1: no sinks are configured"));
  CHECK(starts_with(load_error("sinks:\n  o: { type: x, inputs: a }\n"),
                    "t.yaml:1:1: no sources are configured"));
  CHECK(starts_with(load_error(""), "t.yaml:1:1: the configuration is empty"));
  CHECK(starts_with(load_error(std::string(kMinimal) + "---\nsources: {}\n"),
                    "t.yaml:5:1: a second YAML document"));
}

TEST_CASE("config: a secret is read from a 0600 token_file with the trailing newline stripped") {
  // Verifies *_file secrets, their registration and their position-free value.
  TempDir dir;
  std::string path = dir.write("hec", "s3cr3t-token\n", 0600);
  ConfigNode n = node_of("token_file: " + path + "\n");
  auto secret = n.secret("token");
  REQUIRE(secret != nullptr);
  CHECK(secret->value() == "s3cr3t-token");
  CHECK(secret->file() == path);
  CHECK(error_of([&] { n.finish(); }) == "(no error)");  // token and token_file both touched
  ConfigNode inl = node_of("token: abc\n");
  auto s2 = inl.secret("token");
  CHECK(s2->value() == "abc");
  CHECK(s2->file().empty());
  CHECK(node_of("other: 1\n").secret("token", /*required=*/false) == nullptr);
}

TEST_CASE("config: a group-readable token_file is rejected without revealing the secret") {
  // Verifies the permission rule and that messages never carry the value.
  TempDir dir;
  std::string path = dir.write("hec", "very-secret-value\n", 0640);
  ConfigNode n = node_of("x: 1\ntoken_file: " + path + "\n");
  std::string msg = error_of([&] { n.secret("token"); });
  CHECK(starts_with(msg, "n.yaml:2:13: secret file " + path));
  CHECK(contains(msg, "group- or world-accessible"));
  CHECK_FALSE(contains(msg, "very-secret-value"));
  ConfigNode missing = node_of("token_file: " + path + ".absent\n");
  CHECK(starts_with(error_of([&] { missing.secret("token"); }),
                    "n.yaml:1:13: cannot open secret file " + path + ".absent"));
}

TEST_CASE("config: token and token_file together are an error, and neither is a missing key") {
  // Verifies exactly one of key / key_file, without echoing the inline value.
  ConfigNode both = node_of("token: hunter2\ntoken_file: /run/secrets/hec\n");
  std::string msg = error_of([&] { both.secret("token"); });
  CHECK(starts_with(msg, "n.yaml:2:1: both token and token_file are set in sinks.splunk"));
  CHECK_FALSE(contains(msg, "hunter2"));
  ConfigNode none = node_of("endpoints: [x]\n");
  CHECK(starts_with(error_of([&] { none.secret("token"); }),
                    "n.yaml:1:1: missing required key token (or token_file) in sinks.splunk"));
}

TEST_CASE("config: secret_list reads an inline list or one secret per non-empty line of a file") {
  // Verifies both forms of a list of secrets.
  ConfigNode inl = node_of("tokens: [a, b]\n", "sources.hec");
  auto list = inl.secret_list("tokens");
  REQUIRE(list.size() == 2);
  CHECK(list[1]->value() == "b");
  TempDir dir;
  std::string path = dir.write("tokens", "one\n\ntwo\r\n", 0400);
  ConfigNode f = node_of("tokens_file: " + path + "\n", "sources.hec");
  auto from_file = f.secret_list("tokens");
  REQUIRE(from_file.size() == 1);  // the whole file, re-read as one on SIGHUP
  std::string whole = from_file[0]->value();
  auto lines = secret_lines(whole);
  REQUIRE(lines.size() == 2);
  CHECK(lines[0] == "one");
  CHECK(lines[1] == "two");
  CHECK(from_file[0]->file() == path);
  CHECK(error_of([&] { f.finish(); }) == "(no error)");
  std::string bad = dir.write("bad", "one\n", 0604);
  ConfigNode g = node_of("tokens_file: " + bad + "\n", "sources.hec");
  CHECK(contains(error_of([&] { g.secret_list("tokens"); }), "group- or world-accessible"));
}

TEST_CASE("config: a list-valued key accepts a single scalar and rejects a mapping") {
  // Verifies list() shapes and item positions.
  ConfigNode n = node_of("include: /var/log/*.log\nmany: [a, b]\nmap: {a: 1}\nnested: [a, [b]]\n");
  CHECK(n.list("include") == std::vector<std::string>{"/var/log/*.log"});
  CHECK(n.list("many") == std::vector<std::string>{"a", "b"});
  CHECK(n.list("absent", std::vector<std::string>{}).empty());
  CHECK(starts_with(error_of([&] { n.list("map"); }),
                    "n.yaml:3:6: map is a mapping; expected a "
                    "list of strings"));
  CHECK(starts_with(error_of([&] { n.list("nested"); }),
                    "n.yaml:4:13: item 2 of nested is a list; expected a string"));
}

TEST_CASE(
    "config: addresses are validated as host:port with bracketed IPv6 and ports up to 65535") {
  // Verifies address() accepts the usual forms and rejects the rest at the value.
  ConfigNode n = node_of(R"(a: "127.0.0.1:8088"
b: "[::1]:0"
c: "localhost:65535"
d: "host:65536"
e: "::1:80"
f: "hostonly"
g: "[::1]8080"
)");
  CHECK(n.address("a", std::nullopt) == "127.0.0.1:8088");
  CHECK(n.address("b", std::nullopt) == "[::1]:0");
  CHECK(n.address("c", std::nullopt) == "localhost:65535");
  CHECK(n.address("absent", "0.0.0.0:1") == "0.0.0.0:1");
  CHECK(starts_with(error_of([&] { n.address("d", std::nullopt); }),
                    "n.yaml:4:4: invalid address \"host:65536\" (port out of range); expected "
                    "host:port"));
  CHECK(starts_with(error_of([&] { n.address("e", std::nullopt); }),
                    "n.yaml:5:4: invalid address \"::1:80\" (IPv6 addresses need brackets)"));
  CHECK(starts_with(error_of([&] { n.address("f", std::nullopt); }), "n.yaml:6:4: invalid "));
  CHECK(starts_with(error_of([&] { n.address("g", std::nullopt); }), "n.yaml:7:4: invalid "));
  CHECK(starts_with(load_error(std::string(kMinimal) + "admin: { address: \"nope\" }\n"),
                    "t.yaml:5:19: invalid address \"nope\""));
}

TEST_CASE("config: a valid full configuration loads with defaults applied") {
  // Verifies the round trip of every top-level key and ComponentDecl.
  Config cfg = load_config_text(R"(sources:
  app:   { type: file, include: ["/var/log/app/*.log"], codec: json }
  trail: { type: s3, mode: sqs, format: cloudtrail }
transforms:
  scrub: { type: redact, inputs: [app], action: hash }
sinks:
  splunk:
    type: splunk_hec
    inputs: [scrub, trail]
    endpoints: ["https://hec.internal:8088"]
)",
                                "full.yaml");
  CHECK(cfg.file == "full.yaml");
  CHECK(cfg.data_dir == "/var/lib/logship");
  CHECK(cfg.threads == 0);
  CHECK_FALSE(cfg.admin_address.has_value());
  CHECK(cfg.log_level == "info");
  CHECK(cfg.log_format == "text");
  REQUIRE(cfg.sources.size() == 2);
  CHECK(cfg.sources[0].id == "app");
  CHECK(cfg.sources[0].kind == "source");
  CHECK(cfg.sources[0].type == "file");
  CHECK(cfg.sources[0].inputs.empty());
  CHECK(cfg.sources[1].id == "trail");
  REQUIRE(cfg.transforms.size() == 1);
  CHECK(cfg.transforms[0].inputs == std::vector<std::string>{"app"});
  REQUIRE(cfg.sinks.size() == 1);
  const ComponentDecl& sink = cfg.sinks[0];
  CHECK(sink.kind == "sink");
  CHECK(sink.type == "splunk_hec");
  CHECK(sink.inputs == std::vector<std::string>{"scrub", "trail"});
  CHECK(sink.node->path() == "sinks.splunk");
  CHECK(sink.node->file() == "full.yaml");
  // Plugin keys are left to the plugin; type and inputs are already read.
  CHECK(sink.node->list("endpoints").size() == 1);
  CHECK(error_of([&] { sink.node->finish(); }) == "(no error)");
  CHECK(starts_with(error_of([&] { cfg.sources[0].node->finish(); }),
                    "full.yaml:2:24: unknown key \"include\" in sources.app; expected one of: "
                    "type"));

  Config all = load_config_text(std::string(kMinimal) + R"(data_dir: /srv/ls
threads: 8
admin: { address: "127.0.0.1:9880" }
log: { level: debug, format: json }
)",
                                "t.yaml");
  CHECK(all.data_dir == "/srv/ls");
  CHECK(all.threads == 8);
  CHECK(all.admin_address == "127.0.0.1:9880");
  CHECK(all.log_level == "debug");
  CHECK(all.log_format == "json");
  CHECK(starts_with(load_error(std::string(kMinimal) + "threads: 0\n"),
                    "t.yaml:5:10: 0 is out of range; expected an integer from 1 to 1024"));
  CHECK(starts_with(load_error(std::string(kMinimal) + "log: { level: loud }\n"),
                    "t.yaml:5:15: invalid level \"loud\"; expected one of: trace, debug, info, "
                    "warn, error"));
}

TEST_CASE("config: an unclosed quote is an error where it opened, not a folded string") {
  // Verifies that a quoted scalar running over `key:` lines, or to the end of the file, is
  // reported at its opening quote, and that the syntax error it causes is not reported.
  CHECK(load_error("data_dir: \"/tmp/d\nthreads: 2\nlog:\n  level: debug\n") ==
        "t.yaml:1:11: unclosed quote: the string opened here runs on to the end of the file "
        "(line 4; line 2 looks like a key: \"threads: 2\"); expected the closing \" on line 1");
  CHECK(load_error(std::string(kMinimal) + "data_dir: '/srv/ls\nthreads: 2\nlog: {level: 'x'}\n") ==
        "t.yaml:5:11: unclosed quote: the string opened here runs on to line 7 (line 6 looks "
        "like a key: \"threads: 2\"); expected the closing ' on line 5");
  CHECK(load_error(
            "sources:\n  app: {type: file, include: \"/a}\nsinks:\n  out: {type: console}\n") ==
        "t.yaml:2:30: unclosed quote: the string opened here runs on to the end of the file "
        "(line 4; line 3 looks like a key: \"sinks:\"); expected the closing \" on line 2");
  CHECK(starts_with(load_error(std::string(kMinimal) + "data_dir: \"/srv/ls\n"),
                    "t.yaml:5:11: unclosed quote: the string opened here runs on to the end of "
                    "the file (line 5); expected the closing \" on line 5"));
  // Multi-line quoted strings without key lookalikes, escapes and '' are fine.
  Config ok =
      load_config_text(std::string(kMinimal) + "data_dir: \"/srv/a\n  b \\\" c\"\n", "t.yaml");
  CHECK(ok.data_dir == "/srv/a b \" c");
  CHECK(starts_with(load_error(std::string(kMinimal) + "log: {level: 'de''\n  bug'}\n"),
                    "t.yaml:5:14: invalid level \"de' bug\""));
}

TEST_CASE("config: every error of a load is reported, one a line, in file order") {
  // Verifies that the loader goes on after an error: a bad value reads as its default, a
  // component in error is left out without an error for each input naming it.
  std::string msg = load_error(R"(threads: lots
log: { level: loud, colour: red }
sinks:
  out: { type: console, inputs: [app, gone, BAD] }
sources:
  app: { type: file, include: /a }
  BAD: { type: file }
  notype: { include: /a }
bogus: 1
data_dir: ""
)");
  CHECK(
      msg ==
      "t.yaml:1:10: invalid integer \"lots\"; expected an integer from 1 to 1024\n"
      "t.yaml:2:15: invalid level \"loud\"; expected one of: trace, debug, info, warn, error\n"
      "t.yaml:2:21: unknown key \"colour\" in log; expected one of: format, level\n"
      "t.yaml:4:39: unknown input \"gone\" in sinks.out; expected a source or transform: app\n"
      "t.yaml:7:3: invalid component id \"BAD\" in sources; expected lowercase letters, digits "
      "and _ ([a-z0-9_]+)\n"
      "t.yaml:8:11: missing required key type in sources.notype; expected a string\n"
      "t.yaml:9:1: unknown key \"bogus\" at the top level; expected one of: admin, data_dir, encryption, log, "
      "sinks, sources, threads, transforms\n"
      "t.yaml:10:11: data_dir is empty; expected a directory path");
  // Duplicate keys and unset variables are reported with the rest; an identical message once.
  ::unsetenv("LOGSHIP_TEST_UNSET");
  msg = load_error(std::string(kMinimal) + "data_dir: ${LOGSHIP_TEST_UNSET}\nthreads: 1\n" +
                   "threads: 2\n");
  CHECK(msg ==
        "t.yaml:5:11: environment variable LOGSHIP_TEST_UNSET is not set; expected it to be set, "
        "or a default such as ${LOGSHIP_TEST_UNSET:-value}\n"
        "t.yaml:7:1: duplicate key \"threads\" at the top level (first at line 6); expected each "
        "key once per mapping");
}

TEST_CASE("config: while collecting, an error about a key hides the errors that follow from it") {
  // Verifies getters record and return a neutral value, later errors on the same key are
  // suppressed, fail() still throws and finish() reports every unknown key.
  auto errors = std::make_shared<ConfigErrors>("n.yaml");
  ConfigNode n(YAML::Load("count: x\nsize: 1\nname: [a]\nextra: 1\nmore: 2\n"),
               std::make_shared<const std::string>("n.yaml"), "sinks.s", errors);
  CHECK(n.integer("count", 5, 1, 10) == 5);
  CHECK(n.list("include").empty());
  n.error("include", "include must list at least one glob");  // follows from the missing key
  CHECK(n.has_error("include"));
  CHECK(n.str("name", std::string("d")) == "d");
  CHECK(n.size("size", std::nullopt) == 1);
  CHECK(n.any_errors());
  CHECK_FALSE(n.aborted());
  n.finish();
  CHECK_THROWS_AS(n.fail("count", "count is bad again"), ConfigError);
  CHECK(n.aborted());
  CHECK(error_of([&] { errors->finish(); }) ==
        "n.yaml:1:1: missing required key include in sinks.s; expected a list of strings (or a "
        "single string)\n"
        "n.yaml:1:8: invalid integer \"x\"; expected an integer from 1 to 10\n"
        "n.yaml:3:7: name is a list; expected a string\n"
        "n.yaml:4:1: unknown key \"extra\" in sinks.s; expected one of: count, include, name, "
        "size\n"
        "n.yaml:5:1: unknown key \"more\" in sinks.s; expected one of: count, include, name, size");
  // Once finished, errors throw at once again.
  CHECK(error_of([&] { n.integer("size", 1, 5, 10); }) ==
        "n.yaml:2:7: 1 is out of range; expected an integer from 5 to 10");
}

TEST_CASE("config: load_config reads a file and reports an unreadable one with strerror") {
  // Verifies the file path is the name in messages.
  TempDir dir;
  std::string path = dir.write("logship.yaml", std::string(kMinimal) + "bogus: 1\n", 0644);
  CHECK(starts_with(error_of([&] { load_config(path); }), path + ":5:1: unknown key \"bogus\""));
  CHECK(error_of([&] { load_config(path + ".absent"); }) ==
        path + ".absent:1:1: cannot read: No such file or directory");
}

}  // namespace logship
