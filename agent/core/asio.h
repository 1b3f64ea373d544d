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

// GCC 12 false positive (GCC bug 109224): at -O2 it inlines Asio's awaitable frame
// `operator new` (thread_info_base recycling allocator) into each coroutine and then reports the
// matching class-specific `operator delete` as mismatched. The pair is correct; the warning is
// silenced for the translation units that define coroutines, which all include this header.
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ == 12
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

namespace logship {
namespace asio = boost::asio;
template <class T>
using awaitable = asio::awaitable<T>;
using Executor = asio::any_io_executor;
}  // namespace logship
