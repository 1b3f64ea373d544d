#pragma once
// One place that pulls in Boost.Asio for coroutine code. g++ 12 needs <utility> before Asio's
// coroutine headers (std::exchange), see DESIGN.md toolchain notes.
#include <utility>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace logship {
namespace asio = boost::asio;
template <class T>
using awaitable = asio::awaitable<T>;
using Executor = asio::any_io_executor;
}  // namespace logship
