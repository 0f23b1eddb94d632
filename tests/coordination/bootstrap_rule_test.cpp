// When the controller creates a new cluster's shard map (cluster/coordination/bootstrap_rule.hpp).
#include <catch2/catch.hpp>

#include "cluster/coordination/bootstrap_rule.hpp"

using namespace ordermesh::cluster::coordination;
using namespace std::chrono_literals;

TEST_CASE("the full replication factor creates the map at once", "[bootstrap]") {
  CHECK(should_create_map(3, 3, 2, 0ms, 10s));
  CHECK(should_create_map(4, 3, 2, 0ms, 0ms));
  CHECK(should_create_map(1, 1, 1, 0ms, 0ms));
  CHECK_FALSE(should_create_map(0, 1, 1, 1h, 10s));
}

TEST_CASE("fewer members than the factor wait out the grace, then start", "[bootstrap]") {
  CHECK_FALSE(should_create_map(2, 3, 2, 0ms, 10s));
  CHECK_FALSE(should_create_map(2, 3, 2, 9999ms, 10s));
  CHECK(should_create_map(2, 3, 2, 10s, 10s));
}

TEST_CASE("never on fewer than min-insync members, however long", "[bootstrap]") {
  CHECK_FALSE(should_create_map(1, 3, 2, 1h, 10s));
  CHECK(should_create_map(1, 3, 1, 10s, 10s));
  CHECK_FALSE(should_create_map(2, 5, 3, 1h, 10s));
}

TEST_CASE("a grace of zero waits for the full factor", "[bootstrap]") {
  CHECK_FALSE(should_create_map(2, 3, 2, 1h, 0ms));
  CHECK(should_create_map(3, 3, 2, 0ms, 0ms));
}
