// VPC Flow Logs text (HEC.md §4): a header line of field names, then space-separated rows.
#include <array>
#include <vector>

#include "plugins/formats/format_internal.h"

namespace logship::formats::detail {

namespace {

/// Field names of flow log versions 2-8 (HEC.md §4.1, §4.2).
constexpr std::array<std::string_view, 36> kKnownFields = {
    "version", "account-id", "interface-id", "srcaddr", "dstaddr", "srcport", "dstport", "protocol",
    "packets", "bytes", "start", "end", "action", "log-status",
    // v3
    "vpc-id", "subnet-id", "instance-id", "tcp-flags", "type", "pkt-srcaddr", "pkt-dstaddr",
    // v4
    "region", "az-id", "sublocation-type", "sublocation-id",
    // v5
    "pkt-src-aws-service", "pkt-dst-aws-service", "flow-direction", "traffic-path",
    // v7 (the rest of the ecs-* family is accepted by prefix)
    "ecs-cluster-arn", "ecs-cluster-name", "ecs-container-instance-arn", "ecs-service-name",
    "ecs-task-arn", "ecs-task-id",
    // v8
    "reject-reason"};

/// Fields whose values are integers (JSON numbers in json mode).
constexpr std::array<std::string_view, 10> kIntegerFields = {
    "version", "srcport", "dstport", "protocol",  "packets",
    "bytes",   "start",   "end",     "tcp-flags", "traffic-path"};

bool known_field(std::string_view f) {
  for (auto k : kKnownFields)
    if (k == f) return true;
  return f.starts_with("ecs-");
}

bool integer_field(std::string_view f) {
  for (auto k : kIntegerFields)
    if (k == f) return true;
  return false;
}

/// [a-z][a-z0-9-]*: what any flow log field name looks like (future fields included).
bool field_name_like(std::string_view f) {
  if (f.empty() || f[0] < 'a' || f[0] > 'z') return false;
  for (char c : f)
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return false;
  return true;
}

/// Splits on runs of spaces/tabs into `out` (cleared first).
void split_fields(std::string_view line, std::vector<std::string_view>& out) {
  out.clear();
  size_t i = 0, n = line.size();
  while (i < n) {
    while (i < n && (line[i] == ' ' || line[i] == '\t')) ++i;
    if (i == n) break;
    size_t s = i;
    while (i < n && line[i] != ' ' && line[i] != '\t') ++i;
    out.push_back(line.substr(s, i - s));
  }
}

/// Digits only (1..18 of them, so int64 seconds*1e9 cannot overflow for sane values).
bool parse_uint(std::string_view s, int64_t& v) {
  if (s.empty() || s.size() > 18) return false;
  v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  return true;
}

class VpcFlowParser final : public LineParser {
 public:
  explicit VpcFlowParser(const FormatOptions& opts)
      : LineParser("vpcflow", opts.max_record_bytes), emit_json_(opts.vpc_emit_json) {}

  void finish(const RecordSink& emit) override {
    LineParser::finish(emit);
    if (!have_header_)
      throw FormatError("vpcflow: no header line (empty object, " + std::to_string(bytes_in_) +
                        " bytes)");
  }

 protected:
  void on_line(std::string_view line, bool, const RecordSink& emit) override {
    split_fields(line, fields_);
    if (fields_.empty()) return;  // whitespace only
    if (!have_header_) {
      read_header();
      return;
    }
    if (fields_.size() != names_.size())
      fail("row has " + std::to_string(fields_.size()) + " fields, the header has " +
           std::to_string(names_.size()));
    Record r;
    int64_t start = 0;
    if (start_col_ >= 0 && parse_uint(fields_[static_cast<size_t>(start_col_)], start)) {
      r.time_ns = start * 1'000'000'000;
      r.time_set = true;
    }
    if (status_col_ >= 0) {
      std::string_view st = fields_[static_cast<size_t>(status_col_)];
      if (st == "NODATA") {
        ++nodata_;
      } else if (st == "SKIPDATA") {
        ++skipdata_;
      }
    }
    if (emit_json_) {
      build_json();
      r.text = json_;
      r.json_value = true;
    } else {
      r.text = line;
    }
    emit_record(emit, r);
  }

 private:
  void read_header() {
    if (!known_field(fields_[0]))
      fail("no header line: the first line starts with \"" + std::string(fields_[0].substr(0, 64)) +
           "\", not a VPC Flow Logs field name");
    for (auto f : fields_) {
      if (!field_name_like(f))
        fail("invalid header: \"" + std::string(f.substr(0, 64)) + "\" is not a field name");
    }
    names_.assign(fields_.begin(), fields_.end());
    integer_.clear();
    keys_.clear();
    for (size_t k = 0; k < names_.size(); ++k) {
      if (names_[k] == "start") start_col_ = static_cast<int>(k);
      if (names_[k] == "log-status") status_col_ = static_cast<int>(k);
      integer_.push_back(integer_field(names_[k]));
      std::string key = k == 0 ? "{" : ",";
      append_json_string(key, names_[k]);
      key.push_back(':');
      keys_.push_back(std::move(key));
    }
    have_header_ = true;
  }

  void build_json() {
    json_.clear();
    for (size_t k = 0; k < fields_.size(); ++k) {
      json_.append(keys_[k]);
      std::string_view v = fields_[k];
      if (v == "-") {
        json_.append("null");
        continue;
      }
      if (integer_[k]) {
        size_t z = 0;
        while (z + 1 < v.size() && v[z] == '0') ++z;  // JSON numbers have no leading zeros
        std::string_view digits = v.substr(z);
        bool ok = digits.size() <= 19;
        for (char c : digits) ok = ok && c >= '0' && c <= '9';
        if (ok) {
          json_.append(digits);
          continue;
        }
      }
      append_json_string(json_, v);
    }
    json_.push_back('}');
  }

  bool emit_json_;
  bool have_header_ = false;
  int start_col_ = -1;
  int status_col_ = -1;
  std::vector<std::string> names_;
  std::vector<std::string> keys_;  // `{"name":` / `,"name":` per column
  std::vector<bool> integer_;
  std::vector<std::string_view> fields_;
  std::string json_;
};

}  // namespace

std::unique_ptr<RecordParser> make_vpcflow_parser(const FormatOptions& opts) {
  return std::make_unique<VpcFlowParser>(opts);
}

}  // namespace logship::formats::detail
