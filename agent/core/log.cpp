#include "agent/core/log.h"

#include <mutex>
#include <unordered_map>

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>

namespace logship {
namespace {
// Escapes the message for the JSON log format.
class JsonMessageFlag : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    for (char c : msg.payload) {
      switch (c) {
        case '"': dest.append(std::string_view("\\\"")); break;
        case '\\': dest.append(std::string_view("\\\\")); break;
        case '\n': dest.append(std::string_view("\\n")); break;
        case '\r': dest.append(std::string_view("\\r")); break;
        case '\t': dest.append(std::string_view("\\t")); break;
        default:
          if (static_cast<unsigned char>(c) < 0x20) {
            char b[8];
            snprintf(b, sizeof b, "\\u%04x", c);
            dest.append(std::string_view(b));
          } else {
            dest.push_back(c);
          }
      }
    }
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<JsonMessageFlag>();
  }
};
}  // namespace

void init_logging(std::string_view level, std::string_view format) {
  auto logger = spdlog::stderr_logger_mt("logship");
  spdlog::set_default_logger(logger);
  spdlog::set_level(spdlog::level::from_str(std::string(level)));
  if (format == "json") {
    auto f = std::make_unique<spdlog::pattern_formatter>(spdlog::pattern_time_type::utc);
    f->add_flag<JsonMessageFlag>('*');
    f->set_pattern(R"({"time":"%Y-%m-%dT%H:%M:%S.%fZ","level":"%l","thread":%t,"message":"%*"})");
    logger->set_formatter(std::move(f));
  } else {
    logger->set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %^%-5l%$ %v", spdlog::pattern_time_type::utc);
  }
  logger->flush_on(spdlog::level::info);
}

bool log_allowed(std::string_view key, std::chrono::seconds interval, uint64_t* suppressed) {
  struct Entry {
    std::chrono::steady_clock::time_point last{};
    uint64_t suppressed = 0;
    bool seen = false;
  };
  static std::mutex mu;
  static std::unordered_map<std::string, Entry> entries;
  std::lock_guard lk(mu);
  auto now = std::chrono::steady_clock::now();
  // Keys can be per file or per S3 object: the table must not grow without limit. Entries idle
  // for a day are dropped (swept at most once a minute; no interval in use is longer); past
  // 100,000 live keys it starts over (worst case: one repeated warning per key).
  static std::chrono::steady_clock::time_point last_sweep{};
  if (entries.size() >= 8192 && now - last_sweep > std::chrono::minutes(1)) {
    last_sweep = now;
    std::erase_if(entries, [&](const auto& kv) { return now - kv.second.last > std::chrono::hours(24); });
  }
  if (entries.size() >= 100000) entries.clear();
  auto& e = entries[std::string(key)];
  if (!e.seen || now - e.last >= interval) {
    if (suppressed) *suppressed = e.suppressed;
    e.seen = true;
    e.last = now;
    e.suppressed = 0;
    return true;
  }
  ++e.suppressed;
  return false;
}

}  // namespace logship
