// The `s3` source's progress state and ListObjectsV2 parsing.
#include <doctest/doctest.h>

#include "plugins/sources/s3/listing.h"
#include "plugins/sources/s3/state.h"

using namespace logship::s3;

namespace {
constexpr int64_t kS = 1'000'000'000;
ObjectInfo obj(std::string key, std::string etag, int64_t lm_s) {
  ObjectInfo o;
  o.key = std::move(key);
  o.etag = std::move(etag);
  o.last_modified_ns = lm_s * kS;
  o.size = 100;
  return o;
}
}  // namespace

TEST_CASE("s3 state: key + ETag identity, progress, failure, prune, round trip") {
  State st;
  auto a = obj("AWSLogs/1/CloudTrail/us-east-1/2026/11/28/a.json.gz", "e1", 1000);
  auto b = obj("AWSLogs/1/CloudTrail/us-east-1/2026/11/28/b \"q\" \\ é.json.gz", "e2", 2000);
  auto c = obj("c", "e3", 3000);
  CHECK_FALSE(st.finished(a));
  CHECK(st.resume_point(a) == 0);
  st.progress(a, 120);
  CHECK(st.resume_point(a) == 120);
  CHECK_FALSE(st.finished(a));
  auto a2 = a;
  a2.etag = "other";  // a new version of the same key starts from 0
  CHECK(st.resume_point(a2) == 0);
  st.done(a);
  CHECK(st.finished(a));
  CHECK_FALSE(st.finished(a2));
  CHECK(st.resume_point(a) == 0);
  st.progress(b, 7);
  st.failed(c, "gzip: invalid data at compressed offset 40");
  CHECK(st.finished(c));
  CHECK(st.failed_count() == 1);

  std::string json = st.serialize();
  State back;
  std::string err;
  REQUIRE(back.load(json, &err));
  CHECK(back.finished(a));
  CHECK(back.finished(c));
  CHECK(back.resume_point(b) == 7);
  CHECK(back.failed_count() == 1);
  CHECK(back.serialize().size() == json.size());  // same content (hash order may differ)

  // Forgetting what is older than the window.
  CHECK(back.prune(2500 * kS) == 1);  // a (done)
  CHECK_FALSE(back.finished(a));
  CHECK(back.resume_point(b) == 0);  // in progress, older than the cutoff: forgotten too
  CHECK(back.finished(c));
}

TEST_CASE("s3 state: bad checkpoints are rejected, an empty one is a fresh start") {
  State st;
  std::string err;
  CHECK(st.load("", &err));
  CHECK_FALSE(st.load("{", &err));
  CHECK_FALSE(st.load(R"({"version":2,"seen":[]})", &err));
  CHECK(err.find("version") != std::string::npos);
  CHECK_FALSE(st.load(R"({"version":1,"seen":[["zz",1]]})", &err));
  CHECK(st.size() == 0);
}

TEST_CASE("s3 state: memory per object stays small for a busy bucket") {
  State st;
  for (int i = 0; i < 100000; ++i)
    st.done(obj("k/" + std::to_string(i), "etag" + std::to_string(i), i));
  CHECK(st.size() == 100000);
  std::string json = st.serialize();
  CHECK(json.size() < 100000 * 45);
  CHECK(st.prune(50000 * kS) == 50000);
  CHECK(st.size() == 50000);
}

TEST_CASE("ListObjectsV2: keys unescaped, ETag unquoted, pagination") {
  const char* xml = R"(<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>logs</Name><Prefix>a/</Prefix>
<KeyCount>2</KeyCount><MaxKeys>2</MaxKeys><IsTruncated>true</IsTruncated>
<Contents><Key>a/x &amp; y &lt;1&gt;.gz</Key><LastModified>2026-11-28T02:35:32.000Z</LastModified>
<ETag>&quot;6176a4e9ea59c03da8d9f32543f7dd75&quot;</ETag><Size>88</Size><StorageClass>STANDARD</StorageClass></Contents>
<Contents><Key>a/&#233;t&#xE9;</Key><LastModified>2026-11-28T02:35:33Z</LastModified><ETag>"abc-2"</ETag><Size>0</Size></Contents>
<NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=</NextContinuationToken></ListBucketResult>)";
  std::string err;
  auto page = parse_list_objects_v2(xml, &err);
  REQUIRE(page);
  REQUIRE(page->objects.size() == 2);
  CHECK(page->objects[0].key == "a/x & y <1>.gz");
  CHECK(page->objects[0].etag == "6176a4e9ea59c03da8d9f32543f7dd75");
  CHECK(page->objects[0].size == 88);
  CHECK(page->objects[0].last_modified_ns == 1795833332ll * kS);
  CHECK(page->objects[1].key == "a/\xC3\xA9t\xC3\xA9");
  CHECK(page->objects[1].etag == "abc-2");
  CHECK(page->truncated);
  CHECK(page->next_token == "1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=");
}

TEST_CASE("ListObjectsV2: malformed answers are errors, not empty pages") {
  std::string err;
  CHECK_FALSE(parse_list_objects_v2("<Error><Code>AccessDenied</Code></Error>", &err));
  CHECK_FALSE(parse_list_objects_v2(
      "<ListBucketResult><Contents><Size>1</Size></Contents></ListBucketResult>", &err));
  CHECK(err.find("Key") != std::string::npos);
  CHECK_FALSE(
      parse_list_objects_v2("<ListBucketResult><Contents><Key>k</Key><LastModified>yesterday</"
                            "LastModified></Contents></ListBucketResult>",
                            &err));
  CHECK_FALSE(parse_list_objects_v2(
      "<ListBucketResult><IsTruncated>true</IsTruncated></ListBucketResult>", &err));
  auto empty = parse_list_objects_v2(
      "<ListBucketResult><IsTruncated>false</IsTruncated></ListBucketResult>", &err);
  REQUIRE(empty);
  CHECK(empty->objects.empty());
}

TEST_CASE("s3 state: objects of two buckets with one key are two objects; a version without ETag") {
  State st;
  ObjectInfo a = obj("k", "e1", 1000);
  a.bucket = "one";
  ObjectInfo b = a;
  b.bucket = "two";
  st.progress(a, 5);
  CHECK(st.resume_point(a) == 5);
  CHECK(st.resume_point(b) == 0);
  st.done(a);
  CHECK(st.status(a) == State::Status::kDone);
  CHECK_FALSE(st.status(b));
  ObjectInfo c = obj("k", "", 1000);
  c.bucket = "one";
  c.sequencer = "0055A";
  CHECK_FALSE(st.finished(c));
  st.failed(c, "corrupt");
  CHECK(st.status(c) == State::Status::kFailed);
  ObjectInfo d = c;
  d.sequencer = "0055B";  // a later version of the key
  CHECK_FALSE(st.finished(d));
  State back;
  std::string err;
  REQUIRE(back.load(st.serialize(), &err));
  CHECK(back.status(a) == State::Status::kDone);
  CHECK(back.status(c) == State::Status::kFailed);
}

TEST_CASE("s3 state: a failed object keeps what was acknowledged before it failed") {
  State st;
  auto a = obj("a.json.gz", "e1", 1000);
  st.progress(a, 300);
  st.failed(a, "gzip: invalid data");
  CHECK(st.status(a) == State::Status::kFailed);
  // A resumed replay reads it again after its delivered records, not from the start.
  CHECK(st.resume_point(a) == 300);
  CHECK(st.resume_point(obj("a.json.gz", "e2", 1001)) == 0);  // another version: from the start
  State back;
  REQUIRE(back.load(st.serialize(), nullptr));
  CHECK(back.resume_point(a) == 300);
  // A state written before the count was kept loads with 0.
  State old;
  REQUIRE(old.load(
      R"({"version":1,"seen":[],"in_progress":[],"failed":[{"key":"a.json.gz","etag":"e1",)"
      R"("last_modified_ns":1000000000000,"reason":"x"}]})",
      nullptr));
  CHECK(old.resume_point(a) == 0);
  CHECK(old.failed_count() == 1);
}
