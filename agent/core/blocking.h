#pragma once
// Blocking system calls (fsync, fdatasync) off the I/O loop's threads: the loop has few threads
// (one per core), and a sync that takes a second on a busy disk must not stall every source and
// sink meanwhile. run_blocking(f) runs `f` on a small pool of its own and resumes the caller on
// its executor with f's result.
#include <boost/asio/thread_pool.hpp>

#include "agent/core/asio.h"

namespace logship {

/// The pool for blocking calls (2 threads, created on first use).
asio::thread_pool& blocking_pool();

/// Runs `f()` (returning int) on blocking_pool() and returns its result.
template <class F>
awaitable<int> run_blocking(F f) {
  auto task = [f = std::move(f)]() mutable -> awaitable<int> { co_return f(); };
  int r =
      co_await asio::co_spawn(blocking_pool().get_executor(), std::move(task), asio::use_awaitable);
  co_return r;
}

}  // namespace logship
