#pragma once
// JSON-lines writer shared by the `file` and `console` sinks: one HEC envelope object per line
// (time, host, source, sourcetype, index, event, fields), written with one write(2) per group of
// batches. A batch is delivered once its bytes are written.
#include <string>

#include "agent/observe/metrics.h"
#include "agent/pipeline/component.h"

namespace logship {

class JsonLinesSink : public Sink {
 public:
  /// `path` empty = standard output.
  JsonLinesSink(std::string path, ComponentContext ctx);
  ~JsonLinesSink() override;
  awaitable<void> run(BatchChannel& in) override;

 private:
  bool open_output();
  /// Writes buf[off..]; advances `off` by what was written, also on failure.
  bool write_all(const std::string& buf, size_t& off);
  std::string path_;
  ComponentContext ctx_;
  ComponentMetrics m_;
  int fd_ = -1;
};

}  // namespace logship
