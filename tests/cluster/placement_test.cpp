// Placement (cluster/coordination/placement.hpp): the controller's moves, from the store's state.
#include <catch2/catch.hpp>

#include <map>

#include "cluster/coordination/placement.hpp"

using namespace ordermesh::cluster::coordination;

namespace {

cluster_state state_of(const std::vector<std::string>& members, uint16_t shards,
                       const std::vector<std::string>& leaders) {
  cluster_state s;
  for (const auto& m : members)
    s.members.push_back({m, "", "", false, 1});
  for (uint16_t i = 0; i < shards; ++i) {
    shard_assignment a;
    a.shard = i;
    a.epoch = 1;
    a.primary = leaders[i % leaders.size()];
    s.shards.push_back(a);
  }
  return s;
}

/// Applies moves as if each completed (flip), and returns shards per member.
std::map<std::string, size_t> after(cluster_state s, const std::vector<planned_move>& plan) {
  for (const auto& m : plan)
    s.shards[m.shard].primary = m.to;
  std::map<std::string, size_t> count;
  for (const auto& a : s.shards)
    ++count[a.primary];
  return count;
}

}  // namespace

TEST_CASE("placement: a new member gets its share, a bounded number of moves at a time") {
  auto s = state_of({"n1", "n2", "n3"}, 12, {"n1", "n2"});
  auto plan = plan_moves(s, 100);
  REQUIRE(plan.size() == 4);
  for (const auto& m : plan)
    CHECK(m.to == "n3");
  auto count = after(s, plan);
  CHECK(count["n1"] == 4);
  CHECK(count["n2"] == 4);
  CHECK(count["n3"] == 4);
  CHECK(plan_moves(s, 2).size() == 2);
}

TEST_CASE("placement: the same state gives the same plan") {
  auto s = state_of({"n3", "n1", "n2"}, 64, {"n1"});
  CHECK(plan_moves(s, 5).size() == 5);
  auto a = plan_moves(s, 5);
  auto b = plan_moves(s, 5);
  REQUIRE(a.size() == b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    CHECK(a[i].shard == b[i].shard);
    CHECK(a[i].to == b[i].to);
  }
}

TEST_CASE("placement: pending moves count against the bound and towards their target") {
  auto s = state_of({"n1", "n2"}, 4, {"n1"});
  s.shards[3].target = "n2";
  s.shards[2].target = "n2";
  CHECK(plan_moves(s, 2).empty());
  auto plan = plan_moves(s, 3);
  CHECK(plan.empty());  // n1 4 - 2 pending = 2, n2 0 + 2 pending = 2: balanced already
}

TEST_CASE("placement: a leaving member's shards go to the others") {
  auto s = state_of({"n1", "n2", "n3"}, 9, {"n1", "n2", "n3"});
  s.members[1].leaving = true;  // n2
  auto plan = plan_moves(s, 100);
  REQUIRE(plan.size() == 3);
  for (const auto& m : plan) {
    CHECK(m.from == "n2");
    CHECK(m.to != "n2");
  }
  auto count = after(s, plan);
  CHECK(count.count("n2") == 0);
  CHECK(count["n1"] + count["n3"] == 9);
  CHECK(std::max(count["n1"], count["n3"]) - std::min(count["n1"], count["n3"]) <= 1);
}

TEST_CASE("placement: a dead primary's shards wait, nothing moves to or from it") {
  auto s = state_of({"n1", "n2"}, 6, {"n1", "n2", "n3"});  // n3 leads 2 shards but is gone
  auto plan = plan_moves(s, 100);
  for (const auto& m : plan) {
    CHECK(m.from != "n3");
    CHECK(m.to != "n3");
  }
  CHECK(plan.empty());  // n1 and n2 lead 2 each: balanced among the living
}

TEST_CASE("placement: balanced or empty clusters plan nothing") {
  CHECK(plan_moves(state_of({"n1", "n2"}, 8, {"n1", "n2"}), 10).empty());
  CHECK(plan_moves(state_of({"n1", "n2", "n3"}, 8, {"n1", "n2", "n3"}), 10).empty());
  cluster_state nobody = state_of({}, 4, {"n1"});
  CHECK(plan_moves(nobody, 10).empty());
  auto s = state_of({"n1", "n2"}, 8, {"n1"});
  CHECK(plan_moves(s, 0).empty());
  auto all_leaving = state_of({"n1"}, 4, {"n1"});
  all_leaving.members[0].leaving = true;
  CHECK(plan_moves(all_leaving, 10).empty());  // nowhere to go
}

TEST_CASE("placement: with_target keeps primary and epoch") {
  auto s = state_of({"n1", "n2"}, 2, {"n1"});
  s.shards[1].epoch = 7;
  auto a = with_target(s, {1, "n1", "n2"});
  CHECK(a.primary == "n1");
  CHECK(a.epoch == 7);
  CHECK(a.target == "n2");
}
