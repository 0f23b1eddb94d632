// The cluster port's guard (nodes/cluster_transport/connection_guard.hpp) on real sockets
// (socketpairs): what it evicts, refuses, or finds past the deadline is shut down, which the
// other end sees as EOF; what it keeps stays open; each is counted in the node's metrics.
// The deadline case waits (bounded) for the sweeper: it checks that the socket closes, not when.
#include <catch2/catch.hpp>

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "nodes/cluster_transport/connection_guard.hpp"
#include "observability/registry.hpp"

using ordermesh::cluster_transport::connection_guard;
using ordermesh::cluster_transport::guard_options;
using namespace std::chrono_literals;

namespace {

/// A connected pair: `ours` is what the guard registers, `theirs` shows what it did.
struct socket_pair {
  int ours = -1, theirs = -1;
  socket_pair() {
    int fds[2];
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds) == 0);
    ours = fds[0];
    theirs = fds[1];
  }
  ~socket_pair() {
    ::close(ours);
    ::close(theirs);
  }
  socket_pair(const socket_pair&) = delete;
  socket_pair& operator=(const socket_pair&) = delete;

  /// True once the guard's side was shut down (EOF here); false while it is open.
  bool shut_down() const {
    char c;
    auto n = ::recv(theirs, &c, 1, 0);
    return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
  }
};

guard_options options(size_t pending, size_t total, std::chrono::milliseconds deadline) {
  guard_options o;
  o.limits.max_pending = pending;
  o.limits.max_total = total;
  o.limits.deadline = deadline;
  o.max_frame_bytes = 1024;
  o.node_id = "t1";
  return o;
}

uint64_t counted(const char* event) {
  return om::obs::registry::global()
      .counters("ordermesh_cluster_connections_total", "", {"event"})
      .with({event})
      .value();
}

}  // namespace

TEST_CASE("connection guard shuts down the oldest pending connection when the cap is full") {
  connection_guard guard(options(2, 10, 1h));
  auto evicted_before = counted("evicted_pending");
  socket_pair a, b, c;
  auto ia = guard.on_accept(a.ours, "a");
  auto ib = guard.on_accept(b.ours, "b");
  REQUIRE_FALSE(a.shut_down());
  auto ic = guard.on_accept(c.ours, "c");
  REQUIRE(ia);
  REQUIRE(ib);
  REQUIRE(ic);
  CHECK(a.shut_down());
  CHECK_FALSE(b.shut_down());
  CHECK_FALSE(c.shut_down());
  CHECK(counted("evicted_pending") == evicted_before + 1);
  for (auto id : {*ia, *ib, *ic})
    guard.on_closed(id);
}

TEST_CASE("connection guard refuses a connection past the total cap and evicts nobody") {
  connection_guard guard(options(2, 2, 1h));
  auto refused_before = counted("refused_cap");
  socket_pair a, b, c;
  auto ia = guard.on_accept(a.ours, "a");
  auto ib = guard.on_accept(b.ours, "b");
  CHECK_FALSE(guard.on_accept(c.ours, "c"));
  CHECK_FALSE(a.shut_down());
  CHECK_FALSE(b.shut_down());
  CHECK(counted("refused_cap") == refused_before + 1);
  guard.on_closed(*ia);
  guard.on_closed(*ib);
}

TEST_CASE("connection guard shuts a socket down for an oversized frame") {
  connection_guard guard(options(2, 10, 1h));
  auto before = counted("oversized_frame");
  socket_pair a;
  CHECK(guard.max_frame_bytes() == 1024);
  guard.on_oversized_frame(a.ours, 4096, "a");
  CHECK(a.shut_down());
  CHECK(counted("oversized_frame") == before + 1);
}

TEST_CASE(
    "connection guard closes pending connections at the deadline and keeps established ones") {
  connection_guard guard(options(8, 10, 50ms));
  auto before = counted("handshake_timeout");
  socket_pair pending, established;
  auto ip = guard.on_accept(pending.ours, "pending");
  auto ie = guard.on_accept(established.ours, "established");
  guard.on_established(*ie);
  // Bounded wait for the sweeper (every 250 ms); no assertion on how long it took.
  for (int i = 0; i < 400 && !pending.shut_down(); ++i)
    std::this_thread::sleep_for(25ms);
  CHECK(pending.shut_down());
  CHECK_FALSE(established.shut_down());
  CHECK(counted("handshake_timeout") >= before + 1);
  guard.on_closed(*ip);
  guard.on_closed(*ie);
}
