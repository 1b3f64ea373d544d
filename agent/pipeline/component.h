#pragma once
// Component interfaces: sources emit batches into a Fanout; sinks consume a bounded channel.
#include <memory>
#include <string>
#include <vector>

#include "agent/core/asio.h"
#include "agent/crypto/at_rest.h"
#include "agent/observe/metrics.h"
#include "agent/pipeline/channel.h"
#include "agent/pipeline/event.h"
#include "agent/pipeline/lifecycle.h"

namespace logship {

class CheckpointStore;
namespace replay {
struct Context;
}
using BatchChannel = Channel<BatchRef>;

/// What a component gets from the runtime. Constructors must not do I/O (`logship check` builds
/// every component and throws it away); sockets and files are opened in run().
struct ComponentContext {
  std::string id;
  std::string type;
  std::string kind;  ///< "source" | "transform" | "sink"
  std::string data_dir;
  Executor executor;
  Lifecycle* lifecycle = nullptr;  ///< stop requested: sources stop reading
  Lifecycle* abort = nullptr;      ///< drain deadline passed: sinks stop retrying and give up
  CheckpointStore* checkpoints = nullptr;
  /// The top-level `encryption` key ring (null when unset): whatever a component writes that
  /// holds event data (dead letters) is sealed with it. Filled before run() starts.
  std::shared_ptr<const crypto::KeyRing> at_rest;
  /// `logship replay`: set on the one source the run replays (agent/replay/replay.h); that
  /// source reads what the run names, once, and returns.
  std::shared_ptr<replay::Context> replay;
  /// `logship replay`: appended to a sink's explicitly configured dead-letter path, so a replay
  /// never appends to the file the live process writes (the default path is under data_dir,
  /// which is the run's own directory then).
  std::string dead_letter_suffix;
};

/// A source's output: the input channels of every component that lists it in `inputs`.
class Fanout {
 public:
  /// `drop_when_full`: the consumer's buffer has `when_full: drop_newest`; a batch that does not
  /// fit is dropped, counted in `dropped` and reported as kDropped instead of blocking.
  void add(BatchChannel* ch, bool drop_when_full = false, Counter* dropped = nullptr) {
    outs_.push_back({ch, drop_when_full, dropped});
  }
  /// Sends the batch to every consumer, each with its own share of `ack`. Suspends while a
  /// blocking consumer is full (backpressure). Returns false if a channel was closed or aborted
  /// (shutdown); the undelivered shares then report kErrored.
  awaitable<bool> send(EventBatch&& batch, AckHandle ack);
  /// The same for a batch already shared (a transform forwarding its input unchanged).
  awaitable<bool> send(BatchPtr batch, AckHandle ack);
  void register_producer() {
    for (auto& o : outs_) o.ch->add_producer();
  }
  void producer_done() {
    for (auto& o : outs_) o.ch->producer_done();
  }
  size_t size() const { return outs_.size(); }

 private:
  struct Out {
    BatchChannel* ch;
    bool drop;
    Counter* dropped;
  };
  std::vector<Out> outs_;
};

class Source {
 public:
  virtual ~Source() = default;
  /// Reads input and sends batches until ctx.lifecycle->stopping(); then returns promptly
  /// (finish the batch at hand, send it if possible, return).
  virtual awaitable<void> run(Fanout& out) = 0;
  /// True once the source is serving (for /ready); default true.
  virtual bool ready() const { return true; }
};

class Sink {
 public:
  virtual ~Sink() = default;
  /// Consumes `in` until it is closed and drained (or aborted), finishing every batch's ack with
  /// its delivery status.
  virtual awaitable<void> run(BatchChannel& in) = 0;
  virtual bool ready() const { return true; }
  /// Files holding this sink's dead letters, oldest first (`logship dead-letters`).
  virtual std::vector<std::string> dead_letter_files() const { return {}; }
};

}  // namespace logship
