#pragma once
// The AWS tests use the shared in-process HTTP test server (tests/unit/net/test_http_server.h)
// under their own namespace name.
#include "tests/unit/net/test_http_server.h"

namespace logship::aws_test {
using test::TestHttpServer;
using test::TestLoop;
}  // namespace logship::aws_test
