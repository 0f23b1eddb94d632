// Failover, forced promotion and replica moves (cluster/replication/failover.hpp,
// replica_moves.hpp), as pure functions over the coordination state.
#include <catch2/catch.hpp>

#include "cluster/replication/failover.hpp"
#include "cluster/replication/replica_moves.hpp"

using namespace ordermesh::cluster::replication;
using ordermesh::cluster::coordination::cluster_state;

namespace {

/// Members with incarnation and disk 10 + index; one shard led by `primary` at epoch 4 with the
/// given ISR, each entry naming its member's disk unless overridden.
cluster_state state(std::vector<std::string> members, std::string primary,
                    std::vector<std::string> replicas, std::vector<std::string> isr) {
  cluster_state s;
  s.config = {"c", 1, 3, 2};
  for (const auto& m : members)  // a is at incarnation 10, b at 11, ...
    s.members.push_back({m, "", "", false, 10 + (m[0] - 'a'), 10 + (m[0] - 'a')});
  coord::shard_assignment a;
  a.epoch = 4;
  a.primary = std::move(primary);
  a.replicas = std::move(replicas);
  a.isr = std::move(isr);
  for (const auto& i : a.isr) {
    int64_t n = 10;
    for (const auto& m : std::vector<std::string>{"a", "b", "c", "d"}) {
      if (m == i)
        a.isr_disks.push_back(n);
      ++n;
    }
  }
  a.mod_revision = 77;
  s.shards.push_back(a);
  return s;
}

}  // namespace

TEST_CASE("failover: nothing to do while the primary is a member on its disk") {
  auto s = state({"a", "b", "c"}, "a", {"a", "b", "c"}, {"a", "b", "c"});
  CHECK(choose_failover(s, 0).outcome == failover_outcome::none);
  CHECK(choose_failover(s, 3).outcome == failover_outcome::invalid);
  s.shards[0].isr_disks.pop_back();
  CHECK(choose_failover(s, 0).outcome == failover_outcome::invalid);
}

TEST_CASE("failover: an ISR member on its disk takes over at the next epoch") {
  auto s = state({"b", "c"}, "a", {"a", "b", "c"}, {"a", "b", "c"});  // a's lease expired
  auto d = choose_failover(s, 0);
  REQUIRE(d.outcome == failover_outcome::promote);
  CHECK(d.next.epoch == 5);
  CHECK(d.next.primary == "b");
  CHECK(d.next.isr == std::vector<std::string>{"b", "c"});
  CHECK(d.next.isr_disks == std::vector<int64_t>{11, 12});
  CHECK(d.next.replicas == std::vector<std::string>{"a", "b", "c"});  // a rejoins as follower
}

TEST_CASE("failover: a wiped primary or ISR member (new disk) no longer counts") {
  // a came back on a wiped disk (99), b too (98), c is as recorded.
  auto s = state({"a", "b", "c"}, "a", {"a", "b", "c"}, {"a", "b", "c"});
  s.members[0].disk = 99;
  s.members[1].disk = 98;
  auto d = choose_failover(s, 0);
  REQUIRE(d.outcome == failover_outcome::promote);
  CHECK(d.next.primary == "c");
  CHECK(d.next.isr == std::vector<std::string>{"c"});  // below min_insync: writes wait
  // A member outside the ISR is never chosen, however alive.
  auto t = state({"b", "c"}, "a", {"a", "b", "c"}, {"a", "b"});
  t.members[0].disk = 99;
  auto none = choose_failover(t, 0);
  CHECK(none.outcome == failover_outcome::unavailable);
  CHECK_FALSE(none.reason.empty());
}

TEST_CASE("failover: a member restarted on its disk (new incarnation) still counts") {
  // Every ISR member died and came back with its disk: a new membership life each, same disks.
  // The shard is served again without force-primary; its primary simply resumes.
  auto s = state({"a", "b", "c"}, "a", {"a", "b", "c"}, {"a", "b", "c"});
  for (auto& m : s.members)
    m.incarnation += 100;
  CHECK(choose_failover(s, 0).outcome == failover_outcome::none);
  // Its primary is still down: another ISR member restarted on its disk takes over.
  auto t = state({"b", "c"}, "a", {"a", "b", "c"}, {"a", "b"});
  t.members[0].incarnation += 100;
  auto d = choose_failover(t, 0);
  REQUIRE(d.outcome == failover_outcome::promote);
  CHECK(d.next.primary == "b");
  CHECK(d.next.isr_disks == std::vector<int64_t>{11});
}

TEST_CASE("failover: a member that is leaving is chosen only if nobody else can") {
  auto s = state({"b", "c"}, "a", {"a", "b", "c"}, {"a", "b", "c"});
  s.members[0].leaving = true;
  CHECK(choose_failover(s, 0).next.primary == "c");
  s.members.pop_back();
  CHECK(choose_failover(s, 0).next.primary == "b");
}

TEST_CASE("force primary: any member - alone in the ISR - at the next epoch") {
  auto s = state({"d"}, "a", {"a", "b"}, {"a", "b"});
  s.members[0].disk = 40;
  CHECK(choose_failover(s, 0).outcome == failover_outcome::unavailable);
  auto d = force_primary(s, 0, "d");
  REQUIRE(d.outcome == failover_outcome::promote);
  CHECK(d.next.epoch == 5);
  CHECK(d.next.primary == "d");
  CHECK(d.next.isr == std::vector<std::string>{"d"});
  CHECK(d.next.isr_disks == std::vector<int64_t>{40});
  CHECK(d.next.replicas == std::vector<std::string>{"a", "b", "d"});
  CHECK(force_primary(s, 0, "zz").outcome == failover_outcome::invalid);
}

TEST_CASE("replica moves: add - catch up - move the primary - drop - never below min_insync") {
  // Replace a (primary) by d: a, b in the ISR, min_insync 2.
  auto s = state({"a", "b", "d"}, "a", {"a", "b"}, {"a", "b"});
  std::vector<std::string> want{"b", "d"};
  auto add = next_replica_step(s, 0, want);
  REQUIRE(add.what == replica_step_kind::add_replica);
  CHECK(add.node == "d");
  CHECK(add.next.epoch == 4);
  CHECK(add.next.isr == s.shards[0].isr);  // only the primary adds to the ISR
  s.shards[0] = add.next;
  auto wait = next_replica_step(s, 0, want);
  CHECK(wait.what == replica_step_kind::wait_catch_up);
  CHECK(wait.node == "d");
  s.shards[0].isr.push_back("d");  // the primary's expansion landed
  s.shards[0].isr_disks.push_back(13);
  auto move = next_replica_step(s, 0, want);
  REQUIRE(move.what == replica_step_kind::move_primary);
  CHECK(move.next.primary == "b");
  CHECK(move.next.epoch == 5);
  CHECK(move.next.isr == std::vector<std::string>{"b", "a", "d"});
  CHECK(move.next.isr_disks == std::vector<int64_t>{11, 10, 13});
  s.shards[0] = move.next;
  auto drop = next_replica_step(s, 0, want);
  REQUIRE(drop.what == replica_step_kind::drop_replica);
  CHECK(drop.node == "a");
  CHECK(drop.next.isr == std::vector<std::string>{"b", "d"});
  CHECK(drop.next.replicas == std::vector<std::string>{"b", "d"});
  s.shards[0] = drop.next;
  CHECK(next_replica_step(s, 0, want).what == replica_step_kind::done);
}

TEST_CASE("replica moves: a drop that would go below min_insync waits - a failed primary blocks") {
  // The ISR is {a, b}; c is a replica that never caught up; drop b (desired a, c).
  auto s = state({"a", "b", "c"}, "a", {"a", "b", "c"}, {"a", "b"});
  auto step = next_replica_step(s, 0, {"a", "c"});
  CHECK(step.what == replica_step_kind::wait_catch_up);  // c first
  auto t = state({"a", "b"}, "a", {"a", "b"}, {"a", "b"});
  auto blocked = next_replica_step(t, 0, {"a"});
  CHECK(blocked.what == replica_step_kind::blocked);  // {a} alone < min_insync 2
  auto dead = state({"b"}, "a", {"a", "b"}, {"a", "b"});
  CHECK(next_replica_step(dead, 0, {"a", "b"}).what == replica_step_kind::blocked);
}

TEST_CASE("desired replicas: a leaving member is replaced by the least loaded - dead ones stay") {
  // Three shards on a, b, c (a leads); d joined: a leaves.
  auto s = state({"a", "b", "c", "d"}, "a", {"a", "b", "c"}, {"a", "b", "c"});
  s.shards.push_back(s.shards[0]);
  s.shards[1].shard = 1;
  s.shards[1].primary = "b";
  CHECK(desired_replicas(s) ==
        std::vector<std::vector<std::string>>{{"a", "b", "c"}, {"b", "a", "c"}});  // nobody leaves
  s.members[0].leaving = true;
  auto want = desired_replicas(s);
  CHECK(want == std::vector<std::vector<std::string>>{{"b", "c", "d"}, {"b", "c", "d"}});
  // With two spares the leaving node's shards spread over both (load counted as it goes).
  s.members.push_back({"e", "", "", false, 14, 14});
  want = desired_replicas(s);
  CHECK(want == std::vector<std::vector<std::string>>{{"b", "c", "d"}, {"b", "c", "e"}});
  // A dead member (its key gone) keeps its place: it comes back and catches up.
  auto t = state({"b", "c", "d"}, "a", {"a", "b", "c"}, {"a", "b", "c"});
  CHECK(desired_replicas(t) == std::vector<std::vector<std::string>>{{"a", "b", "c"}});
  // Too few members for the replication factor: nothing moves.
  auto u = state({"a", "b", "c"}, "a", {"a", "b", "c"}, {"a", "b", "c"});
  u.members[2].leaving = true;
  CHECK(desired_replicas(u) == std::vector<std::vector<std::string>>{{"a", "b", "c"}});
  // The steps towards it: add d, wait, move the primary away from a, drop a.
  auto step = next_replica_step(s, 0, want[0]);
  CHECK(step.what == replica_step_kind::add_replica);
  CHECK(step.node == "d");
}
