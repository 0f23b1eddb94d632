// Membership and shard-map bookkeeping: founding, admission, state changes, coordinator choice.
#include <string>

#include <catch2/catch.hpp>

#include "cluster/cluster_view.hpp"
#include "test_util.hpp"

using namespace ordermesh::cluster;
using namespace ordermesh::cluster::test;

namespace {
uint8_t byte(member_state s) {
  return static_cast<uint8_t>(s);
}
}  // namespace

TEST_CASE("cluster_view: the founder is up, first, and owns every shard", "[cluster][view]") {
  auto founder = make_member("n1");
  founder.state = byte(member_state::down);  // whatever the caller passes is overridden
  founder.joined_seq = 99;
  const auto v = found_cluster("c-1", 64, founder);
  CHECK(v.cluster_id == "c-1");
  CHECK(v.shard_count == 64);
  CHECK(v.version == 1);
  CHECK(v.next_joined_seq == 2);
  REQUIRE(v.members.size() == 1);
  CHECK(v.members[0].node_id == "n1");
  CHECK(v.members[0].cluster_address == "n1:7000");
  CHECK(v.members[0].client_address == "n1:8000");
  CHECK(v.members[0].state == byte(member_state::up));
  CHECK(v.members[0].joined_seq == 1);
  REQUIRE(v.shards.size() == 64);
  for (const auto& s : v.shards) {
    CHECK(s.node_id == "n1");
    CHECK(s.epoch == 1);
  }
  CHECK(shards_of(v, "n1").size() == 64);
  CHECK(coordinator_of(v) == std::optional<std::string>("n1"));
}

TEST_CASE("cluster_view: admit appends a new node with the next joined_seq", "[cluster][view]") {
  auto v = found_cluster("c", 8, make_member("n1"));
  REQUIRE(admit(v, "n2", "h2:1", "h2:2"));
  CHECK(v.version == 2);
  CHECK(v.next_joined_seq == 3);
  const member* m = find_member(v, "n2");
  REQUIRE(m != nullptr);
  CHECK(m->cluster_address == "h2:1");
  CHECK(m->client_address == "h2:2");
  CHECK(m->state == byte(member_state::up));
  CHECK(m->joined_seq == 2);
  CHECK(shards_of(v, "n2").empty());  // admission alone moves nothing

  REQUIRE(admit(v, "n3", "h3:1", "h3:2"));
  CHECK(find_member(v, "n3")->joined_seq == 3);
  CHECK(v.next_joined_seq == 4);
  CHECK(v.version == 3);
}

TEST_CASE("cluster_view: a returning node keeps joined_seq and shards", "[cluster][view]") {
  auto v = found_cluster("c", 8, make_member("n1"));
  REQUIRE(admit_node(v, "n2"));
  REQUIRE(move_shard(v, 3, "n2"));
  REQUIRE(set_state(v, "n2", member_state::down));
  const auto version = v.version;

  SECTION("back with new addresses") {
    REQUIRE(admit(v, "n2", "new:1", "new:2"));
    const member* m = find_member(v, "n2");
    CHECK(m->cluster_address == "new:1");
    CHECK(m->client_address == "new:2");
    CHECK(m->state == byte(member_state::up));
    CHECK(m->joined_seq == 2);
  }
  SECTION("back with the same addresses: the state alone changed") {
    REQUIRE(admit_node(v, "n2"));
    CHECK(find_member(v, "n2")->state == byte(member_state::up));
    CHECK(find_member(v, "n2")->joined_seq == 2);
  }
  CHECK(v.version == version + 1);
  CHECK(v.next_joined_seq == 3);  // no sequence number spent on a returning node
  CHECK(v.members.size() == 2);
  CHECK(shards_of(v, "n2") == std::vector<uint16_t>{3});
}

TEST_CASE("cluster_view: admitting an unchanged up member changes nothing", "[cluster][view]") {
  auto v = found_cluster("c", 8, make_member("n1"));
  REQUIRE(admit_node(v, "n2"));
  const auto version = v.version;
  CHECK_FALSE(admit_node(v, "n2"));
  CHECK_FALSE(admit_node(v, "n1"));
  CHECK(v.version == version);
  CHECK(v.next_joined_seq == 3);
  CHECK(v.members.size() == 2);
}

TEST_CASE("cluster_view: set_state bumps version only on a change", "[cluster][view]") {
  auto v = found_cluster("c", 8, make_member("n1"));
  REQUIRE(admit_node(v, "n2"));
  const auto version = v.version;
  CHECK_FALSE(set_state(v, "n2", member_state::up));
  CHECK_FALSE(set_state(v, "nobody", member_state::down));
  CHECK(v.version == version);
  CHECK(set_state(v, "n2", member_state::leaving));
  CHECK(find_member(v, "n2")->state == byte(member_state::leaving));
  CHECK(v.version == version + 1);
}

TEST_CASE("cluster_view: move_shard gives the shard away under the next epoch", "[cluster][view]") {
  auto v = found_cluster("c", 8, make_member("n1"));
  REQUIRE(admit_node(v, "n2"));
  const auto version = v.version;

  CHECK_FALSE(move_shard(v, 5, "n1"));      // already its owner
  CHECK_FALSE(move_shard(v, 5, "nobody"));  // not a member
  CHECK_FALSE(move_shard(v, 8, "n2"));      // no such shard
  CHECK(v.version == version);
  CHECK(v.shards[5].epoch == 1);

  REQUIRE(move_shard(v, 5, "n2"));
  CHECK(v.shards[5].node_id == "n2");
  CHECK(v.shards[5].epoch == 2);
  CHECK(v.version == version + 1);
  REQUIRE(move_shard(v, 5, "n1"));
  CHECK(v.shards[5].node_id == "n1");
  CHECK(v.shards[5].epoch == 3);  // epochs never go back, even when the owner does
  CHECK(v.shards[4].epoch == 1);
}

TEST_CASE("cluster_view: remove_member only removes a member without shards", "[cluster][view]") {
  auto v = found_cluster("c", 4, make_member("n1"));
  REQUIRE(admit_node(v, "n2"));
  REQUIRE(move_shard(v, 0, "n2"));
  const auto version = v.version;
  CHECK_FALSE(remove_member(v, "n2"));
  CHECK_FALSE(remove_member(v, "nobody"));
  CHECK(v.version == version);
  REQUIRE(move_shard(v, 0, "n1"));
  CHECK(remove_member(v, "n2"));
  CHECK(find_member(v, "n2") == nullptr);
  CHECK(v.members.size() == 1);
  CHECK(v.version == version + 2);

  // A removed member is forgotten: coming back, it is a new member with a new joined_seq.
  REQUIRE(admit_node(v, "n2"));
  CHECK(find_member(v, "n2")->joined_seq == 3);
}

TEST_CASE("cluster_view: find_member finds by id, const and not", "[cluster][view]") {
  auto v = found_cluster("c", 4, make_member("n1"));
  REQUIRE(admit_node(v, "n2"));
  member* m = find_member(v, "n2");
  REQUIRE(m != nullptr);
  m->client_address = "changed";
  const cluster_view& cv = v;
  REQUIRE(find_member(cv, "n2") != nullptr);
  CHECK(find_member(cv, "n2")->client_address == "changed");
  CHECK(find_member(cv, "n3") == nullptr);
  CHECK(find_member(v, "") == nullptr);
}

TEST_CASE("cluster_view: shards_of lists a member's shards ascending", "[cluster][view]") {
  auto v = found_cluster("c", 6, make_member("n1"));
  REQUIRE(admit_node(v, "n2"));
  REQUIRE(move_shard(v, 4, "n2"));
  REQUIRE(move_shard(v, 1, "n2"));
  CHECK(shards_of(v, "n2") == std::vector<uint16_t>{1, 4});
  CHECK(shards_of(v, "n1") == std::vector<uint16_t>{0, 2, 3, 5});
  CHECK(shards_of(v, "nobody").empty());
}

TEST_CASE("cluster_view: to_string names every state", "[cluster][view]") {
  CHECK(to_string(member_state::joining) == "joining");
  CHECK(to_string(member_state::up) == "up");
  CHECK(to_string(member_state::unreachable) == "unreachable");
  CHECK(to_string(member_state::leaving) == "leaving");
  CHECK(to_string(member_state::down) == "down");
  CHECK(to_string(static_cast<member_state>(0)) == "invalid");  // a raw byte off the wire
}

TEST_CASE("cluster_view: the coordinator is the most senior member up", "[cluster][view]") {
  auto v = found_cluster("c", 8, make_member("n1"));
  REQUIRE(admit_node(v, "n2"));
  REQUIRE(admit_node(v, "n3"));
  CHECK(coordinator_of(v) == std::optional<std::string>("n1"));

  // Succession: when the coordinator is not up, the next by joined_seq takes over.
  REQUIRE(set_state(v, "n1", member_state::unreachable));
  CHECK(coordinator_of(v) == std::optional<std::string>("n2"));
  REQUIRE(set_state(v, "n2", member_state::down));
  CHECK(coordinator_of(v) == std::optional<std::string>("n3"));

  // Intended: a returning node keeps its joined_seq, so the old coordinator takes the role back
  // as soon as it is up again. The rule stays a pure function of the view, with no memory of who
  // held the role before, so every node agrees on it without a vote.
  REQUIRE(set_state(v, "n1", member_state::up));
  CHECK(coordinator_of(v) == std::optional<std::string>("n1"));
  REQUIRE(admit(v, "n2", "elsewhere:1", "elsewhere:2"));
  CHECK(coordinator_of(v) == std::optional<std::string>("n1"));
}

TEST_CASE("cluster_view: only an up member coordinates", "[cluster][view]") {
  auto v = found_cluster("c", 8, make_member("n1"));
  REQUIRE(admit_node(v, "n2"));
  REQUIRE(admit_node(v, "n3"));
  for (auto s : {member_state::joining, member_state::unreachable, member_state::leaving,
                 member_state::down}) {
    INFO(to_string(s));
    REQUIRE(set_state(v, "n1", s));
    CHECK(coordinator_of(v) == std::optional<std::string>("n2"));
  }
  REQUIRE(set_state(v, "n2", member_state::down));
  REQUIRE(set_state(v, "n3", member_state::leaving));
  CHECK_FALSE(coordinator_of(v).has_value());
}

TEST_CASE("cluster_view: the coordinator does not depend on member order", "[cluster][view]") {
  auto v = found_cluster("c", 8, make_member("n1"));
  REQUIRE(admit_node(v, "n2"));
  REQUIRE(admit_node(v, "n3"));
  REQUIRE(set_state(v, "n1", member_state::down));
  std::swap(v.members[1], v.members[2]);  // n3 now listed before n2
  CHECK(coordinator_of(v) == std::optional<std::string>("n2"));
}
