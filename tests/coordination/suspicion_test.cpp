// When a member suspects another (cluster/coordination/suspicion.hpp), with a hand-moved clock.
#include <catch2/catch.hpp>

#include "cluster/coordination/suspicion.hpp"

using namespace ordermesh::cluster::coordination;
using namespace std::chrono_literals;

namespace {
const auto t0 = suspicion_clock::time_point{} + 1000s;
constexpr auto after = 1000ms;
}  // namespace

TEST_CASE("a connected peer is suspected only once silent for suspect_after", "[suspicion]") {
  peer_signals p;
  p.connected = true;
  CHECK_FALSE(is_suspected(p, t0, after));
  p.silent_since = t0;
  CHECK_FALSE(is_suspected(p, t0 + 999ms, after));
  CHECK(is_suspected(p, t0 + 1000ms, after));
  p.refused_since = t0;  // stale: a live connection outweighs an old refusal
  p.silent_since.reset();
  CHECK_FALSE(is_suspected(p, t0 + 5s, after));
}

TEST_CASE("a lost connection is suspected at once when the reconnect is refused", "[suspicion]") {
  peer_signals p;
  p.down_since = t0;
  CHECK_FALSE(is_suspected(p, t0 + 10ms, after));
  REQUIRE(is_refusal(p, t0 + 1ms, t0 + 3ms));
  p.refused_since = t0 + 3ms;
  CHECK(is_suspected(p, t0 + 3ms, after));
}

TEST_CASE("a slow connect failure is no refusal: the peer waits out suspect_after", "[suspicion]") {
  peer_signals p;
  p.down_since = t0;
  CHECK_FALSE(is_refusal(p, t0, t0 + refusal_window));
  CHECK_FALSE(is_refusal(p, t0, t0 + 5s));
  CHECK_FALSE(is_suspected(p, t0 + 999ms, after));
  CHECK(is_suspected(p, t0 + 1000ms, after));
}

TEST_CASE("a peer never connected is not suspected by a refusal", "[suspicion]") {
  peer_signals p;  // still starting: nothing listens yet
  CHECK_FALSE(is_refusal(p, t0, t0 + 1ms));
  p.refused_since = t0;  // even if recorded, it needs a lost connection
  CHECK_FALSE(is_suspected(p, t0 + 10s, after));
  p.connected = true;
  CHECK_FALSE(is_refusal(p, t0, t0 + 1ms));  // connected: a failed extra attempt says nothing
}

TEST_CASE("suspect_after 0 turns suspicion off", "[suspicion]") {
  peer_signals p;
  p.down_since = t0;
  p.refused_since = t0;
  CHECK_FALSE(is_suspected(p, t0 + 1h, 0ms));
}
