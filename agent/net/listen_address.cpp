#include "agent/net/listen_address.h"

#include <stdexcept>

namespace logship {

asio::ip::tcp::endpoint parse_listen_address(const std::string& address, const Executor& ex) {
  std::string host, port;
  if (!address.empty() && address.front() == '[') {
    size_t rb = address.find(']');
    if (rb == std::string::npos || rb + 1 >= address.size() || address[rb + 1] != ':')
      throw std::runtime_error("invalid address " + address);
    host = address.substr(1, rb - 1);
    port = address.substr(rb + 2);
  } else {
    size_t c = address.rfind(':');
    if (c == std::string::npos) throw std::runtime_error("invalid address " + address);
    host = address.substr(0, c);
    port = address.substr(c + 1);
  }
  unsigned long p = 0;
  try {
    p = std::stoul(port);
  } catch (const std::exception&) {
    throw std::runtime_error("invalid port in address " + address);
  }
  if (p > 65535) throw std::runtime_error("invalid port in address " + address);
  if (host.empty()) host = "0.0.0.0";
  boost::system::error_code ec;
  auto addr = asio::ip::make_address(host, ec);
  if (!ec) return {addr, static_cast<unsigned short>(p)};
  asio::ip::tcp::resolver resolver(ex);
  auto results = resolver.resolve(host, port, ec);
  if (ec || results.empty()) throw std::runtime_error("cannot resolve " + host + ": " + ec.message());
  return results.begin()->endpoint();
}

}  // namespace logship
