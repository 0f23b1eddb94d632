// Which end of a pair dials, and when (cluster/coordination/dial_order.hpp), with a hand-moved
// clock.
#include <catch2/catch.hpp>

#include "cluster/coordination/dial_order.hpp"

using namespace ordermesh::cluster::coordination;
using namespace std::chrono_literals;

namespace {
const auto t0 = dial_clock::time_point{} + 1000s;
constexpr auto grace = 1500ms;
}  // namespace

TEST_CASE("the lower id dials at once, every time", "[dial_order]") {
  dial_wait w;
  CHECK(should_dial("n1", "n2", 7, w, t0, grace));
  dial_failed("n1", "n2", w, t0);
  CHECK(should_dial("n1", "n2", 7, w, t0 + 1ms, grace));
  CHECK_FALSE(w.since);  // the lower id never waits
}

TEST_CASE("the higher id dials only after a grace without the lower id's dial", "[dial_order]") {
  dial_wait w;
  CHECK_FALSE(should_dial("n2", "n1", 7, w, t0, grace));
  CHECK_FALSE(should_dial("n2", "n1", 7, w, t0 + 1499ms, grace));
  CHECK(should_dial("n2", "n1", 7, w, t0 + 1500ms, grace));
}

TEST_CASE("a failed dial of the higher id waits a whole grace again", "[dial_order]") {
  // The lower id is down: the higher id dials it once per grace, not on every round, so the
  // lower id's restart rarely meets a dial of the higher id's.
  dial_wait w;
  REQUIRE_FALSE(should_dial("n3", "n1", 7, w, t0, grace));
  REQUIRE(should_dial("n3", "n1", 7, w, t0 + 2s, grace));
  dial_failed("n3", "n1", w, t0 + 2s);
  CHECK_FALSE(should_dial("n3", "n1", 7, w, t0 + 2500ms, grace));
  CHECK_FALSE(should_dial("n3", "n1", 7, w, t0 + 3499ms, grace));
  CHECK(should_dial("n3", "n1", 7, w, t0 + 3500ms, grace));
}

TEST_CASE("a new life of the lower id restarts the higher id's wait", "[dial_order]") {
  // n1 restarts (a new incarnation) long after n3's grace ran out: n1 dials as it comes up, so
  // n3 must not dial at the same moment.
  dial_wait w;
  REQUIRE_FALSE(should_dial("n3", "n1", 7, w, t0, grace));
  REQUIRE(should_dial("n3", "n1", 7, w, t0 + 10s, grace));
  CHECK_FALSE(should_dial("n3", "n1", 8, w, t0 + 10s + 1ms, grace));
  CHECK_FALSE(should_dial("n3", "n1", 8, w, t0 + 11s, grace));
  CHECK(should_dial("n3", "n1", 8, w, t0 + 11501ms, grace));
}

TEST_CASE("a made or lost connection starts the next wait afresh", "[dial_order]") {
  dial_wait w;
  REQUIRE_FALSE(should_dial("n2", "n1", 7, w, t0, grace));
  reset_dial_wait(w);
  CHECK_FALSE(should_dial("n2", "n1", 7, w, t0 + 5s, grace));  // the wait begins now
  CHECK(should_dial("n2", "n1", 7, w, t0 + 6500ms, grace));
}
