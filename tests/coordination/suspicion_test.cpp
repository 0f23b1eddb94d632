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

TEST_CASE("a node is cut off when the members it reaches are no majority of those alive",
          "[suspicion]") {
  // Alone, or nobody suspected: never.
  CHECK_FALSE(is_cut_off(1, 0, 0));
  CHECK_FALSE(is_cut_off(3, 0, 0));
  CHECK_FALSE(is_cut_off(3, 0, 2));
  // Three members: one silent leaves two of three; two silent leave one.
  CHECK_FALSE(is_cut_off(3, 1, 0));
  CHECK(is_cut_off(3, 2, 0));
  // A member seen gone (its reconnect refused) no longer counts: one dead and one silent leave
  // this node alone among the two that may be alive.
  CHECK(is_cut_off(3, 1, 1));
  // Two members: a silent peer may be alive beyond a partition (cut off until its lease
  // expires); a peer seen gone is not (this node goes on alone).
  CHECK(is_cut_off(2, 1, 0));
  CHECK_FALSE(is_cut_off(2, 0, 1));
  // Five members: two silent leave three of five; three silent leave two.
  CHECK_FALSE(is_cut_off(5, 2, 0));
  CHECK(is_cut_off(5, 3, 0));
  // Counts beyond the members (a stale view) do not underflow.
  CHECK(is_cut_off(3, 5, 0));
  CHECK_FALSE(is_cut_off(3, 1, 3));
}
