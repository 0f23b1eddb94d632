// Failover, forced promotion and replica moves (cluster/replication/failover.hpp,
// replica_moves.hpp), as pure functions over the coordination state.
#include <algorithm>
#include <cstdint>
#include <map>

#include <catch2/catch.hpp>

#include "cluster/replication/failover.hpp"
#include "cluster/replication/replica_balance.hpp"
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
  // Nobody leaves; d, which joined, takes a replica that a (most loaded, smallest id) does not
  // lead: 2, 2, 2, 0 -> 1, 2, 2, 1 (rebalance).
  CHECK(desired_replicas(s) ==
        std::vector<std::vector<std::string>>{{"a", "b", "c"}, {"b", "c", "d"}});
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

// Rebalance (replica_balance.hpp): joins and returns, walked by next_replica_step.
namespace {

using plan = std::vector<std::vector<std::string>>;

/// `shards` shards over `members` as the controller creates them (replication factor 3,
/// min_insync 2), every ISR entry naming its member's disk (100 + index).
cluster_state cluster(std::vector<std::string> members, uint16_t shards) {
  cluster_state s;
  s.config = {"c", shards, 3, 2};
  for (size_t i = 0; i < members.size(); ++i)
    s.members.push_back(
        {members[i], "", "", false, static_cast<int64_t>(100 + i), static_cast<int64_t>(100 + i)});
  s.shards = ordermesh::cluster::coordination::initial_assignments(members, *s.config);
  for (auto& a : s.shards)
    for (const auto& r : a.isr)
      a.isr_disks.push_back(100 + (r[0] - 'a'));
  return s;
}

void join(cluster_state& s, const std::string& id) {
  s.members.push_back({id, "", "", false, 100 + (id[0] - 'a'), 100 + (id[0] - 'a')});
}

bool same_set(std::vector<std::string> x, std::vector<std::string> y) {
  std::sort(x.begin(), x.end());
  std::sort(y.begin(), y.end());
  return x == y;
}

size_t in_motion(const cluster_state& s, const plan& want) {
  size_t n = 0;
  for (size_t i = 0; i < s.shards.size(); ++i)
    n += !same_set(want[i], s.shards[i].replicas) || want[i][0] != s.shards[i].primary;
  return n;
}

std::map<std::string, size_t> count(const cluster_state& s, bool primaries) {
  std::map<std::string, size_t> out;
  for (const auto& m : s.members)
    if (!m.leaving)
      out[m.node_id] = 0;
  for (const auto& a : s.shards) {
    if (primaries) {
      ++out[a.primary];
    } else {
      for (const auto& r : a.replicas)
        ++out[r];
    }
  }
  return out;
}

size_t spread(const std::map<std::string, size_t>& c) {
  size_t lo = SIZE_MAX, hi = 0;
  for (const auto& [id, n] : c) {
    lo = std::min(lo, n);
    hi = std::max(hi, n);
  }
  return hi - lo;
}

struct walked {
  size_t rounds = 0, adds = 0, primary_moves = 0, drops = 0, most_in_motion = 0;
};

/// The controller's rounds: each computes the plan and writes one step per shard; the primary
/// brings every added replica into the ISR one round later (its copy done). After every write:
/// every ISR has min_insync members, the primary among them, the replication factor kept.
walked walk(cluster_state& s, size_t max_rounds = 400, bool bounded = true) {
  walked w;
  for (; w.rounds < max_rounds; ++w.rounds) {
    auto want = desired_replicas(s);
    REQUIRE(want.size() == s.shards.size());
    w.most_in_motion = std::max(w.most_in_motion, in_motion(s, want));
    if (bounded)
      REQUIRE(in_motion(s, want) <= max_shards_in_motion);
    bool any = false;
    for (uint16_t i = 0; i < s.shards.size(); ++i) {
      auto step = next_replica_step(s, i, want[i]);
      auto& a = s.shards[i];
      switch (step.what) {
        case replica_step_kind::add_replica:
          ++w.adds;
          a = step.next;
          break;
        case replica_step_kind::wait_catch_up:  // the primary's expansion lands
          a.isr.push_back(step.node);
          a.isr_disks.push_back(100 + (step.node[0] - 'a'));
          break;
        case replica_step_kind::move_primary:
          ++w.primary_moves;
          CHECK(step.next.epoch == a.epoch + 1);
          CHECK(std::find(a.isr.begin(), a.isr.end(), step.node) != a.isr.end());
          a = step.next;
          break;
        case replica_step_kind::drop_replica:
          ++w.drops;
          a = step.next;
          break;
        case replica_step_kind::done:
          continue;
        case replica_step_kind::blocked:
          FAIL("shard " << i << " blocked: " << step.reason);
      }
      any = true;
      REQUIRE(a.isr.size() >= 2);
      REQUIRE(a.isr.size() == a.isr_disks.size());
      REQUIRE(a.replicas.size() >= 3);
      REQUIRE(std::find(a.isr.begin(), a.isr.end(), a.primary) != a.isr.end());
    }
    if (!any)
      break;
  }
  return w;
}

/// Nothing to do: the plan is what etcd holds, and every shard's step is done.
void check_stable(const cluster_state& s) {
  auto want = desired_replicas(s);
  for (uint16_t i = 0; i < s.shards.size(); ++i) {
    CHECK(same_set(want[i], s.shards[i].replicas));
    CHECK(want[i][0] == s.shards[i].primary);
    CHECK(next_replica_step(s, i, want[i]).what == replica_step_kind::done);
  }
}

}  // namespace

TEST_CASE("rebalance: a balanced cluster desires what it holds - nothing oscillates") {
  check_stable(cluster({"a", "b", "c"}, 64));       // every member holds every shard; 22/21/21 lead
  check_stable(cluster({"a", "b", "c", "d"}, 64));  // 48 replicas, 16 primaries each
  check_stable(cluster({"a", "b", "c", "d", "e"}, 10));  // 6 replicas, 2 primaries each
}

TEST_CASE("rebalance: a fourth member joins three - replicas then primaries - bounded") {
  auto s = cluster({"a", "b", "c"}, 64);
  join(s, "d");
  auto w = walk(s);
  INFO("rounds " << w.rounds << ", adds " << w.adds << ", primary moves " << w.primary_moves);
  CHECK(w.rounds < 400);
  CHECK(w.most_in_motion == max_shards_in_motion);  // bounded, and the bound is used
  CHECK(w.adds == 48);                              // 192 replicas: 48 each, all moved to d
  CHECK(w.drops == 48);
  CHECK(w.primary_moves == 16);  // d's share: 22/21/21 -> 16 each; replica moves move none
  auto replicas = count(s, false), leads = count(s, true);
  CHECK(replicas == std::map<std::string, size_t>{{"a", 48}, {"b", 48}, {"c", 48}, {"d", 48}});
  CHECK(spread(leads) <= 1);
  CHECK(leads["d"] >= 15);
  check_stable(s);
  // Walking again from the balanced state changes nothing.
  auto again = walk(s);
  CHECK(again.adds + again.primary_moves + again.drops == 0);
}

TEST_CASE("rebalance: small clusters end balanced too - max - min at most 1") {
  for (uint16_t shards : {1, 2, 5, 8, 17}) {
    auto s = cluster({"a", "b", "c"}, shards);
    join(s, "d");
    join(s, "e");
    walk(s);
    INFO(shards << " shards");
    CHECK(spread(count(s, false)) <= 1);
    CHECK(spread(count(s, true)) <= 1);
    check_stable(s);
  }
}

TEST_CASE("rebalance: a member back with replicas but no primaries leads its share again") {
  // d holds its 48 replicas (it came back and caught up) but failover gave its shards away.
  auto s = cluster({"a", "b", "c", "d"}, 64);
  for (auto& a : s.shards) {
    if (a.primary != "d")
      continue;
    auto next = std::find_if(a.isr.begin(), a.isr.end(), [](const auto& r) { return r != "d"; });
    a.primary = *next;
    a.epoch += 1;
  }
  CHECK(count(s, true)["d"] == 0);
  auto first = desired_replicas(s);
  CHECK(in_motion(s, first) == max_shards_in_motion);
  for (uint16_t i = 0; i < s.shards.size(); ++i)
    CHECK(same_set(first[i], s.shards[i].replicas));  // only leadership moves
  auto w = walk(s);
  CHECK(w.adds == 0);
  CHECK(w.primary_moves == 16);
  CHECK(count(s, true)["d"] == 16);
  check_stable(s);
}

TEST_CASE("rebalance: leadership goes only to an in-sync replica on its disk") {
  auto s = cluster({"a", "b", "c", "d"}, 4);  // shard 0: a, b, c; a leads
  std::vector<std::string> want{"b", "a", "c"};
  auto step = next_replica_step(s, 0, want);
  REQUIRE(step.what == replica_step_kind::move_primary);
  CHECK(step.node == "b");
  CHECK(step.next.epoch == s.shards[0].epoch + 1);
  CHECK(step.next.isr == std::vector<std::string>{"b", "a", "c"});
  CHECK(step.next.isr_disks == std::vector<int64_t>{101, 100, 102});
  s.members[1].disk = 999;  // b came back on a wiped disk: its entry proves nothing
  CHECK(next_replica_step(s, 0, want).what == replica_step_kind::done);
  s.members[1].disk = 101;
  s.shards[0].isr = {"a", "c"};  // b lags, out of the ISR: the primary brings it back first
  s.shards[0].isr_disks = {100, 102};
  CHECK(next_replica_step(s, 0, want).what == replica_step_kind::wait_catch_up);
}

TEST_CASE("rebalance: dead members - nothing waits on them and nothing moves to them") {
  auto s = cluster({"a", "b", "c"}, 64);
  join(s, "d");
  // c is dead (its key gone): its replicas stay; the shards it holds are not healthy, so only
  // the others can move, and nothing goes to c.
  s.members.erase(s.members.begin() + 2);
  auto want = desired_replicas(s);
  CHECK(in_motion(s, want) <= max_shards_in_motion);
  for (uint16_t i = 0; i < s.shards.size(); ++i) {
    CHECK(std::count(want[i].begin(), want[i].end(), "c") ==
          std::count(s.shards[i].replicas.begin(), s.shards[i].replicas.end(), "c"));
    if (!same_set(want[i], s.shards[i].replicas))
      CHECK(std::find(s.shards[i].replicas.begin(), s.shards[i].replicas.end(), "c") ==
            s.shards[i].replicas.end());
  }
  // With RF 3 every shard holds c: nothing can move at all.
  CHECK(in_motion(s, want) == 0);
}

TEST_CASE(
    "rebalance: after a join a member leaves - its replicas spread and nothing goes below min") {
  auto s = cluster({"a", "b", "c"}, 64);
  join(s, "d");
  walk(s);
  join(s, "e");
  s.members[0].leaving = true;  // a leaves while e joins
  walk(s, 800, false);          // a leave is not held to the bound
  for (const auto& a : s.shards)
    CHECK(std::find(a.replicas.begin(), a.replicas.end(), "a") == a.replicas.end());
  auto replicas = count(s, false);
  replicas.erase("a");
  CHECK(spread(replicas) <= 1);
  check_stable(s);
}

TEST_CASE("rebalance: a shard between its add and its drop keeps the newcomer and its primary") {
  // One shard on a, b, c (a leads); d was added and is being copied (not in the ISR yet).
  auto s = cluster({"a", "b", "c"}, 1);
  join(s, "d");
  s.shards[0].replicas.push_back("d");
  auto want = desired_replicas(s);
  CHECK(want == plan{{"a", "c", "d"}});  // b: in the ISR, loaded as much as the others
  CHECK(next_replica_step(s, 0, want[0]).what == replica_step_kind::wait_catch_up);
  s.shards[0].isr.push_back("d");
  s.shards[0].isr_disks.push_back(103);
  CHECK(desired_replicas(s) == plan{{"a", "c", "d"}});  // the same plan once it is in sync
  auto drop = next_replica_step(s, 0, want[0]);
  REQUIRE(drop.what == replica_step_kind::drop_replica);
  CHECK(drop.node == "b");
  s.shards[0] = drop.next;
  check_stable(s);
}

TEST_CASE("drain: a draining member's leadership moves to in-sync replicas, its replicas stay") {
  auto s = cluster({"a", "b", "c"}, 64);
  auto led_by_b = count(s, true)["b"];
  REQUIRE(led_by_b > 0);
  s.members[1].draining = true;  // b: SIGTERM with --drain
  // Every primary move is a leadership change only (no copy): it is not held to the rebalance
  // bound, so the walk is not bounded.
  auto w = walk(s, 400, /*bounded=*/false);
  CHECK(w.adds == 0);
  CHECK(w.drops == 0);
  CHECK(w.primary_moves == led_by_b);
  auto led = count(s, true);
  CHECK(led["b"] == 0);
  CHECK(spread({{"a", led["a"]}, {"c", led["c"]}}) <= 1);  // the others share b's shards
  for (const auto& a : s.shards)
    CHECK(std::find(a.replicas.begin(), a.replicas.end(), "b") != a.replicas.end());
  check_stable(s);  // nothing moves back to b while it drains
  // Its next life (a restart) is not draining: it takes its share of leadership again.
  s.members[1].draining = false;
  walk(s);
  CHECK(spread(count(s, true)) <= 1);
}

TEST_CASE("drain: failover prefers a member that neither leaves nor drains") {
  auto s = state({"b", "c"}, "a", {"a", "b", "c"}, {"a", "b", "c"});  // a is gone
  s.members[0].draining = true;                                       // b drains
  auto d = choose_failover(s, 0);
  REQUIRE(d.outcome == failover_outcome::promote);
  CHECK(d.next.primary == "c");
}
