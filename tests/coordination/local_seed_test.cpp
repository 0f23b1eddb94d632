// The local coordinator's seed: which disks a node without etcd may serve from, and at which
// epochs (cluster/coordination/local_seed.hpp), plus the seeded store it starts from.
#include <catch2/catch.hpp>

#include "cluster/coordination/local_seed.hpp"
#include "cluster/coordination/memory_store.hpp"

using namespace ordermesh::cluster::coordination;
using namespace std::chrono_literals;

namespace {

disk_facts fresh(size_t shards) {
  disk_facts f;
  f.owned_epochs.assign(shards, 0);
  return f;
}

disk_facts lone_node(std::vector<uint64_t> epochs) {
  disk_facts f;
  f.cluster_id = "c0ffee";
  f.store_kind = "local";
  f.owned_epochs = std::move(epochs);
  return f;
}

bool mentions(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

}  // namespace

TEST_CASE("local seed: a fresh disk gets a new cluster, every shard at epoch 1") {
  auto seed = seed_from_disk(fresh(8), "n1", "fresh-id");
  REQUIRE(seed);
  CHECK(seed.value().new_cluster);
  CHECK(seed.value().config.cluster_id == "fresh-id");
  CHECK(seed.value().config.shard_count == 8);
  CHECK(seed.value().config.replication_factor == 1);
  REQUIRE(seed.value().shards.size() == 8);
  for (size_t i = 0; i < 8; ++i) {
    const auto& a = seed.value().shards[i];
    CHECK(a.shard == i);
    CHECK(a.epoch == 1);
    CHECK(a.primary == "n1");
    CHECK(a.replicas == std::vector<std::string>{"n1"});
    CHECK(a.isr == std::vector<std::string>{"n1"});
    CHECK(a.target.empty());
  }
}

TEST_CASE("local seed: a lone node's disk keeps its cluster id and every shard's epoch") {
  auto seed = seed_from_disk(lone_node({3, 1, 7, 2}), "n1", "unused");
  REQUIRE(seed);
  CHECK_FALSE(seed.value().new_cluster);
  CHECK(seed.value().config.cluster_id == "c0ffee");
  std::vector<uint64_t> epochs;
  for (const auto& a : seed.value().shards)
    epochs.push_back(a.epoch);
  CHECK(epochs == std::vector<uint64_t>{3, 1, 7, 2});
}

TEST_CASE("local seed: a disk of the old --seeds mode that owns every shard is adopted") {
  auto f = fresh(4);
  f.has_seeds_view = true;
  f.owned_epochs = {5, 5, 6, 5};
  auto seed = seed_from_disk(f, "n1", "new-id");
  REQUIRE(seed);
  CHECK(seed.value().new_cluster);
  CHECK(seed.value().shards[2].epoch == 6);
}

TEST_CASE("local seed: a disk of an etcd cluster is refused, naming --etcd") {
  auto f = fresh(4);
  f.cluster_id = "abc";  // an etcd member's disk has a cluster id and no store kind
  f.owned_epochs = {2, 2, 2, 2};
  auto seed = seed_from_disk(f, "n1", "x");
  REQUIRE_FALSE(seed);
  CHECK(seed.err().code == errc::invalid);
  CHECK(mentions(seed.err().message, "--etcd"));
  CHECK(mentions(seed.err().message, "abc"));
  f.store_kind = "etcd";
  CHECK_FALSE(seed_from_disk(f, "n1", "x"));
}

TEST_CASE("local seed: a disk that owns only some shards is refused") {
  auto f = fresh(4);
  f.has_seeds_view = true;
  f.owned_epochs = {2, 0, 3, 0};
  auto seed = seed_from_disk(f, "n1", "x");
  REQUIRE_FALSE(seed);
  CHECK(mentions(seed.err().message, "owns 2 of 4 shards"));
  // The same without the old view (a lone node's disk someone tampered with).
  auto lone = lone_node({1, 0, 1, 1});
  CHECK_FALSE(seed_from_disk(lone, "n1", "x"));
}

TEST_CASE(
    "local seed: a --seeds node that owns nothing, or a lone node that lost all, is refused") {
  auto f = fresh(4);
  f.has_seeds_view = true;
  auto seed = seed_from_disk(f, "n1", "x");
  REQUIRE_FALSE(seed);
  CHECK(mentions(seed.err().message, "--seeds"));
  CHECK_FALSE(seed_from_disk(lone_node({0, 0, 0, 0}), "n1", "x"));
}

TEST_CASE("local seed: no shards is refused") {
  CHECK_FALSE(seed_from_disk(disk_facts{}, "n1", "x"));
}

TEST_CASE("local seed: the seeded store holds the map before the node joins, and it leads all") {
  auto seed = seed_from_disk(lone_node({4, 4, 9}), "n1", "x").value();
  auto local = make_local_coordination(seed.config, seed.shards);
  REQUIRE(local);
  REQUIRE(local->join(member_info{"n1", "127.0.0.1:1", "127.0.0.1:2", false}, 3s));
  auto st = local->read().value();
  REQUIRE(st.config);
  CHECK(st.config->cluster_id == "c0ffee");
  REQUIRE(st.shards.size() == 3);
  CHECK(st.shards[2].epoch == 9);
  CHECK(st.shards[2].primary == "n1");
  CHECK(st.shards[0].mod_revision > 0);
  // Bootstrapped already: a second bootstrap changes nothing.
  CHECK_FALSE(local->bootstrap(seed.config, seed.shards).value());
  // A seed whose shards do not fit its config gives no store.
  auto bad = seed.config;
  bad.shard_count = 5;
  CHECK_FALSE(make_local_coordination(bad, seed.shards));
}
