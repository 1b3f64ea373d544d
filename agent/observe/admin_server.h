#pragma once
// Admin HTTP endpoint (Boost.Beast): GET /metrics (Prometheus text), /health (200 while the
// process runs), /ready (200 once every component is ready, else 503).
#include <functional>
#include <memory>
#include <string>

#include "agent/core/asio.h"
#include "agent/pipeline/lifecycle.h"

namespace logship {

class AdminServer {
 public:
  /// `address` is host:port (validated by the config); `ready` is polled per /ready request.
  AdminServer(Executor ex, std::string address, std::function<bool()> ready);
  ~AdminServer();
  /// Binds (throws std::runtime_error with the address on failure) and starts accepting.
  void start();
  /// Stops accepting and closes connections.
  void stop();
  /// The bound port (useful with port 0).
  unsigned short port() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace logship
