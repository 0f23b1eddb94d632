// Rebalancing plans: convergence, leaving members, stuck shards, the max_moves bound and
// determinism.
#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "cluster/cluster_view.hpp"
#include "test_util.hpp"

using namespace ordermesh::cluster;
using namespace ordermesh::cluster::test;

namespace {

bool same(const planned_move& a, const planned_move& b) {
  return a.shard == b.shard && a.from == b.from && a.to == b.to;
}
bool same(const std::vector<planned_move>& a, const std::vector<planned_move>& b) {
  return a.size() == b.size() &&
         std::equal(a.begin(), a.end(), b.begin(),
                    [](const auto& x, const auto& y) { return same(x, y); });
}

/// Checks what every plan must satisfy against the view it was made from: each move names the
/// current owner, goes elsewhere, and touches a shard at most once.
void check_well_formed(const cluster_view& v, const std::vector<planned_move>& plan) {
  std::set<uint16_t> seen;
  for (const auto& m : plan) {
    INFO("shard " << m.shard << " " << m.from << " -> " << m.to);
    REQUIRE(m.shard < v.shards.size());
    CHECK(v.shards[m.shard].node_id == m.from);
    CHECK(m.from != m.to);
    CHECK(seen.insert(m.shard).second);
    const member* to = find_member(v, m.to);
    REQUIRE(to != nullptr);
    CHECK(to->state == static_cast<uint8_t>(member_state::up));
  }
}

/// Applies plans of at most `max_moves` until the plan is empty; returns the number of moves.
/// Checks on the way that every move raises the shard's epoch by exactly one and the version
/// by exactly one.
size_t rebalance(cluster_view& v, size_t max_moves) {
  size_t moves = 0;
  for (int round = 0; round < 1000; ++round) {
    const auto plan = plan_moves(v, max_moves);
    check_well_formed(v, plan);
    REQUIRE(plan.size() <= max_moves);
    if (plan.empty())
      return moves;
    for (const auto& m : plan) {
      const auto epoch = v.shards[m.shard].epoch;
      const auto version = v.version;
      REQUIRE(move_shard(v, m.shard, m.to));
      CHECK(v.shards[m.shard].node_id == m.to);
      CHECK(v.shards[m.shard].epoch == epoch + 1);
      CHECK(v.version == version + 1);
      ++moves;
    }
  }
  FAIL("plan_moves did not converge");
  return moves;
}

}  // namespace

TEST_CASE("plan_moves: a single member at founding has nothing to move", "[cluster][plan]") {
  const auto v = found_cluster("c", 64, make_member("n1"));
  CHECK(plan_moves(v, 100).empty());
}

TEST_CASE("plan_moves: 1 -> 2 -> 3 members over 64 shards converges to 22/21/21",
          "[cluster][plan]") {
  auto v = found_cluster("c", 64, make_member("n1"));

  REQUIRE(admit_node(v, "n2"));
  // 32 is the fewest moves that can balance 64/0; more would mean shards bouncing around.
  CHECK(rebalance(v, 4) == 32);
  CHECK(loads(v) == std::map<std::string, size_t>{{"n1", 32}, {"n2", 32}});

  REQUIRE(admit_node(v, "n3"));
  // n1 (most senior) keeps the extra shard: 32 -> 22 and 32 -> 21 is 10 + 11 moves.
  CHECK(rebalance(v, 4) == 21);
  CHECK(loads(v) == std::map<std::string, size_t>{{"n1", 22}, {"n2", 21}, {"n3", 21}});
  CHECK(plan_moves(v, 100).empty());

  // No shard moved twice: each epoch is 1 (never moved) or 2 (moved once) or 3 (n1 -> n2 in the
  // first rebalance, then on to n3), and the epochs add up to the moves made.
  uint64_t extra = 0;
  for (const auto& s : v.shards) {
    CHECK(s.epoch >= 1);
    CHECK(s.epoch <= 3);
    extra += s.epoch - 1;
  }
  CHECK(extra == 32 + 21);
}

TEST_CASE("plan_moves: the rule takes the highest shards first, to the most underloaded",
          "[cluster][plan]") {
  auto v = found_cluster("c", 64, make_member("n1"));
  REQUIRE(admit_node(v, "n2"));
  REQUIRE(admit_node(v, "n3"));
  // n2 and n3 both want 21 and have 0: the tie goes to n2 (senior), then n3 is further behind.
  const auto plan = plan_moves(v, 4);
  REQUIRE(plan.size() == 4);
  const std::vector<planned_move> expected{
      {63, "n1", "n2"}, {62, "n1", "n3"}, {61, "n1", "n2"}, {60, "n1", "n3"}};
  CHECK(same(plan, expected));
}

TEST_CASE("plan_moves: a leaving member gets all its shards planned away", "[cluster][plan]") {
  auto v = found_cluster("c", 64, make_member("n1"));
  REQUIRE(admit_node(v, "n2"));
  REQUIRE(admit_node(v, "n3"));
  rebalance(v, 64);
  REQUIRE(shards_of(v, "n2").size() == 21);
  REQUIRE(set_state(v, "n2", member_state::leaving));

  const auto plan = plan_moves(v, 1000);
  check_well_formed(v, plan);
  REQUIRE(plan.size() == 21);  // n1 and n3 split 64 as 32/32: 10 + 11 more, all from n2
  for (const auto& m : plan)
    CHECK(m.from == "n2");

  // The leaving member goes first even when the plan is cut short and another source exists.
  REQUIRE(move_shard(v, shards_of(v, "n3").front(), "n1"));  // n1 now above its count
  const auto first = plan_moves(v, 3);
  REQUIRE(first.size() == 3);
  const auto n2_shards = shards_of(v, "n2");
  for (size_t i = 0; i < first.size(); ++i) {
    CHECK(first[i].from == "n2");
    CHECK(first[i].shard == n2_shards[n2_shards.size() - 1 - i]);  // highest first
  }

  rebalance(v, 5);
  CHECK(shards_of(v, "n2").empty());
  CHECK(loads(v) == std::map<std::string, size_t>{{"n1", 32}, {"n3", 32}});
  CHECK(remove_member(v, "n2"));
}

TEST_CASE("plan_moves: a leaving last member keeps its shards", "[cluster][plan]") {
  // With no member up there is nowhere to move to; nothing is planned rather than a bad move.
  auto v = found_cluster("c", 8, make_member("n1"));
  REQUIRE(set_state(v, "n1", member_state::leaving));
  CHECK(plan_moves(v, 100).empty());
}

TEST_CASE("plan_moves: shards of an owner not up or leaving never move", "[cluster][plan]") {
  auto v = found_cluster("c", 64, make_member("n1"));
  REQUIRE(admit_node(v, "n2"));
  REQUIRE(admit_node(v, "n3"));
  for (uint16_t s = 0; s < 10; ++s)
    REQUIRE(move_shard(v, s, "n3"));
  const auto stuck = shards_of(v, "n3");

  for (auto state : {member_state::unreachable, member_state::down, member_state::joining}) {
    INFO(to_string(state));
    REQUIRE(set_state(v, "n3", state));
    auto w = v;
    const auto plan = plan_moves(w, 1000);
    // n1 (54) and n2 (0) each want 32; n3's 10 shards stay where they are.
    CHECK(plan.size() == 22);
    for (const auto& m : plan) {
      CHECK(m.from == "n1");
      CHECK(m.to == "n2");
    }
    rebalance(w, 4);
    CHECK(shards_of(w, "n3") == stuck);
    for (auto s : stuck)
      CHECK(w.shards[s].epoch == 2);  // moved to n3 once by hand, never since
  }

  // Everything else unreachable too: nothing can move at all.
  REQUIRE(set_state(v, "n3", member_state::unreachable));
  REQUIRE(set_state(v, "n1", member_state::unreachable));
  CHECK(plan_moves(v, 1000).empty());
}

TEST_CASE("plan_moves: never more than max_moves, and a smaller bound gives a prefix",
          "[cluster][plan]") {
  auto v = found_cluster("c", 64, make_member("n1"));
  REQUIRE(admit_node(v, "n2"));
  REQUIRE(admit_node(v, "n3"));
  REQUIRE(admit_node(v, "n4"));
  const auto full = plan_moves(v, 1000);
  REQUIRE(full.size() == 48);  // n1 keeps 16
  for (size_t max : {size_t{0}, size_t{1}, size_t{5}, size_t{47}, size_t{48}, size_t{49}}) {
    INFO("max_moves " << max);
    const auto plan = plan_moves(v, max);
    CHECK(plan.size() == std::min(max, full.size()));
    // The plan is built greedily, so cutting it short keeps the most urgent moves.
    CHECK(same(plan, std::vector<planned_move>(full.begin(), full.begin() + plan.size())));
  }
}

TEST_CASE("plan_moves: identical views give identical plans", "[cluster][plan]") {
  // Two coordinators (or a coordinator and its successor) must agree without talking, even if
  // their member lists happen to be in different orders.
  auto build = [] {
    auto v = found_cluster("c", 64, make_member("n1"));
    REQUIRE(admit_node(v, "n2"));
    REQUIRE(admit_node(v, "n3"));
    REQUIRE(admit_node(v, "n4"));
    for (uint16_t s = 0; s < 64; s += 3)
      REQUIRE(move_shard(v, s, "n4"));
    REQUIRE(set_state(v, "n4", member_state::leaving));
    return v;
  };
  const auto a = build();
  const auto b = build();
  auto shuffled = build();
  std::reverse(shuffled.members.begin(), shuffled.members.end());

  for (size_t max : {size_t{3}, size_t{100}}) {
    INFO("max_moves " << max);
    const auto pa = plan_moves(a, max);
    REQUIRE_FALSE(pa.empty());
    CHECK(same(pa, plan_moves(b, max)));
    CHECK(same(pa, plan_moves(shuffled, max)));
    CHECK(same(pa, plan_moves(a, max)));  // and the same view asked twice
  }
}
