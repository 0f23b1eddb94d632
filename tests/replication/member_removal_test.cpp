// A member that dies for good (cluster/replication/member_removal.hpp and its use in
// replica_moves.hpp): the operator's check, the timeout's records, and the controller's rounds
// that replace a removed node's replicas, driven as pure functions over the coordination state.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "cluster/replication/failover.hpp"
#include "cluster/replication/member_removal.hpp"
#include "cluster/replication/replica_moves.hpp"

using namespace ordermesh::cluster::replication;
using ordermesh::cluster::coordination::cluster_state;
using ordermesh::cluster::coordination::departure_kind;
using ordermesh::cluster::coordination::departure_record;
using namespace std::chrono_literals;

namespace {

int64_t disk_of(const std::string& id) {
  return 100 + (id[0] - 'a');
}

/// `shards` shards over `members` as the controller creates them (replication factor 3,
/// min_insync 2), every ISR entry naming its member's disk (100 + letter).
cluster_state cluster(const std::vector<std::string>& members, uint16_t shards) {
  cluster_state s;
  s.config = {"c", shards, 3, 2};
  for (const auto& m : members)
    s.members.push_back({m, "", "", false, disk_of(m), disk_of(m)});
  s.shards = ordermesh::cluster::coordination::initial_assignments(members, *s.config);
  for (auto& a : s.shards) {
    for (const auto& r : a.isr)
      a.isr_disks.push_back(disk_of(r));
    a.mod_revision = 1;
  }
  return s;
}

bool contains(const std::vector<std::string>& v, const std::string& x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

/// `id` dies: its member key goes, each primary drops it from its ISR (it stops acking; a
/// primary never shrinks below min_insync), and the shards it led fail over.
void dies(cluster_state& s, const std::string& id) {
  s.members.erase(std::remove_if(s.members.begin(), s.members.end(),
                                 [&](const auto& m) { return m.node_id == id; }),
                  s.members.end());
  for (uint16_t i = 0; i < s.shards.size(); ++i) {
    auto& a = s.shards[i];
    if (a.primary == id) {
      auto d = choose_failover(s, i);
      REQUIRE(d.outcome == failover_outcome::promote);
      a = d.next;
      continue;
    }
    auto it = std::find(a.isr.begin(), a.isr.end(), id);
    if (it != a.isr.end() && a.isr.size() > s.config->min_insync) {
      a.isr_disks.erase(a.isr_disks.begin() + (it - a.isr.begin()));
      a.isr.erase(it);
    }
  }
}

void removed(cluster_state& s, const std::string& id, const std::string& by = "operator") {
  s.removed.push_back(departure_record{id, 1000, by, 5});
}

struct walk_result {
  size_t rounds = 0, adds = 0, drops = 0, most_catching_up = 0;
};

/// The controller's rounds (plan_replica_writes at `max_moves`), and the primaries bringing
/// each added replica into the ISR one round later. After every write: the ISR never below
/// min_insync, only the primary adds to an ISR, a removed node is never added anywhere.
walk_result walk(cluster_state& s, size_t max_moves) {
  walk_result w;
  for (; w.rounds < 400; ++w.rounds) {
    // The primaries' side: replicas added last round have caught up and enter the ISR.
    for (auto& a : s.shards)
      for (const auto& r : a.replicas)
        if (!contains(a.isr, r) && std::any_of(s.members.begin(), s.members.end(),
                                               [&](const auto& m) { return m.node_id == r; })) {
          a.isr.push_back(r);
          a.isr_disks.push_back(disk_of(r));
        }
    auto want = desired_replicas(s);
    auto steps = plan_replica_writes(s, want, {}, max_moves, nullptr);
    if (steps.empty())
      break;
    for (const auto& step : steps) {
      auto& a = s.shards[step.shard];
      REQUIRE(step.next.isr.size() >= s.config->min_insync);
      REQUIRE(step.next.isr.size() == step.next.isr_disks.size());
      for (const auto& r : step.next.isr)  // nobody joins an ISR by the controller's hand
        REQUIRE(contains(a.isr, r));
      for (const auto& r : s.removed)
        REQUIRE((!contains(step.next.replicas, r.node_id) || contains(a.replicas, r.node_id)));
      REQUIRE(contains(step.next.isr, step.next.primary));
      w.adds += step.what == replica_step_kind::add_replica;
      w.drops += step.what == replica_step_kind::drop_replica;
      a = step.next;
      a.mod_revision += 1;
    }
    size_t catching_up = 0;  // shards with a live replica outside the ISR: a copy under way
    for (const auto& a : s.shards)
      catching_up += std::any_of(a.replicas.begin(), a.replicas.end(), [&](const auto& r) {
        return !contains(a.isr, r) && std::any_of(s.members.begin(), s.members.end(),
                                                  [&](const auto& m) { return m.node_id == r; });
      });
    w.most_catching_up = std::max(w.most_catching_up, catching_up);
  }
  return w;
}

}  // namespace

TEST_CASE("remove member: refused for a live member - an unknown id - too few live members") {
  auto s = cluster({"a", "b", "c", "d"}, 8);
  CHECK(check_removal(s, "d").refusal == removal_refusal::live_member);
  CHECK_FALSE(check_removal(s, "d").reason.empty());
  dies(s, "d");
  auto ok = check_removal(s, "d");
  CHECK(ok.refusal == removal_refusal::none);
  CHECK_FALSE(ok.already);
  CHECK(check_removal(s, "zz").refusal == removal_refusal::unknown);
  removed(s, "d");
  CHECK(check_removal(s, "d").already);  // asked twice: under way already, nothing more
  // Three nodes at replication factor 3: removing one would leave two to hold three copies.
  auto t = cluster({"a", "b", "c"}, 4);
  dies(t, "c");
  CHECK(check_removal(t, "c").refusal == removal_refusal::too_few_members);
  // A leaving member does not count as one that can hold the replacements.
  auto u = cluster({"a", "b", "c", "d"}, 4);
  dies(u, "d");
  u.members[0].leaving = true;
  CHECK(check_removal(u, "d").refusal == removal_refusal::too_few_members);
  // Nothing to replace from without replication.
  auto v = cluster({"a", "b"}, 4);
  v.config->replication_factor = 1;
  dies(v, "b");
  CHECK(check_removal(v, "b").refusal == removal_refusal::not_replicated);
}

TEST_CASE("remove member: a dead member stays until removed - then its replicas are replaced") {
  auto s = cluster({"a", "b", "c", "d"}, 16);
  dies(s, "d");
  // Not removed: it stays where it is (it comes back and catches up).
  auto want = desired_replicas(s);
  for (uint16_t i = 0; i < s.shards.size(); ++i)
    CHECK(want[i].size() == s.shards[i].replicas.size());
  for (const auto& step : plan_replica_writes(s, want, {}, 2, nullptr))
    CHECK(step.what == replica_step_kind::move_primary);  // leadership spreads; no copy moves
  removed(s, "d");
  // An add asked in the round before and not read back yet counts as a copy under way.
  want = desired_replicas(s);
  auto first = plan_replica_writes(s, want, {}, 2, nullptr);
  REQUIRE(first.size() == 2);
  CHECK(first[0].what == replica_step_kind::add_replica);
  auto in_flight = first[0].shard;
  auto next = plan_replica_writes(s, want, {}, 2, [&](uint16_t i) { return i == in_flight; });
  REQUIRE(next.size() == 1);
  CHECK(next[0].shard != in_flight);
  auto w = walk(s, 2);
  CHECK(w.adds == 12);             // each of the 12 shards d held gets one new replica
  CHECK(w.drops == 12);            // and drops d once the newcomer is in sync
  CHECK(w.most_catching_up <= 2);  // never more than --max-moves copies at once
  for (const auto& a : s.shards) {
    CHECK(a.replicas.size() == 3);
    CHECK_FALSE(contains(a.replicas, "d"));
    CHECK_FALSE(contains(a.isr, "d"));
    CHECK(a.isr.size() == 3);
  }
  // The removal is over: its record goes, so that the id can join again as a new member.
  auto steps = plan_departures(s, 5000, 0ms);
  REQUIRE(steps.size() == 1);
  CHECK(steps[0].what == departure_step_kind::forget);
  CHECK(steps[0].kind == departure_kind::removed);
  CHECK(steps[0].record.node_id == "d");
  CHECK(steps[0].expected_revision == 5);
}

TEST_CASE("remove member: a dead node still in an ISR is dropped only above min_insync") {
  // d died a moment ago: the primary a has not dropped it from the ISR {a, d} yet (min 2).
  auto s = cluster({"a", "b", "c", "d"}, 1);
  auto& a = s.shards[0];
  a.primary = "a";
  a.replicas = {"a", "b", "d"};
  a.isr = {"a", "d"};
  a.isr_disks = {disk_of("a"), disk_of("d")};
  s.members.pop_back();  // d's lease is gone
  removed(s, "d");
  auto want = desired_replicas(s);
  REQUIRE(want.size() == 1);
  CHECK_FALSE(contains(want[0], "d"));
  CHECK(want[0].size() == 3);
  auto add = next_replica_step(s, 0, want[0]);
  REQUIRE(add.what == replica_step_kind::add_replica);
  CHECK(add.next.isr == a.isr);  // the newcomer is outside the ISR until the primary says so
  a = add.next;
  // b is not in sync, nor is the newcomer: dropping d would leave {a} alone, below min_insync.
  auto step = next_replica_step(s, 0, want[0]);
  CHECK(step.what == replica_step_kind::wait_catch_up);
  a.isr.push_back("b");
  a.isr_disks.push_back(disk_of("b"));
  a.isr.push_back(add.node);
  a.isr_disks.push_back(disk_of(add.node));
  auto drop = next_replica_step(s, 0, want[0]);
  REQUIRE(drop.what == replica_step_kind::drop_replica);
  CHECK(drop.node == "d");
  CHECK_FALSE(contains(drop.next.isr, "d"));
  CHECK(drop.next.isr.size() == drop.next.isr_disks.size());
  CHECK(drop.next.isr.size() >= 2);
}

TEST_CASE("dead member timeout: the clock starts in the store - nothing before it runs out") {
  auto s = cluster({"a", "b", "c", "d"}, 8);
  CHECK(plan_departures(s, 1000, 5min).empty());  // nobody is gone
  dies(s, "d");
  auto first = plan_departures(s, 1000, 5min);
  REQUIRE(first.size() == 1);
  CHECK(first[0].what == departure_step_kind::note_absent);
  CHECK(first[0].record.node_id == "d");
  CHECK(first[0].record.since_ms == 1000);
  s.absent.push_back(departure_record{"d", 1000, "", 9});
  // Before the timeout (counted from the record, whichever controller wrote it): nothing.
  CHECK(plan_departures(s, 1000 + 299'999, 5min).empty());
  auto want = desired_replicas(s);  // and its replicas stay where they are
  for (uint16_t i = 0; i < s.shards.size(); ++i)
    CHECK(want[i].size() == s.shards[i].replicas.size());
  // 0s: never.
  CHECK(plan_departures(s, 1000 + 3'600'000, 0ms).empty());
  auto due = plan_departures(s, 1000 + 300'000, 5min);
  REQUIRE(due.size() == 1);
  CHECK(due[0].what == departure_step_kind::remove);
  CHECK(due[0].kind == departure_kind::removed);
  CHECK(due[0].record.by == "timeout");
  // Back before the timeout: the clock stops (its record goes).
  auto back = s;
  back.members.push_back({"d", "", "", false, 200, disk_of("d")});
  auto forget = plan_departures(back, 2000, 5min);
  REQUIRE(forget.size() == 1);
  CHECK(forget[0].what == departure_step_kind::forget);
  CHECK(forget[0].kind == departure_kind::absent);
  CHECK(forget[0].expected_revision == 9);
  // Too few live members to hold its replicas: it stays absent, and waits.
  auto few = cluster({"a", "b", "c"}, 4);
  dies(few, "c");
  few.absent.push_back(departure_record{"c", 0, "", 3});
  CHECK(plan_departures(few, 10'000'000, 5min).empty());
  // Not replicated: no records at all.
  auto single = cluster({"a", "b"}, 2);
  single.config->replication_factor = 1;
  dies(single, "b");
  CHECK(plan_departures(single, 1000, 5min).empty());
}

TEST_CASE("remove member: a node back on its removed disk is never put back into an ISR") {
  auto s = cluster({"a", "b", "c", "d"}, 16);
  dies(s, "d");
  removed(s, "d");
  walk(s, 2);
  s.removed.clear();  // the removal is over and its record gone
  // d comes back with the disk it had (the store let it join only now): it is a new member
  // that shards do not name. It gets replicas like any newcomer: added outside the ISR, in
  // only once its primary has brought it up to date; it never leads on that disk before.
  s.members.push_back({"d", "", "", false, 300, disk_of("d")});
  auto want = desired_replicas(s);
  auto steps = plan_replica_writes(s, want, {}, 2, nullptr);
  REQUIRE_FALSE(steps.empty());
  for (const auto& step : steps) {
    CHECK(step.what == replica_step_kind::add_replica);
    CHECK(step.node == "d");
    CHECK_FALSE(contains(step.next.isr, "d"));
    auto& a = s.shards[step.shard];
    a = step.next;
    // Its primary fails now: d, a replica outside the ISR, is never the one promoted.
    auto lost = s;
    lost.members.erase(std::remove_if(lost.members.begin(), lost.members.end(),
                                      [&](const auto& m) { return m.node_id == a.primary; }),
                       lost.members.end());
    auto d = choose_failover(lost, step.shard);
    REQUIRE(d.outcome == failover_outcome::promote);
    CHECK(d.next.primary != "d");
  }
}

TEST_CASE("replication factor 3 on two members: every member holds a copy - the third is added") {
  // A forced promotion left shard 0 on a alone; b is the only other member: both hold it
  // (before this, nothing moved until a third member joined, and writes stalled below
  // min_insync 2).
  auto s = cluster({"a", "b", "c"}, 1);
  s.members.pop_back();  // c is gone
  auto& a = s.shards[0];
  a.epoch = 7;
  a.replicas = {"a"};
  a.isr = {"a"};
  a.isr_disks = {disk_of("a")};
  auto want = desired_replicas(s);
  CHECK(want[0] == std::vector<std::string>{"a", "b"});
  auto add = next_replica_step(s, 0, want[0]);
  REQUIRE(add.what == replica_step_kind::add_replica);
  CHECK(add.node == "b");
  a = add.next;
  a.isr.push_back("b");
  a.isr_disks.push_back(disk_of("b"));
  CHECK(next_replica_step(s, 0, desired_replicas(s)[0]).what == replica_step_kind::done);
  // A third member joins: the shard reaches the factor.
  s.members.push_back({"e", "", "", false, disk_of("e"), disk_of("e")});
  want = desired_replicas(s);
  CHECK(want[0] == std::vector<std::string>{"a", "b", "e"});
  CHECK(next_replica_step(s, 0, want[0]).what == replica_step_kind::add_replica);
}
