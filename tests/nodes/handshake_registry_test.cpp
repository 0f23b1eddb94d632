// The cluster port's bookkeeping (nodes/cluster_transport/handshake_registry.hpp), driven by a
// hand-moved clock: the pending cap evicts the oldest, the total cap refuses, the deadline
// closes only pending connections, each once.
#include <catch2/catch.hpp>

#include "nodes/cluster_transport/handshake_registry.hpp"

using ordermesh::cluster_transport::handshake_limits;
using ordermesh::cluster_transport::handshake_registry;
using namespace std::chrono_literals;

namespace {

handshake_limits limits(size_t pending, size_t total, std::chrono::milliseconds deadline) {
  handshake_limits l;
  l.max_pending = pending;
  l.max_total = total;
  l.deadline = deadline;
  return l;
}

}  // namespace

TEST_CASE("handshake registry admits connections up to the pending cap without evicting") {
  handshake_registry r(limits(3, 10, 5000ms));
  handshake_registry::time_point t{};
  for (int fd = 10; fd < 13; ++fd) {
    auto a = r.admit(fd, t);
    REQUIRE(a.id);
    REQUIRE(a.evicted.empty());
  }
  REQUIRE(r.pending() == 3);
  REQUIRE(r.total() == 3);
}

TEST_CASE("handshake registry evicts the oldest pending connection when the pending cap is full") {
  handshake_registry r(limits(2, 10, 5000ms));
  handshake_registry::time_point t{};
  auto a = r.admit(10, t);
  auto b = r.admit(11, t + 1ms);
  auto c = r.admit(12, t + 2ms);
  REQUIRE(c.id);
  REQUIRE(c.evicted == std::vector<int>{10});
  REQUIRE(r.pending() == 2);
  REQUIRE(r.total() == 3);  // the evicted one still holds its fd until it is removed
  auto d = r.admit(13, t + 3ms);
  REQUIRE(d.evicted == std::vector<int>{11});
  r.remove(*a.id);
  r.remove(*b.id);
  REQUIRE(r.total() == 2);
}

TEST_CASE("handshake registry does not count established connections as pending") {
  handshake_registry r(limits(2, 10, 5000ms));
  handshake_registry::time_point t{};
  auto a = r.admit(10, t);
  auto b = r.admit(11, t);
  r.established(*a.id);
  r.established(*b.id);
  REQUIRE(r.pending() == 0);
  auto c = r.admit(12, t);
  auto d = r.admit(13, t);
  REQUIRE(c.evicted.empty());
  REQUIRE(d.evicted.empty());
  // A third pending one evicts a pending one, never an established peer.
  auto e = r.admit(14, t);
  REQUIRE(e.evicted == std::vector<int>{12});
}

TEST_CASE("handshake registry refuses a connection past the total cap") {
  handshake_registry r(limits(2, 3, 5000ms));
  handshake_registry::time_point t{};
  auto a = r.admit(10, t);
  r.established(*a.id);
  auto b = r.admit(11, t);
  auto c = r.admit(12, t);
  REQUIRE(b.id);
  REQUIRE(c.id);
  auto d = r.admit(13, t);
  REQUIRE_FALSE(d.id);
  REQUIRE(d.evicted.empty());  // a refused connection evicts nobody
  REQUIRE(r.total() == 3);
  r.remove(*b.id);
  auto e = r.admit(14, t);
  REQUIRE(e.id);
}

TEST_CASE("handshake registry closes pending connections at the deadline once each") {
  handshake_registry r(limits(8, 10, 5000ms));
  handshake_registry::time_point t{};
  auto a = r.admit(10, t);
  auto b = r.admit(11, t + 1000ms);
  auto c = r.admit(12, t + 2000ms);
  r.established(*b.id);
  REQUIRE(r.expired(t + 4999ms).empty());
  REQUIRE(r.expired(t + 5000ms) == std::vector<int>{10});
  REQUIRE(r.expired(t + 5000ms).empty());                   // never returned twice
  REQUIRE(r.expired(t + 60000ms) == std::vector<int>{12});  // b finished its handshake
  REQUIRE(r.pending() == 0);
  REQUIRE(r.total() == 3);
  r.remove(*a.id);
  r.remove(*c.id);
  r.established(*c.id);  // a late report on a removed connection changes nothing
  REQUIRE(r.total() == 1);
  REQUIRE(r.pending() == 0);
}

TEST_CASE("handshake registry raises zero limits to one") {
  handshake_registry r(limits(0, 0, 5000ms));
  handshake_registry::time_point t{};
  REQUIRE(r.admit(10, t).id);
  REQUIRE_FALSE(r.admit(11, t).id);
}
