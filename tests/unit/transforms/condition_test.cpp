#include <doctest/doctest.h>

#include <string>

#include "agent/transform/condition.h"
#include "agent/transform/json_edit.h"

using namespace logship;
using namespace logship::transform;

namespace {

struct Ev {
  EventBatch batch;
  JsonScratch scratch;
  explicit Ev(std::string_view text, bool json_flag = false, std::string_view host = "web-1") {
    Event& e = batch.add(text, 1'700'000'000'500'000'000);
    e.host = batch.intern(host);
    e.sourcetype = batch.intern("app:log");
    if (json_flag) e.flags |= Event::kJsonValue;
  }
  bool eval(std::string_view cond) {
    ParseError err;
    auto c = Condition::parse(cond, err);
    INFO(std::string(cond), ": ", err.message);
    REQUIRE(c);
    EventView v(batch, batch.events()[0], scratch);
    return c->eval(v);
  }
};

ParseError parse_error(std::string_view cond) {
  ParseError err;
  auto c = Condition::parse(cond, err);
  INFO(std::string(cond));
  CHECK(!c);
  return err;
}

FieldPath path(std::string_view s) {
  FieldPath p;
  std::string err;
  REQUIRE(parse_field_path(s, p, err) == s.size());
  return p;
}

}  // namespace

TEST_CASE("conditions: every operator over a JSON event") {
  Ev ev(
      R"({"level":"error","ms":700,"ok":true,"none":null,"user":{"name":"Bob","tags":["a","b"]},"msg":"Disk FULL on /var"})");
  CHECK(ev.eval(R"(.level == "error")"));
  CHECK_FALSE(ev.eval(R"(.level != "error")"));
  CHECK(ev.eval(".ms > 500"));
  CHECK(ev.eval(".ms >= 700"));
  CHECK_FALSE(ev.eval(".ms < 700"));
  CHECK(ev.eval(".ms <= 700"));
  CHECK(ev.eval(R"(.user.name < "Carol")"));
  CHECK(ev.eval(R"(.user.tags[1] == "b")"));
  CHECK(ev.eval(".ok"));
  CHECK(ev.eval(".ok == true"));
  CHECK(ev.eval(".none == null"));
  CHECK(ev.eval(R"(.level == "error" and .ms > 500)"));
  CHECK(ev.eval(R"(.level == "info" or .ms > 500)"));
  CHECK_FALSE(ev.eval(R"(not (.level == "error"))"));
  CHECK(ev.eval(R"(not .level == "info")"));
  CHECK(ev.eval(R"(.level == "info" or .ms > 500 and .ok)"));  // and binds tighter
  CHECK_FALSE(ev.eval(R"((.level == "info" or .ms > 500) and .none == 1)"));
}

TEST_CASE("conditions: functions") {
  Ev ev(R"({"msg":"Disk FULL on /var","n":5})");
  CHECK(ev.eval(R"(contains(.msg, "FULL"))"));
  CHECK_FALSE(ev.eval(R"(contains(.msg, "full"))"));
  CHECK(ev.eval(R"(contains(lower(.msg), "full"))"));
  CHECK(ev.eval(R"(starts_with(.msg, "Disk"))"));
  CHECK(ev.eval(R"(ends_with(.msg, "/var"))"));
  CHECK_FALSE(ev.eval(R"(ends_with(.msg, "/usr"))"));
  CHECK(ev.eval(R"(matches(.msg, "^Disk [A-Z]+ on"))"));
  CHECK_FALSE(ev.eval(R"(matches(.msg, "^disk"))"));
  CHECK(ev.eval(R"(lower(.msg) == "disk full on /var")"));
  CHECK(ev.eval("exists(.n)"));
  CHECK_FALSE(ev.eval("exists(.missing)"));
  CHECK_FALSE(ev.eval(R"(contains(.n, "5"))"));  // not a string
  CHECK(ev.eval(R"(contains(%message, "\"n\":5"))"));
}

TEST_CASE("conditions: an absent field is unequal to everything and unordered") {
  Ev ev(R"({"a":1})");
  CHECK_FALSE(ev.eval(".missing == null"));
  CHECK(ev.eval(".missing != 1"));
  CHECK(ev.eval(".missing != null"));
  CHECK_FALSE(ev.eval(".missing < 5"));
  CHECK_FALSE(ev.eval(".missing >= 5"));
  CHECK_FALSE(ev.eval(".missing"));
  CHECK(ev.eval("not exists(.missing)"));
  CHECK_FALSE(ev.eval(R"(contains(.missing, "x"))"));
  CHECK_FALSE(ev.eval(R"(lower(.missing) == "")"));
  // Different types never compare equal, nor order.
  CHECK_FALSE(ev.eval(R"(.a == "1")"));
  CHECK_FALSE(ev.eval(R"(.a < "2")"));
  // A failed lookup, then others on the same event (simdjson's document is re-iterated).
  CHECK(ev.eval(".missing == 1 or .other == 2 or .a == 1"));
  CHECK(ev.eval(".x.y == 1 or .a[0] == 1 or (.a == 1 and not exists(.z))"));
}

TEST_CASE("conditions: %-names and a plain (non-JSON) event") {
  Ev ev("plain ERROR text {not json", false, "db-2");
  CHECK(ev.eval(R"(contains(%message, "ERROR"))"));
  CHECK(ev.eval(R"(%host == "db-2")"));
  CHECK(ev.eval(R"(starts_with(%sourcetype, "app"))"));
  CHECK(ev.eval(R"(%index == "")"));
  CHECK(ev.eval(R"(%source == "")"));
  CHECK(ev.eval("%time > 1700000000 and %time < 1700000001"));
  CHECK_FALSE(ev.eval("exists(.a)"));
  Ev flagged(R"("a JSON string")", true);
  CHECK_FALSE(flagged.eval("exists(.a)"));
  Ev broken(R"({"a": 1, )");
  CHECK_FALSE(broken.eval(".a == 1"));
  for (const char* text :
       {"{not json level=error", "{", "[", "{\"a\"", "[1,", "{\"a\":}", "  {x"}) {
    Ev bad(text);
    CHECK_FALSE(bad.eval(".level == \"error\""));
    CHECK_FALSE(bad.eval(".a[0] == 1"));
  }
}

TEST_CASE("conditions: syntax and type errors carry their offset") {
  CHECK(parse_error(".a == ").offset == 6);
  CHECK(parse_error("foo(.a)").offset == 0);
  CHECK(parse_error("foo(.a)").message.find("unknown function") != std::string::npos);
  CHECK(parse_error(R"(contains(.a, 5))").offset == 13);
  CHECK(parse_error(R"("a" < 5)").offset == 4);
  CHECK(parse_error(R"(not "x")").offset == 4);
  CHECK(parse_error(R"(matches(.a, "("))").message.find("RE2") != std::string::npos);
  CHECK(parse_error(R"(matches(.a, "("))").offset == 12);
  CHECK(parse_error(".a = 1").offset == 3);
  CHECK(parse_error(R"(.a == "x)").offset == 6);
  CHECK(parse_error("%nope == 1").message.find("unknown name") != std::string::npos);
  CHECK(parse_error("1 < 2 < 3").offset == 6);
  CHECK(parse_error("(.a == 1").offset == 8);
  CHECK(parse_error(R"("x")").message.find("true or false") != std::string::npos);
  CHECK(parse_error("true < false").offset == 0);
  CHECK(parse_error("%time == \"x\"").offset == 6);
  CHECK(parse_error("exists(%host)").offset == 7);
  CHECK(parse_error(".a and").offset == 6);
  CHECK(parse_error("lower(.a)").message.find("true or false") != std::string::npos);
}

TEST_CASE("templates render literal text and values") {
  Ev ev(R"({"region":"eu-west-1","n":3,"f":1.5,"b":false})");
  Template t;
  ParseError err;
  REQUIRE(Template::parse("prod-{{ .region }}/{{%host}}:{{ .n }}:{{ .f }}:{{ .b }}:{{ .missing }}!",
                          t, err));
  EventView v(ev.batch, ev.batch.events()[0], ev.scratch);
  CHECK(t.render(v) == "prod-eu-west-1/web-1:3:1.5:false:!");
  CHECK_FALSE(t.constant());
  Template lit;
  REQUIRE(Template::parse("main", lit, err));
  CHECK(lit.constant());
  CHECK(lit.render(v) == "main");
  CHECK_FALSE(Template::parse("x{{ .a", t, err));
  CHECK_FALSE(Template::parse("{{ nope }}", t, err));
  CHECK_FALSE(Template::parse("{{ .a junk }}", t, err));
}

TEST_CASE("field paths") {
  FieldPath p = path(R"(.a."b c"[2].d)");
  REQUIRE(p.steps.size() == 4);
  CHECK(p.steps[1].key == "b c");
  CHECK(p.steps[2].is_index);
  CHECK(p.steps[2].index == 2);
  CHECK(p.pointer == "/a/b c/2/d");
  FieldPath q = path(R"(."x~y/z")");
  CHECK(q.pointer == "/x~0y~1z");
  FieldPath bad;
  std::string err;
  CHECK(parse_field_path("a.b", bad, err) == 0);
  CHECK(parse_field_path(".a[x]", bad, err) == 0);
}

TEST_CASE("JSON edits keep the document valid") {
  std::string out;
  std::string doc = R"({"a":1, "user":{"email":"x@y.io","ssn":"078-05-1120"},"z":[1,{"k":"v"}]})";
  Span v, m;
  REQUIRE(json_find(doc, path(".user.email"), v, &m));
  CHECK(doc.substr(v.begin, v.end - v.begin) == R"("x@y.io")");
  REQUIRE(json_find(doc, path(".z[1].k"), v));
  CHECK(doc.substr(v.begin, v.end - v.begin) == R"("v")");
  CHECK_FALSE(json_find(doc, path(".z[2]"), v));
  CHECK_FALSE(json_find(doc, path(".nope"), v));

  REQUIRE(json_remove(doc, path(".user.ssn"), out));
  CHECK(out == R"({"a":1, "user":{"email":"x@y.io"},"z":[1,{"k":"v"}]})");
  REQUIRE(json_remove(doc, path(".a"), out));
  CHECK(out == R"({"user":{"email":"x@y.io","ssn":"078-05-1120"},"z":[1,{"k":"v"}]})");
  REQUIRE(json_remove(R"({"only":1})", path(".only"), out));
  CHECK(out == "{}");

  REQUIRE(json_set(doc, path(".a"), "2", out));
  CHECK(out.find(R"("a":2)") != std::string::npos);
  REQUIRE(json_set(R"({"a":1})", path(".b.c"), R"("x")", out));
  CHECK(out == R"({"a":1,"b":{"c":"x"}})");
  REQUIRE(json_set("{ }", path(".t"), "true", out));
  CHECK(out == R"({ "t":true})");
  REQUIRE(json_set(R"({"u":{}})", path(".u.n"), "1", out));
  CHECK(out == R"({"u":{"n":1}})");
  CHECK_FALSE(json_set(R"([1])", path(".a"), "1", out));
  CHECK_FALSE(json_set(R"({"a":1})", path(".a.b"), "1", out));  // .a is not an object

  std::string dec;
  REQUIRE(json_decode_string(R"("a\"b\\c\n\u00e9\ud83d\ude00")", dec));
  CHECK(dec == "a\"b\\c\n\xc3\xa9\xf0\x9f\x98\x80");
  CHECK_FALSE(json_decode_string(R"("a\q")", dec));

  int strings = 0, numbers = 0;
  CHECK(json_for_each_scalar(doc, [&](Span, bool s) { (s ? strings : numbers)++; }));
  CHECK(strings == 3);
  CHECK(numbers == 2);
  CHECK_FALSE(json_for_each_scalar(R"({"a":1,})", [](Span, bool) {}));
  CHECK_FALSE(json_for_each_scalar(R"({"a":1} x)", [](Span, bool) {}));
  CHECK_FALSE(
      json_for_each_scalar(std::string(300, '[') + std::string(300, ']'), [](Span, bool) {}));
}
