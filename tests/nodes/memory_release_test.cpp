// Tests for nodes/memory_release: when orderd gives freed memory back to the kernel.
#include <catch2/catch.hpp>

#include "nodes/memory_release.hpp"

using ordermesh::node::memory_releaser;
using namespace std::chrono_literals;

TEST_CASE("memory releaser trims only after answers and while nothing is in flight",
          "[memory_release]") {
  memory_releaser r(10s);
  auto t = memory_releaser::clock::now();
  CHECK_FALSE(r.poll(0, 0, t));       // nothing answered yet: a fresh node does not trim
  CHECK_FALSE(r.poll(5, 3, t + 1s));  // busy
  CHECK(r.poll(5, 0, t + 2s));        // quiet after answering
  CHECK_FALSE(r.poll(6, 0, t + 5s));  // at most once per interval
  CHECK(r.poll(6, 0, t + 12s));       // (the last answer: at t + 5s)
  // Nothing new answered: it keeps trimming for a while (memory freed after the last answer,
  // e.g. replies a client reads late)...
  CHECK(r.poll(6, 0, t + 30s));
  CHECK(r.poll(6, 0, t + 65s));
  // ...but not forever: an idle node stops 6 intervals after its last answer.
  CHECK_FALSE(r.poll(6, 0, t + 66s));
  CHECK_FALSE(r.poll(6, 0, t + 600s));
  CHECK(r.poll(7, 0, t + 601s));  // answering again
}
