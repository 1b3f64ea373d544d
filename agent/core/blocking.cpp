#include "agent/core/blocking.h"

namespace logship {

asio::thread_pool& blocking_pool() {
  static asio::thread_pool pool(2);
  return pool;
}

}  // namespace logship
