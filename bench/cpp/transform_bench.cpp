// Transforms alone, on one core (bench/README.md "transforms"): batches of ~250-byte JSON log
// lines (the shape of bench/common.py make_json_log: user emails, client IPs, trace ids) go
// through each transform as the runtime calls it (apply() on whole batches); then a hostile
// user pattern, `(a+)+$`, on 1 MiB lines (RE2: linear time, no backtracking).
//
//   build/bench/transform_bench [MiB=256]     prints MiB/s per core and CPU s/GiB per transform
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>

#include <fmt/format.h>

#include "agent/config/config.h"
#include "agent/core/log.h"
#include "agent/pipeline/registry.h"

using namespace logship;

namespace {
double cpu_seconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return double(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         double(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

std::vector<BatchPtr> json_batches(size_t mib) {
  std::mt19937_64 rng(42);
  const char* paths[] = {"/api/v1/items", "/api/v1/orders", "/login", "/health", "/api/v2/search"};
  const char* levels[] = {"info", "info", "info", "warn", "error"};
  std::vector<BatchPtr> out;
  uint64_t seq = 0;
  for (size_t b = 0; b < mib; ++b) {
    auto batch = std::make_shared<EventBatch>();
    batch->reserve(4200, 1100000);
    while (batch->text_bytes() < (1u << 20) - 300) {
      std::string line = fmt::format(
          "{{\"ts\":\"2026-11-27T12:{:02}:{:02}.{:03}Z\",\"level\":\"{}\",\"seq\":{},"
          "\"user\":\"user{}@example.com\",\"client_ip\":\"10.{}.{}.{}\",\"method\":\"GET\","
          "\"path\":\"{}\",\"status\":{},\"duration_ms\":{},\"msg\":\"request served\","
          "\"trace_id\":\"{:016x}{:016x}\"}}",
          seq / 60000 % 60, seq / 1000 % 60, seq % 1000, levels[rng() % 5], seq, rng() % 500,
          rng() % 256, rng() % 256, rng() % 256, paths[rng() % 5], rng() % 10 ? 200 : 500,
          rng() % 1000, rng(), rng());
      ++seq;
      Event& e = batch->add(line, 1764244800000000000 + int64_t(seq) * 1000000);
      e.host = batch->intern("bench-host");
      e.source = batch->intern("/var/log/app/app.log");
    }
    out.push_back(std::move(batch));
  }
  return out;
}

std::vector<BatchPtr> hostile_batches(size_t lines) {
  std::vector<BatchPtr> out;
  std::string line(1000000, 'a');
  line += '!';  // `(a+)+$` never matches: a backtracking engine explores 2^n paths
  for (size_t i = 0; i < lines; ++i) {
    auto batch = std::make_shared<EventBatch>();
    batch->add(line, 0);
    out.push_back(std::move(batch));
  }
  return out;
}

void run(const std::string& name, const std::string& yaml, const std::vector<BatchPtr>& batches) {
  Config cfg = load_config_text(yaml, name + ".yaml");
  auto& d = cfg.transforms.at(0);
  ComponentContext ctx;
  ctx.id = d.id;
  ctx.type = d.type;
  ctx.kind = "transform";
  auto t = (*builtin_registry().transform(d.type))(*d.node, ctx);
  std::vector<BatchPtr> outs(t->outputs().size());
  size_t bytes = 0, in_events = 0, out_events = 0;
  double c0 = cpu_seconds();
  auto t0 = std::chrono::steady_clock::now();
  for (const auto& b : batches) {
    std::fill(outs.begin(), outs.end(), nullptr);
    t->apply(b, outs);
    bytes += b->text_bytes();
    in_events += b->size();
    for (auto& o : outs)
      if (o) out_events += o->size();
  }
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  double cpu = cpu_seconds() - c0;
  double mib = double(bytes) / (1 << 20);
  fmt::print(
      "{:<28} {:>8.1f} MiB/s per core  {:>10.0f} events/s  {:>6.2f} CPU s/GiB  ({:.0f} MiB, "
      "{} events in, {} out)\n",
      name, mib / s, double(in_events) / s, cpu / (mib / 1024), mib, in_events, out_events);
}
}  // namespace

int main(int argc, char** argv) {
  size_t mib = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 256;
  init_logging("warn", "text");
  auto batches = json_batches(mib);
  const std::string head =
      "data_dir: /tmp/transform-bench\nsources: {app: {type: file, include: [/x]}}\n"
      "sinks: {out: {type: blackhole, inputs: [t]}}\ntransforms:\n  t:\n    inputs: [app]\n";
  run("filter (keeps all)", head + "    type: filter\n    condition: '.status != 999'\n", batches);
  run("filter (keeps errors)", head + "    type: filter\n    condition: '.level == \"error\"'\n",
      batches);
  run("route (2 routes)",
      head +
          "    type: route\n    routes:\n      errors: '.level == \"error\"'\n"
          "      slow: '.duration_ms > 900'\n",
      batches);
  run("redact (every detector)",
      head +
          "    type: redact\n    rules:\n      - match: [email, ipv4, ipv6, "
          "credit_card, iban, phone, aws_access_key_id, aws_secret_access_key, jwt, "
          "bearer_token, us_ssn]\n",
      batches);
  run("redact (email+ipv4, fields)",
      head +
          "    type: redact\n    rules:\n      - match: [email, ipv4]\n"
          "        fields: [.user, .client_ip]\n",
      batches);
  run("sample (1 in 10, key .user)", head + "    type: sample\n    rate: 10\n    key: .user\n",
      batches);
  auto hostile = hostile_batches(64);
  run("redact regex (a+)+$, 1 MiB",
      head + "    type: redact\n    rules:\n      - match: [{regex: \"(a+)+$\"}]\n", hostile);
  return 0;
}
