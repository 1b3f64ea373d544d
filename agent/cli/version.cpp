#include "agent/cli/version.h"

#include <boost/version.hpp>
#include <curl/curl.h>
#include <fmt/format.h>
#include <libdeflate.h>
#include <openssl/crypto.h>
#include <re2/re2.h>
#include <simdjson.h>
#include <spdlog/version.h>
#include <xxhash.h>
#include <yaml-cpp/yaml.h>
#include <zlib.h>
#include <zstd.h>

#include "build_info.h"

namespace logship {

std::string version_text() {
  curl_version_info_data* cv = curl_version_info(CURLVERSION_NOW);
  std::string out = fmt::format("logship {} (commit {})\n", LOGSHIP_VERSION, LOGSHIP_GIT_COMMIT);
  out += fmt::format("  compiler   g++ {}.{}.{}, C++{}\n", __GNUC__, __GNUC_MINOR__,
                     __GNUC_PATCHLEVEL__, __cplusplus / 100 % 10000);
  out += fmt::format("  boost      {}.{}.{}\n", BOOST_VERSION / 100000, BOOST_VERSION / 100 % 1000,
                     BOOST_VERSION % 100);
  out += fmt::format("  libcurl    {} ({})\n", cv->version, cv->ssl_version ? cv->ssl_version : "no TLS");
  out += fmt::format("  openssl    {}\n", OpenSSL_version(OPENSSL_VERSION));
  out += fmt::format("  simdjson   {}.{}.{} ({})\n", int(simdjson::SIMDJSON_VERSION_MAJOR),
                     int(simdjson::SIMDJSON_VERSION_MINOR), int(simdjson::SIMDJSON_VERSION_REVISION),
                     simdjson::get_active_implementation()->name());
  out += fmt::format("  spdlog     {}.{}.{}\n", SPDLOG_VER_MAJOR, SPDLOG_VER_MINOR, SPDLOG_VER_PATCH);
  out += fmt::format("  fmt        {}.{}.{}\n", FMT_VERSION / 10000, FMT_VERSION / 100 % 100, FMT_VERSION % 100);
  out += fmt::format("  libdeflate {}\n", LIBDEFLATE_VERSION_STRING);
  out += fmt::format("  zlib       {}\n", zlibVersion());
  out += fmt::format("  zstd       {}\n", ZSTD_versionString());
  const unsigned xx = XXH_versionNumber();
  out += fmt::format("  xxhash     {}.{}.{}\n", xx / 10000, xx / 100 % 100, xx % 100);
  out += fmt::format("  re2        linked\n  yaml-cpp   linked\n");
  return out;
}

}  // namespace logship
