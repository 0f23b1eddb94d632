// What only the in-memory side has: the local coordinator of a node without etcd, and the pure
// initial placement. The contract cases run against every implementation in contract_test.cpp.
#include <catch2/catch.hpp>

#include <chrono>

#include "cluster/coordination/memory_store.hpp"

using namespace ordermesh::cluster::coordination;
using namespace std::chrono_literals;

namespace {

member_info info(const std::string& id) {
  return {id, "127.0.0.1:75" + id.substr(1), "127.0.0.1:74" + id.substr(1)};
}

cluster_config config(uint16_t shards, uint16_t rf = 1) {
  return {"c1", shards, rf, 1};
}

}  // namespace

TEST_CASE("coordination: the local coordinator is one member that controls everything") {
  auto local = make_local_coordination();
  CHECK(local->kind() == "local");
  CHECK(local->campaign().err().code == errc::not_joined);
  REQUIRE(local->join(info("n1"), 3s));
  CHECK(local->campaign().value().node_id == "n1");
  REQUIRE(local->bootstrap(config(64), initial_assignments({"n1"}, config(64))).value());
  auto st = local->read().value();
  REQUIRE(st.shards.size() == 64);
  for (const auto& s : st.shards) {
    CHECK(s.primary == "n1");
    CHECK(s.epoch == 1);
  }
}

TEST_CASE("coordination: initial assignments spread primaries and replicas round robin") {
  auto a = initial_assignments({"a", "b", "c"}, config(6, 3));
  REQUIRE(a.size() == 6);
  CHECK(a[0].primary == "a");
  CHECK(a[1].primary == "b");
  CHECK(a[5].primary == "c");
  CHECK(a[4].replicas == std::vector<std::string>{"b", "c", "a"});
  CHECK(a[4].isr == a[4].replicas);
  auto single = initial_assignments({"a", "b"}, config(2, 1));
  CHECK(single[1].replicas == std::vector<std::string>{"b"});
  CHECK(initial_assignments({}, config(4)).empty());
}
