#pragma once
// The `cri` and `docker` codecs of the `file` source: container runtime log records with
// partial-line reassembly.
//   cri:    `<RFC 3339 time> <stdout|stderr> <P|F>[:tags] <message>`; consecutive P records of a
//           stream are joined with the stream's next F record.
//   docker: json-file `{"log":"text\n","stream":"stdout","time":"..."}`; a `log` without the
//           final "\n" continues in the stream's next record; the final "\n" is stripped.
// An event's time is its first record's; its text is the reassembled message, at most
// max_line_bytes (longer ones are cut, the parts flagged Event::kTruncated). Reassembly is per
// stream (stdout and stderr records may interleave). Multiline, when configured, runs per stream
// on the reassembled messages. Malformed records are emitted raw with the read time and counted
// (errors_total{stage="decode",error="cri_malformed"|"docker_malformed"}).
#include <cstdint>
#include <memory>
#include <string_view>

#include "plugins/sources/file/decoder.h"

namespace logship::decode {

/// One parsed container record; `message` points into the line (cri) or the thread's JSON
/// parser (docker, valid until the next parse on this thread).
struct ContainerRecord {
  int64_t time_ns = 0;
  int stream = 0;        ///< 0 = stdout, 1 = stderr
  bool partial = false;  ///< more of this message follows in the stream's next record
  std::string_view message;
};

/// Parses a CRI record; on failure `why` says what is wrong.
bool parse_cri(std::string_view line, ContainerRecord& r, const char*& why);
/// Parses a docker json-file record; on failure `why` says what is wrong.
bool parse_docker(std::string_view line, ContainerRecord& r, const char*& why);

std::unique_ptr<LineDecoder> make_container_decoder(const FileDecodeConfig& cfg,
                                                    ComponentMetrics& metrics);

}  // namespace logship::decode
