#pragma once
// Parses a listen address `host:port` / `[v6]:port` into a TCP endpoint (resolving a host name
// when needed). Shared by the HEC receiver and the admin endpoint.
#include <string>

#include <boost/asio/ip/tcp.hpp>

#include "agent/core/asio.h"

namespace logship {

/// Throws std::runtime_error naming the address on a malformed or unresolvable address.
asio::ip::tcp::endpoint parse_listen_address(const std::string& address, const Executor& ex);

}  // namespace logship
