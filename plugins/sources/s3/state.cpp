#include "plugins/sources/s3/state.h"

#include <fmt/format.h>
#include <simdjson.h>
#include <xxhash.h>

#include <string_view>

#include "agent/core/json_escape.h"

namespace logship::s3 {

namespace {
std::string json_escape(std::string_view s) {
  std::string out;
  json_escape_append(out, s);
  return out;
}
constexpr int64_t kNsPerS = 1'000'000'000;
}  // namespace

uint64_t State::hash(std::string_view key, std::string_view etag) {
  std::string buf;
  buf.reserve(key.size() + etag.size() + 1);
  buf.append(key).push_back('\0');
  buf.append(etag);
  return XXH3_64bits(buf.data(), buf.size());
}

bool State::finished(const ObjectInfo& o) const {
  std::lock_guard lk(mu_);
  return seen_.count(hash(o.state_key(), o.version())) > 0;
}

std::optional<State::Status> State::status(const ObjectInfo& o) const {
  std::lock_guard lk(mu_);
  auto it = seen_.find(hash(o.state_key(), o.version()));
  if (it == seen_.end()) return std::nullopt;
  return it->second.status;
}

uint64_t State::resume_point(const ObjectInfo& o) const {
  std::lock_guard lk(mu_);
  auto it = in_progress_.find(o.state_key());
  if (it != in_progress_.end() && it->second.etag == o.version()) return it->second.records_done;
  auto f = failed_.find(o.state_key());
  if (f != failed_.end() && f->second.etag == o.version()) return f->second.records_done;
  return 0;
}

void State::progress(const ObjectInfo& o, uint64_t records_done) {
  std::lock_guard lk(mu_);
  auto& p = in_progress_[o.state_key()];
  p.etag = o.version();
  p.last_modified_ns = o.last_modified_ns;
  p.records_done = records_done;
}

void State::done(const ObjectInfo& o) {
  std::lock_guard lk(mu_);
  in_progress_.erase(o.state_key());
  seen_[hash(o.state_key(), o.version())] = Seen{o.last_modified_ns / kNsPerS, Status::kDone};
}

void State::failed(const ObjectInfo& o, const std::string& reason) {
  std::lock_guard lk(mu_);
  uint64_t acked = 0;
  if (auto it = in_progress_.find(o.state_key()); it != in_progress_.end()) {
    if (it->second.etag == o.version()) acked = it->second.records_done;
    in_progress_.erase(it);
  }
  seen_[hash(o.state_key(), o.version())] = Seen{o.last_modified_ns / kNsPerS, Status::kFailed};
  failed_[o.state_key()] = Failed{o.version(), o.last_modified_ns, reason.substr(0, 1000), acked};
}

size_t State::prune(int64_t cutoff_ns) {
  std::lock_guard lk(mu_);
  int64_t cutoff_s = cutoff_ns / kNsPerS;
  size_t n =
      std::erase_if(seen_, [&](const auto& kv) { return kv.second.last_modified_s < cutoff_s; });
  std::erase_if(in_progress_,
                [&](const auto& kv) { return kv.second.last_modified_ns < cutoff_ns; });
  std::erase_if(failed_, [&](const auto& kv) { return kv.second.last_modified_ns < cutoff_ns; });
  return n;
}

size_t State::size() const {
  std::lock_guard lk(mu_);
  return seen_.size() + in_progress_.size();
}

size_t State::failed_count() const {
  std::lock_guard lk(mu_);
  return failed_.size();
}

std::string State::serialize() const {
  std::lock_guard lk(mu_);
  std::string out = "{\"version\":1,\"seen\":[";
  out.reserve(64 + seen_.size() * 40);
  bool first = true;
  for (auto& [h, s] : seen_) {
    if (!first) out.push_back(',');
    first = false;
    fmt::format_to(std::back_inserter(out), "[\"{:016x}\",{},{}]", h, s.last_modified_s,
                   static_cast<int>(s.status));
  }
  out += "],\"in_progress\":[";
  first = true;
  for (auto& [k, p] : in_progress_) {
    if (!first) out.push_back(',');
    first = false;
    fmt::format_to(std::back_inserter(out),
                   "{{\"key\":\"{}\",\"etag\":\"{}\",\"last_modified_ns\":{},\"records_done\":{}}}",
                   json_escape(k), json_escape(p.etag), p.last_modified_ns, p.records_done);
  }
  out += "],\"failed\":[";
  first = true;
  for (auto& [k, f] : failed_) {
    if (!first) out.push_back(',');
    first = false;
    fmt::format_to(std::back_inserter(out),
                   "{{\"key\":\"{}\",\"etag\":\"{}\",\"last_modified_ns\":{},\"reason\":\"{}\","
                   "\"records_done\":{}}}",
                   json_escape(k), json_escape(f.etag), f.last_modified_ns, json_escape(f.reason),
                   f.records_done);
  }
  out += "]}";
  return out;
}

bool State::load(std::string_view json, std::string* error) {
  std::lock_guard lk(mu_);
  seen_.clear();
  in_progress_.clear();
  failed_.clear();
  if (json.empty()) return true;
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  auto fail = [&](const std::string& why) {
    seen_.clear();
    in_progress_.clear();
    failed_.clear();
    if (error) *error = why;
    return false;
  };
  if (parser.parse(json.data(), json.size()).get(doc)) return fail("not JSON");
  int64_t version = 0;
  if (doc["version"].get_int64().get(version) || version != 1) return fail("unknown state version");
  simdjson::dom::array arr;
  if (!doc["seen"].get_array().get(arr)) {
    for (auto e : arr) {
      simdjson::dom::array t;
      std::string_view hs;
      int64_t lm = 0, st = 0;
      if (e.get_array().get(t) || t.size() != 3 || t.at(0).get_string().get(hs) ||
          t.at(1).get_int64().get(lm) || t.at(2).get_int64().get(st))
        return fail("bad seen entry");
      uint64_t h = std::strtoull(std::string(hs).c_str(), nullptr, 16);
      seen_[h] = Seen{lm, st == 2 ? Status::kFailed : Status::kDone};
    }
  }
  if (!doc["in_progress"].get_array().get(arr)) {
    for (auto e : arr) {
      std::string_view k, et;
      int64_t lm = 0;
      uint64_t rd = 0;
      if (e["key"].get_string().get(k) || e["etag"].get_string().get(et) ||
          e["last_modified_ns"].get_int64().get(lm) || e["records_done"].get_uint64().get(rd))
        return fail("bad in_progress entry");
      in_progress_[std::string(k)] = InProgress{std::string(et), lm, rd};
    }
  }
  if (!doc["failed"].get_array().get(arr)) {
    for (auto e : arr) {
      std::string_view k, et, r;
      int64_t lm = 0;
      if (e["key"].get_string().get(k) || e["etag"].get_string().get(et) ||
          e["last_modified_ns"].get_int64().get(lm) || e["reason"].get_string().get(r))
        return fail("bad failed entry");
      uint64_t rd = 0;  // absent in states written before it was kept
      if (auto v = e["records_done"].get_uint64(); !v.error()) rd = v.value_unsafe();
      failed_[std::string(k)] = Failed{std::string(et), lm, std::string(r), rd};
    }
  }
  return true;
}

}  // namespace logship::s3
