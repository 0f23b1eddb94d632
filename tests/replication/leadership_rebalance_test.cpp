// When leadership may move only to balance it (cluster/replication/leadership_rebalance.hpp),
// over coordination states built by hand.
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "cluster/replication/leadership_rebalance.hpp"
#include "cluster/replication/replica_moves.hpp"

using namespace ordermesh::cluster::replication;
using ordermesh::cluster::coordination::cluster_state;
using ordermesh::cluster::coordination::shard_assignment;

namespace {

/// 6 shards of replication factor 3 over a, b, c, every ISR complete; disks 100, 101, 102.
cluster_state three_members() {
  cluster_state s;
  s.config = {"c", 6, 3, 2};
  for (std::string m : {"a", "b", "c"})
    s.members.push_back({m, "", "", false, 100 + (m[0] - 'a'), 100 + (m[0] - 'a')});
  s.shards = ordermesh::cluster::coordination::initial_assignments({"a", "b", "c"}, *s.config);
  for (auto& a : s.shards) {
    for (const auto& r : a.isr)
      a.isr_disks.push_back(100 + (r[0] - 'a'));
    a.mod_revision = 1;
  }
  return s;
}

}  // namespace

TEST_CASE("settled: every ISR complete and nobody suspected", "[leadership]") {
  auto s = three_members();
  CHECK(is_settled(s, {}));
  CHECK_FALSE(is_settled(s, {"b"}));
  s.shards[4].isr.pop_back();  // a replica that has not caught up (again)
  s.shards[4].isr_disks.pop_back();
  CHECK_FALSE(is_settled(s, {}));
}

TEST_CASE("a move of the primary to balance leadership is a rebalance", "[leadership]") {
  // c came back after its shards failed over to a: every shard is led by a, and the planner
  // gives c (and b) their share of primaries back by moving leadership (step 5).
  auto s = three_members();
  for (auto& a : s.shards)
    a.primary = "a";
  auto want = desired_replicas(s);
  int rebalances = 0;
  for (uint16_t shard = 0; shard < s.shards.size(); ++shard) {
    auto step = next_replica_step(s, shard, want[shard]);
    if (step.what != replica_step_kind::move_primary)
      continue;
    CHECK(is_leadership_rebalance(step, s.shards[shard], want[shard]));
    ++rebalances;
  }
  CHECK(rebalances >= 2);
}

TEST_CASE("moving the primary off a replica that is to go is no rebalance", "[leadership]") {
  shard_assignment current;
  current.primary = "a";
  current.replicas = {"a", "b", "c", "d"};
  replica_step step;
  step.what = replica_step_kind::move_primary;
  step.node = "b";
  CHECK_FALSE(is_leadership_rebalance(step, current, {"b", "c", "d"}));  // a leaves
  CHECK(is_leadership_rebalance(step, current, {"b", "a", "c"}));        // a stays
  step.what = replica_step_kind::add_replica;
  CHECK_FALSE(is_leadership_rebalance(step, current, {"b", "a", "c"}));
}
