// Throughput of the S3 object path: gzip inflate (ISA-L via Decompressor vs zlib inflate), the
// CloudTrail and VPC Flow Logs parsers, and decompress+parse end to end. Prints MiB/s of
// decompressed bytes, single thread. Build and run with bench/formats/run.sh.
#include <zlib.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>

#include "plugins/formats/decompress.h"
#include "plugins/formats/format.h"

using namespace logship::formats;
using Clock = std::chrono::steady_clock;

namespace {

constexpr size_t kChunk = 8 << 20;  // ranged GET size

std::string gzip_zlib(std::string_view in, int level) {
  z_stream zs{};
  deflateInit2(&zs, level, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY);
  std::string out(deflateBound(&zs, in.size()), '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  zs.avail_in = static_cast<uInt>(in.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  if (deflate(&zs, Z_FINISH) != Z_STREAM_END) throw std::runtime_error("deflate");
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

std::string hex(std::mt19937_64& r, int n) {
  static const char* k = "0123456789abcdef";
  std::string s;
  for (int i = 0; i < n; ++i) s.push_back(k[r() & 15]);
  return s;
}

std::string cloudtrail_record(std::mt19937_64& r, int i) {
  static const char* kNames[] = {
      "GetObject",    "PutObject", "AssumeRole",  "DescribeInstances",
      "ConsoleLogin", "Decrypt",   "ListBuckets", "CreateNetworkInterface"};
  static const char* kSources[] = {"s3.amazonaws.com", "sts.amazonaws.com", "ec2.amazonaws.com",
                                   "kms.amazonaws.com", "signin.amazonaws.com"};
  std::string acct = "1234567890" + std::to_string(10 + (r() % 90));
  std::string ip = std::to_string(r() % 256) + "." + std::to_string(r() % 256) + "." +
                   std::to_string(r() % 256) + "." + std::to_string(r() % 256);
  char t[32];
  std::snprintf(t, sizeof t, "2024-03-%02d T%02d:%02d:%02dZ", 1 + i % 28, i % 24, i % 60,
                (i * 7) % 60);
  t[10] = 'T';
  std::string ts(t, 10);
  ts += std::string(t + 11);
  std::string s;
  s +=
      R"({"eventVersion":"1.08","userIdentity":{"type":"AssumedRole","principalId":"AROA)" +
      hex(r, 16) + ":i-" + hex(r, 17) + R"(","arn":"arn:aws:sts::)" + acct +
      R"(:assumed-role/app-role-)" + std::to_string(r() % 50) + "/i-" + hex(r, 17) +
      R"(","accountId":")" + acct + R"(","accessKeyId":"ASIA)" + hex(r, 16) +
      R"(","sessionContext":{"sessionIssuer":{"type":"Role","principalId":"AROA)" + hex(r, 16) +
      R"(","arn":"arn:aws:iam::)" + acct + R"(:role/app-role","accountId":")" + acct +
      R"(","userName":"app-role"},"webIdFederationData":{},"attributes":{"creationDate":")" + ts +
      R"(","mfaAuthenticated":"false"},"ec2RoleDelivery":"2.0"}},"eventTime":")" + ts +
      R"(","eventSource":")" + kSources[r() % 5] + R"(","eventName":")" + kNames[r() % 8] +
      R"(","awsRegion":"us-east-1","sourceIPAddress":")" + ip +
      R"(","userAgent":"[aws-sdk-java/1.12.470 Linux/5.10.179-168.710.amzn2.x86_64 OpenJDK_64-Bit_Server_VM/17.0.7+7-LTS java/17.0.7 vendor/Amazon.com_Inc. cfg/retry-mode/standard]",)"
      R"("requestParameters":{"bucketName":"logs-)" +
      hex(r, 8) + R"(","Host":"logs.s3.us-east-1.amazonaws.com","key":"app/2024/03/)" + hex(r, 24) +
      R"(.json.gz","x-id":"GetObject"},"responseElements":null,)"
      R"("additionalEventData":{"SignatureVersion":"SigV4","CipherSuite":"ECDHE-RSA-AES128-GCM-SHA256","bytesTransferredIn":0,"AuthenticationMethod":"AuthHeader","x-amz-id-2":")" +
      hex(r, 60) + R"(","bytesTransferredOut":)" + std::to_string(r() % 100000) +
      R"(},"requestID":")" + hex(r, 16) + R"(","eventID":")" + hex(r, 8) + "-" + hex(r, 4) + "-" +
      hex(r, 4) + "-" + hex(r, 4) + "-" + hex(r, 12) +
      R"(","readOnly":true,"resources":[{"type":"AWS::S3::Object","ARN":"arn:aws:s3:::logs/app/)" +
      hex(r, 24) + R"("},{"accountId":")" + acct +
      R"(","type":"AWS::S3::Bucket","ARN":"arn:aws:s3:::logs"}],"eventType":"AwsApiCall",)"
      R"("managementEvent":false,"recipientAccountId":")" +
      acct +
      R"(","eventCategory":"Data","tlsDetails":{"tlsVersion":"TLSv1.2","cipherSuite":"ECDHE-RSA-AES128-GCM-SHA256","clientProvidedHostHeader":"logs.s3.us-east-1.amazonaws.com"}})";
  return s;
}

std::string make_cloudtrail(size_t target, size_t& records) {
  std::mt19937_64 r(42);
  std::string s = R"({"Records":[)";
  records = 0;
  while (s.size() < target) {
    if (records) s.push_back(',');
    s += cloudtrail_record(r, static_cast<int>(records++));
  }
  s += "]}";
  return s;
}

std::string make_vpcflow(size_t target, size_t& rows) {
  std::mt19937_64 r(7);
  std::string s =
      "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes "
      "start end action log-status\n";
  rows = 0;
  while (s.size() < target) {
    if (r() % 50 == 0) {
      s += "2 123456789010 eni-" + hex(r, 17) + " - - - - - - - 1700000000 1700000060 - NODATA\n";
    } else {
      s += "2 123456789010 eni-" + hex(r, 17) + " 10." + std::to_string(r() % 256) + "." +
           std::to_string(r() % 256) + "." + std::to_string(r() % 256) + " 172.31." +
           std::to_string(r() % 256) + "." + std::to_string(r() % 256) + " " +
           std::to_string(r() % 65536) + " " + std::to_string(r() % 1024) + " 6 " +
           std::to_string(r() % 1000) + " " + std::to_string(r() % 1000000) + " " +
           std::to_string(1700000000 + r() % 3600) + " 1700000060 " +
           (r() % 3 ? "ACCEPT" : "REJECT") + " OK\n";
    }
    ++rows;
  }
  return s;
}

double mib(size_t n) {
  return static_cast<double>(n) / (1 << 20);
}

/// Best of `reps` runs of f(); returns seconds.
double best(int reps, const std::function<void()>& f) {
  double b = 1e30;
  for (int i = 0; i < reps; ++i) {
    auto t0 = Clock::now();
    f();
    double s = std::chrono::duration<double>(Clock::now() - t0).count();
    if (s < b) b = s;
  }
  return b;
}

void report(const char* what, size_t bytes, double secs, const std::string& extra = {}) {
  std::printf("%-46s %8.1f MiB/s  (%.1f MiB in %.3f s)%s\n", what, mib(bytes) / secs, mib(bytes),
              secs, extra.c_str());
  std::fflush(stdout);
}

size_t decompress_isal(std::string_view gz) {
  Decompressor d(Compression::kGzip);
  size_t n = 0;
  auto sink = [&](std::string_view s) { n += s.size() + static_cast<unsigned char>(s[0]) * 0; };
  for (size_t i = 0; i < gz.size(); i += kChunk) d.feed(gz.substr(i, kChunk), sink);
  d.finish(sink);
  return n;
}

size_t decompress_zlib(std::string_view gz) {
  z_stream zs{};
  inflateInit2(&zs, 31);
  std::string out(Decompressor::kPieceBytes, '\0');
  size_t n = 0;
  for (size_t i = 0; i < gz.size(); i += kChunk) {
    std::string_view c = gz.substr(i, kChunk);
    zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(c.data()));
    zs.avail_in = static_cast<uInt>(c.size());
    for (;;) {
      zs.next_out = reinterpret_cast<Bytef*>(out.data());
      zs.avail_out = static_cast<uInt>(out.size());
      int rc = inflate(&zs, Z_NO_FLUSH);
      n += out.size() - zs.avail_out;
      if (rc == Z_STREAM_END) {
        if (zs.avail_in == 0) break;
        inflateReset(&zs);  // next member
        continue;
      }
      if (rc != Z_OK && rc != Z_BUF_ERROR) throw std::runtime_error("inflate");
      if (zs.avail_in == 0 && zs.avail_out != 0) break;
    }
  }
  inflateEnd(&zs);
  return n;
}

/// Parses `raw` fed in Decompressor-sized pieces; returns records.
uint64_t parse_raw(const FormatOptions& o, std::string_view raw) {
  auto p = make_parser(o);
  uint64_t bytes = 0;
  auto emit = [&](const Record& r) { bytes += r.text.size() + r.fields_json.size(); };
  for (size_t i = 0; i < raw.size(); i += Decompressor::kPieceBytes)
    p->feed(raw.substr(i, Decompressor::kPieceBytes), emit);
  p->finish(emit);
  return p->records() + (bytes == 0);
}

uint64_t parse_gz(const FormatOptions& o, std::string_view gz) {
  auto p = make_parser(o);
  Decompressor d(Compression::kAuto);
  auto emit = [](const Record&) {};
  auto sink = [&](std::string_view s) { p->feed(s, emit); };
  for (size_t i = 0; i < gz.size(); i += kChunk) d.feed(gz.substr(i, kChunk), sink);
  d.finish(sink);
  p->finish(emit);
  return p->records();
}

}  // namespace

int main(int argc, char** argv) {
  size_t target = (argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 200) << 20;
  int reps = argc > 2 ? std::atoi(argv[2]) : 3;

  size_t ct_records = 0, vpc_rows = 0;
  std::string ct = make_cloudtrail(target, ct_records);
  std::printf("cloudtrail: %.1f MiB, %zu records, %.0f bytes/record\n", mib(ct.size()), ct_records,
              static_cast<double>(ct.size()) / static_cast<double>(ct_records));
  std::string ct_gz = gzip_zlib(ct, 6);
  std::printf("cloudtrail.json.gz (zlib level 6): %.1f MiB (ratio %.1f)\n", mib(ct_gz.size()),
              static_cast<double>(ct.size()) / static_cast<double>(ct_gz.size()));
  std::fflush(stdout);

  double s_isal = best(reps, [&] {
    if (decompress_isal(ct_gz) != ct.size()) throw std::runtime_error("isal size");
  });
  report("gzip inflate, ISA-L (Decompressor)", ct.size(), s_isal);
  double s_zlib = best(reps, [&] {
    if (decompress_zlib(ct_gz) != ct.size()) throw std::runtime_error("zlib size");
  });
  report("gzip inflate, zlib inflate()", ct.size(), s_zlib);

  FormatOptions o;
  o.format = Format::kCloudTrail;
  double s = best(reps, [&] {
    if (parse_raw(o, ct) != ct_records) throw std::runtime_error("records");
  });
  report("cloudtrail parser (no indexed fields)", ct.size(), s);
  o.indexed_fields = {"eventName", "eventSource", "awsRegion", "userIdentity.type"};
  s = best(reps, [&] { parse_raw(o, ct); });
  report("cloudtrail parser (4 indexed fields)", ct.size(), s);
  s = best(reps, [&] {
    if (parse_gz(o, ct_gz) != ct_records) throw std::runtime_error("records");
  });
  report("cloudtrail .json.gz -> records (end to end)", ct.size(), s);

  std::string vpc = make_vpcflow(target, vpc_rows);
  std::string vpc_gz = gzip_zlib(vpc, 6);
  std::printf("vpcflow: %.1f MiB, %zu rows; .log.gz %.1f MiB\n", mib(vpc.size()), vpc_rows,
              mib(vpc_gz.size()));
  FormatOptions v;
  v.format = Format::kVpcFlow;
  s = best(reps, [&] {
    if (parse_raw(v, vpc) != vpc_rows) throw std::runtime_error("rows");
  });
  report("vpcflow parser (raw)", vpc.size(), s);
  v.vpc_emit_json = true;
  s = best(reps, [&] { parse_raw(v, vpc); });
  report("vpcflow parser (json)", vpc.size(), s);
  v.vpc_emit_json = false;
  s = best(reps, [&] { parse_gz(v, vpc_gz); });
  report("vpcflow .log.gz -> records raw (end to end)", vpc.size(), s);
  return 0;
}
