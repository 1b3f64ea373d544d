#pragma once
// The transform interface: a pure function of batches (no I/O), run on the I/O loop's threads
// by the runtime, one batch at a time per transform. The runtime passes acknowledgements
// through: every output batch carries a share of its input's acknowledgement, and an event a
// transform drops counts as delivered for its source.
#include <memory>
#include <string>
#include <vector>

#include "agent/pipeline/event.h"

namespace logship {

class Transform {
 public:
  virtual ~Transform() = default;
  /// Output names: {""} for the one output of most transforms; `route`: its routes and
  /// "_unmatched" (inputs `<id>.<name>`).
  virtual std::vector<std::string> outputs() const { return {""}; }
  /// Processes `in`. `out` has one slot per output; a slot left null (or an empty batch) sends
  /// nothing. Forwarding `in` itself when nothing changes costs no copy.
  virtual void apply(const BatchPtr& in, std::vector<BatchPtr>& out) = 0;
};

}  // namespace logship
