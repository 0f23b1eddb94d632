// The primary's side (cluster/replication/primary_log.hpp): commits wait for the primary's disk
// and every ISR member; nothing commits below min_insync; a removal counts only once its txn
// landed, an addition from its proposal on; laggards by position and by time; re-entry; the
// read barrier.
#include <catch2/catch.hpp>

#include "cluster/replication/primary_log.hpp"

using namespace ordermesh::cluster::replication;
using namespace std::chrono_literals;

namespace {

const clock_time t0{};

primary_config config(uint16_t min_insync = 2) {
  primary_config c;
  c.min_insync = min_insync;
  c.max_lag_positions = 10;
  c.max_lag_time = 1000ms;
  return c;
}

/// "a" leads at epoch 2 with replicas a, b, c, all in the ISR, log empty.
primary_log three(uint16_t min_insync = 2) {
  return primary_log("a", 2, {"a", "b", "c"}, {"a", "b", "c"}, 0, 0, config(min_insync), t0);
}

/// three() with 1..20 durable on a and b, c at 5: behind by 15 > max_lag_positions.
primary_log c_lags() {
  auto p = three();
  p.local_durable(20, t0);
  p.ack("b", 1, 2, 20, 1, t0);
  p.ack("c", 1, 2, 5, 1, t0);
  return p;
}

}  // namespace

TEST_CASE("primary: a position commits once durable on the primary and on every ISR member") {
  auto p = three();
  CHECK(p.local_durable(3, t0) == 0);
  CHECK(p.ack("b", 1, 2, 3, 1, t0));
  CHECK(p.committed() == 0);  // c has not acked
  CHECK(p.ack("c", 1, 2, 2, 1, t0));
  CHECK(p.committed() == 2);
  CHECK(p.ack("c", 1, 2, 3, 2, t0));
  CHECK(p.committed() == 3);
  // Acks beyond the primary's own durable end, from another epoch or a stranger are ignored.
  CHECK_FALSE(p.ack("b", 1, 2, 9, 3, t0));
  CHECK_FALSE(p.ack("b", 1, 1, 3, 3, t0));
  CHECK_FALSE(p.ack("z", 1, 2, 3, 3, t0));
  // The followers may be ahead of the primary's own sync: it still waits for its disk.
  auto q = three();
  q.local_durable(2, t0);
  q.ack("b", 1, 2, 2, 1, t0);
  q.ack("c", 1, 2, 2, 1, t0);
  CHECK(q.committed() == 2);
}

TEST_CASE("primary: nothing commits and writes are unavailable below min_insync") {
  primary_log p("a", 2, {"a", "b", "c"}, {"a"}, 0, 0, config(2), t0);
  CHECK(p.can_write(t0) == write_status::unavailable);
  p.local_durable(1, t0);
  CHECK(p.committed() == 0);  // never acknowledged on one disk
  // min_insync 1 (a node alone): its own disk is enough.
  primary_log alone("a", 1, {"a"}, {"a"}, 0, 0, config(1), t0);
  alone.local_durable(1, t0);
  CHECK(alone.committed() == 1);
}

TEST_CASE("primary: a removal from the ISR counts only after its txn landed") {
  auto p = c_lags();
  CHECK(p.committed() == 5);
  auto change = p.propose(t0);
  REQUIRE(change.has_value());
  CHECK(change->what == isr_change::kind::shrink);
  CHECK(change->member == "c");
  CHECK(change->isr == std::vector<std::string>{"a", "b"});
  CHECK_FALSE(p.propose(t0).has_value());  // one in flight at a time
  // Until the txn landed the old ISR rules: still 5.
  p.ack("b", 1, 2, 20, 2, t0);
  CHECK(p.committed() == 5);
  p.isr_changed(true);
  CHECK(p.isr() == std::vector<std::string>{"a", "b"});
  CHECK(p.committed() == 20);
}

TEST_CASE("primary: a refused removal changes nothing") {
  auto p = c_lags();
  REQUIRE(p.propose(t0).has_value());
  p.isr_changed(false);
  CHECK(p.isr().size() == 3);
  CHECK(p.committed() == 5);
}

TEST_CASE("primary: a member not caught up for too long is removed by time - not by position") {
  auto p = three();
  p.local_durable(1, t0);
  p.ack("b", 1, 2, 1, 1, t0);
  p.ack("c", 1, 2, 1, 1, t0);
  p.local_durable(2, t0 + 100ms);
  p.ack("b", 1, 2, 2, 2, t0 + 200ms);
  CHECK_FALSE(p.propose(t0 + 1000ms).has_value());  // c behind by 1 for 900 ms: fine
  auto change = p.propose(t0 + 1200ms);             // c has not caught up for 1100 ms
  REQUIRE(change.has_value());
  CHECK(change->member == "c");
  // With no new writes nobody lags, however long the silence.
  auto idle = three();
  idle.local_durable(1, t0);
  idle.ack("b", 1, 2, 1, 1, t0);
  idle.ack("c", 1, 2, 1, 1, t0);
  CHECK_FALSE(idle.propose(t0 + 60s).has_value());
}

TEST_CASE("primary: a laggard is never removed below min_insync: writes become unavailable") {
  primary_log p("a", 2, {"a", "b", "c"}, {"a", "b"}, 0, 0, config(2), t0);
  p.local_durable(20, t0);
  p.ack("b", 1, 2, 3, 1, t0);
  CHECK_FALSE(p.propose(t0).has_value());
  CHECK(p.can_write(t0) == write_status::unavailable);
  p.ack("b", 1, 2, 20, 2, t0);
  CHECK(p.can_write(t0) == write_status::ok);
  CHECK(p.committed() == 20);
}

TEST_CASE("primary: re-entry needs every committed position - and counts from the proposal") {
  primary_log p("a", 2, {"a", "b", "c"}, {"a", "b"}, 0, 0, config(2), t0);
  p.local_durable(5, t0);
  p.ack("b", 1, 2, 5, 1, t0);
  CHECK(p.committed() == 5);
  p.ack("c", 1, 2, 4, 1, t0);
  CHECK_FALSE(p.propose(t0).has_value());  // c lacks committed 5
  p.ack("c", 1, 2, 5, 2, t0);
  auto change = p.propose(t0);
  REQUIRE(change.has_value());
  CHECK(change->what == isr_change::kind::expand);
  CHECK(change->isr == std::vector<std::string>{"a", "b", "c"});
  // From now on commits wait for c too, although etcd does not list it yet: the moment the
  // txn lands, etcd's ISR must hold every committed position.
  p.local_durable(6, t0);
  p.ack("b", 1, 2, 6, 3, t0);
  CHECK(p.committed() == 5);
  p.ack("c", 1, 2, 6, 3, t0);
  CHECK(p.committed() == 6);
  p.isr_changed(true);
  CHECK(p.isr().size() == 3);
}

TEST_CASE("primary: a replica dropped by the controller at the same epoch stops being waited for") {
  auto p = three();
  p.local_durable(4, t0);
  p.ack("b", 1, 2, 4, 1, t0);
  CHECK(p.committed() == 0);
  p.store_changed({"a", "b"}, {"a", "b"}, t0);
  CHECK(p.committed() == 4);
  CHECK_FALSE(p.ack("c", 1, 2, 4, 2, t0));
}

TEST_CASE("primary: a read waits for a round after it from every ISR member - and for commit") {
  auto p = three();
  p.local_durable(2, t0);
  auto r1 = p.next_round();
  p.ack("b", 1, 2, 2, r1, t0);
  p.ack("c", 1, 2, 2, r1, t0);
  CHECK(p.committed() == 2);
  auto ticket = p.begin_read();
  CHECK_FALSE(p.read_ready(ticket));  // the acks of round r1 predate the read
  auto r2 = p.next_round();
  CHECK(r2 == ticket.round);
  p.ack("b", 1, 2, 2, r2, t0);
  CHECK_FALSE(p.read_ready(ticket));
  p.ack("c", 1, 2, 2, r2, t0);
  CHECK(p.read_ready(ticket));
  // A read that saw an uncommitted write waits for its commit as well.
  p.local_durable(3, t0);
  auto t2 = p.begin_read();
  auto r3 = p.next_round();
  p.ack("b", 1, 2, 2, r3, t0);
  p.ack("c", 1, 2, 2, r3, t0);
  CHECK_FALSE(p.read_ready(t2));
  p.ack("b", 1, 2, 3, r3, t0);
  p.ack("c", 1, 2, 3, r3, t0);
  CHECK(p.read_ready(t2));
}

TEST_CASE("primary: a late ack of an older round does not undo a newer one") {
  auto p = three();
  p.local_durable(5, t0);
  p.ack("b", 1, 2, 5, 4, t0);
  p.ack("b", 1, 2, 2, 3, t0);  // delayed
  p.ack("c", 1, 2, 5, 4, t0);
  CHECK(p.committed() == 5);
}

TEST_CASE("primary: a new life of a replica replaces what its old life acknowledged") {
  primary_log p("a", 2, {"a", "b", "c"}, {"a", "b"}, 0, 0, config(2), t0);
  p.local_durable(5, t0);
  p.ack("c", 1, 2, 5, 1, t0);
  p.ack("c", 7, 2, 0, 1, t0);  // c restarted with a wiped disk and synced again: it holds 0
  p.ack("b", 1, 2, 5, 1, t0);
  CHECK(p.committed() == 5);
  CHECK_FALSE(p.propose(t0).has_value());  // c lacks committed 5: no re-entry yet
  p.ack("c", 7, 2, 5, 2, t0);
  auto change = p.propose(t0);
  REQUIRE(change.has_value());
  CHECK(change->member == "c");
  CHECK(change->incarnation == 7);  // its entry names the life that holds the data
}

TEST_CASE("primary: a heartbeat answers a read's round - without changing what the log holds") {
  auto p = three();
  p.local_durable(4, t0);
  auto r1 = p.next_round();
  p.ack("b", 1, 2, 4, r1, t0);
  p.ack("c", 1, 2, 3, r1, t0);  // c holds 3 so far; its ack of 4 is still on its way
  auto ticket = p.begin_read();
  auto beat = p.next_round();
  CHECK(p.heard("b", 1, 2, beat, t0));
  CHECK(p.heard("c", 1, 2, beat, t0));
  CHECK_FALSE(p.read_ready(ticket));  // both answered a round after it, but 4 is not committed
  p.ack("c", 1, 2, 4, r1, t0);        // the append's ack, older round than the heartbeat
  CHECK(p.committed() == 4);          // still taken: heartbeats do not order acks
  CHECK(p.read_ready(ticket));
  // A heartbeat from another life, another epoch, or a replica that never acked counts for nothing.
  CHECK_FALSE(p.heard("b", 9, 2, p.next_round(), t0));
  CHECK_FALSE(p.heard("b", 1, 3, p.next_round(), t0));
  primary_log q("a", 2, {"a", "b", "c"}, {"a", "b", "c"}, 0, 0, config(2), t0);
  CHECK_FALSE(q.heard("b", 1, 2, q.next_round(), t0));
}

TEST_CASE("primary: a silent member lags even if caught up - it leaves the ISR, or blocks writes") {
  auto c = config(2);
  c.max_silence = 500ms;
  primary_log p("a", 2, {"a", "b", "c"}, {"a", "b", "c"}, 0, 0, c, t0);
  p.local_durable(1, t0);
  p.ack("b", 1, 2, 1, p.next_round(), t0);
  p.ack("c", 1, 2, 1, p.next_round(), t0);
  CHECK_FALSE(p.propose(t0 + 400ms).has_value());  // both caught up, both heard lately
  p.heard("b", 1, 2, p.next_round(), t0 + 450ms);  // b answers heartbeats, c is gone
  auto change = p.propose(t0 + 600ms);
  REQUIRE(change.has_value());
  CHECK(change->what == isr_change::kind::shrink);
  CHECK(change->member == "c");
  p.isr_changed(true);
  // Now at min_insync: b going silent cannot remove it, so writes stop instead.
  CHECK(p.can_write(t0 + 900ms) == write_status::ok);
  CHECK(p.can_write(t0 + 1000ms) == write_status::unavailable);
  CHECK_FALSE(p.propose(t0 + 1000ms).has_value());
  // Without max_silence (the default) a caught-up member never lags by silence alone.
  auto q = three();
  q.local_durable(1, t0);
  q.ack("b", 1, 2, 1, q.next_round(), t0);
  q.ack("c", 1, 2, 1, q.next_round(), t0);
  CHECK_FALSE(q.propose(t0 + 100s).has_value());
}

TEST_CASE("primary: a member whose connection dropped lags at once - until it answers again") {
  auto p = three();
  p.local_durable(1, t0);
  p.ack("b", 1, 2, 1, p.next_round(), t0);
  p.ack("c", 1, 2, 1, p.next_round(), t0);
  CHECK_FALSE(p.propose(t0).has_value());
  p.connection_lost("c");
  auto change = p.propose(t0);  // no lag timeout to wait for
  REQUIRE(change.has_value());
  CHECK(change->member == "c");
  p.isr_changed(false);  // refused (the key changed): c is back before anything landed
  p.ack("c", 1, 2, 1, p.next_round(), t0);
  CHECK_FALSE(p.propose(t0).has_value());
  // At min_insync the lost member cannot leave: writes stop at once instead.
  primary_log q("a", 2, {"a", "b", "c"}, {"a", "b"}, 0, 0, config(2), t0);
  CHECK(q.can_write(t0) == write_status::ok);
  q.connection_lost("b");
  CHECK(q.can_write(t0) == write_status::unavailable);
  q.heard("b", 1, 2, q.next_round(), t0);  // never acked at this epoch: a heartbeat is not enough
  CHECK(q.can_write(t0) == write_status::unavailable);
  q.ack("b", 1, 2, 0, q.next_round(), t0);
  CHECK(q.can_write(t0) == write_status::ok);
}

TEST_CASE(
    "primary: while removals are held a silent member stays in the ISR - re-entry is not held") {
  auto p = c_lags();
  p.hold_removals(true);  // cut off: the others replace this primary instead
  CHECK_FALSE(p.propose(t0 + 5s).has_value());
  CHECK(p.committed() == 5);  // c's acks are still required: nothing commits past them
  p.hold_removals(false);     // it reaches a majority again
  auto change = p.propose(t0 + 5s);
  REQUIRE(change.has_value());
  CHECK(change->what == isr_change::kind::shrink);
  CHECK(change->member == "c");
  // Additions are not held: a replica that caught up enters while this node is cut off from
  // the others (it answered, so it is not the one cut off).
  primary_log q("a", 2, {"a", "b", "c"}, {"a", "b"}, 0, 0, config(2), t0);
  q.hold_removals(true);
  q.ack("b", 1, 2, 0, q.next_round(), t0);
  q.ack("c", 1, 2, 0, q.next_round(), t0);
  auto grow = q.propose(t0);
  REQUIRE(grow.has_value());
  CHECK(grow->what == isr_change::kind::expand);
  CHECK(grow->member == "c");
}

TEST_CASE("primary: no removal while too few members keep up for writes to resume after it") {
  // b and c both lag (connections lost): removing one would leave the other, still lagging,
  // in an ISR of min_insync 2, so writes would stay paused; this primary is likely the one cut
  // off, and the others keep it in the ISR they promote from.
  auto p = three();
  p.local_durable(1, t0);
  p.ack("b", 1, 2, 1, p.next_round(), t0);
  p.ack("c", 1, 2, 1, p.next_round(), t0);
  p.connection_lost("b");
  p.connection_lost("c");
  CHECK_FALSE(p.propose(t0 + 5s).has_value());
  // Writes are refused at once rather than held until their commit timeout.
  CHECK(p.can_write(t0 + 5s) == write_status::unavailable);
  CHECK(p.committed() == 1);
  // b answers again: now dropping c lets writes go on with a and b.
  p.ack("b", 1, 2, 1, p.next_round(), t0 + 5s);
  CHECK(p.can_write(t0 + 5s) == write_status::ok);
  auto change = p.propose(t0 + 5s);
  REQUIRE(change.has_value());
  CHECK(change->what == isr_change::kind::shrink);
  CHECK(change->member == "c");
  // At min_insync 1 a primary alone keeps writing: both leave, one at a time.
  primary_log q("a", 2, {"a", "b", "c"}, {"a", "b", "c"}, 0, 0, config(1), t0);
  q.connection_lost("b");
  q.connection_lost("c");
  auto first = q.propose(t0);
  REQUIRE(first.has_value());
  CHECK(first->what == isr_change::kind::shrink);
  q.isr_changed(true);
  auto second = q.propose(t0);
  REQUIRE(second.has_value());
  CHECK(second->isr == std::vector<std::string>{"a"});
}
