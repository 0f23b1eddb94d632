// order.timeline (domain/order_timeline.hpp) and the trace its events carry: built from a saga's
// journal, and from journals written before events had a trace.
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "domain/codec.hpp"
#include "domain/order.hpp"
#include "domain/order_timeline.hpp"

using namespace ordermesh::domain;

namespace {
principal as_user(const std::string& id) {
  return principal{id, false};
}

order::event traced(order::event e, const std::string& node, const std::string& req) {
  order::set_trace(e, {node, req});
  return e;
}

/// A paid order's journal as the saga writes it: placed and reserved for one request on n2,
/// paid for another.
std::vector<order::event> paid_journal() {
  order::state s;
  s.order_id = "o1";
  std::vector<order::event> journal;
  auto record = [&](order::event e, const std::string& req) {
    e = traced(std::move(e), "n2", req);
    order::apply(s, e);
    journal.push_back(std::move(e));
  };
  auto placed = order::place(s, "u1", {{"p1", 2, 500}}, 1000);
  REQUIRE(placed.ok());
  record(placed.events.at(0), "req-place");
  record(order::step_succeeded(s, 1001, 60000), "req-place");  // reserved
  record(order::pay(s, as_user("u1"), 1002).events.at(0), "req-pay");
  record(order::step_succeeded(s, 1003, 60000), "req-pay");  // debited
  record(order::step_succeeded(s, 1004, 60000), "req-pay");  // paid
  REQUIRE(s.status == order_status::paid);
  return journal;
}
}  // namespace

TEST_CASE("timeline: a paid order's steps with node and time and request", "[domain][timeline]") {
  const auto view = timeline("o1", paid_journal());
  CHECK(view.order_id == "o1");
  CHECK_FALSE(view.truncated);
  REQUIRE(view.steps.size() == 5);
  const std::vector<std::string> names = {"place", "reserve", "pay", "pay", "confirm"};
  const std::vector<std::string> outcomes = {"ok", "ok", "started", "ok", "ok"};
  const std::vector<std::string> reqs = {"req-place", "req-place", "req-pay", "req-pay", "req-pay"};
  for (size_t i = 0; i < view.steps.size(); ++i) {
    INFO("step " << i);
    CHECK(view.steps[i].step == names[i]);
    CHECK(view.steps[i].outcome == outcomes[i]);
    CHECK(view.steps[i].at_ms == 1000 + static_cast<int64_t>(i));
    CHECK(view.steps[i].node == "n2");
    CHECK(view.steps[i].request_id == reqs[i]);
  }
}

TEST_CASE("timeline: refusals and expiry say why", "[domain][timeline]") {
  const std::vector<order::event> journal = {
      order::placed{"u1", {{"p1", 1, 5}}, 5, 10},
      order::reservation_failed{"out_of_stock: p1", 11},
      order::rejected{12},
  };
  auto view = timeline("o2", journal);
  REQUIRE(view.steps.size() == 3);
  CHECK(view.steps[1].step == "reserve");
  CHECK(view.steps[1].outcome == "refused: out_of_stock: p1");
  CHECK(view.steps[2].step == "reject");

  view = timeline("o3", {order::cancel_started{"expired", 20}, order::cancelled{21}});
  REQUIRE(view.steps.size() == 2);
  CHECK(view.steps[0].step == "expire");
  CHECK(view.steps[1].step == "cancel");
}

TEST_CASE("timeline: at most 200 steps and the newest kept", "[domain][timeline]") {
  std::vector<order::event> journal;
  for (size_t i = 0; i < max_timeline_steps + 7; ++i)
    journal.push_back(order::payment_refused{"short", static_cast<int64_t>(i)});
  const auto view = timeline("o4", journal);
  CHECK(view.truncated);
  REQUIRE(view.steps.size() == max_timeline_steps);
  CHECK(view.steps.front().at_ms == 7);
  CHECK(view.steps.back().at_ms == static_cast<int64_t>(max_timeline_steps + 6));
}

TEST_CASE("trace: stored after the event and read back", "[domain][timeline]") {
  for (const auto& e : paid_journal()) {
    order::event back;
    REQUIRE(order::decode(order::encode(e), back));
    CHECK(back.index() == e.index());
    CHECK(order::trace_of(back).node == "n2");
    CHECK(order::trace_of(back).request_id == order::trace_of(e).request_id);
  }
}

TEST_CASE("trace: events written before it existed still replay", "[domain][timeline]") {
  // The bytes an order journal held before the trace: version 1, tag, fields, nothing after.
  codec::writer placed_w(1);  // tag_placed
  placed_w.str("u1");
  placed_w.u64(1);
  placed_w.str("p1");
  placed_w.i64(2);
  placed_w.i64(500);
  placed_w.i64(1000);           // total
  placed_w.i64(1000);           // at_ms
  codec::writer reserved_w(2);  // tag_reserved
  reserved_w.i64(1001);
  reserved_w.i64(61001);
  const std::vector<std::string> old_journal = {placed_w.take(), reserved_w.take()};

  order::state s;
  std::vector<order::event> events;
  for (const auto& bytes : old_journal) {
    order::event e;
    REQUIRE(order::decode(bytes, e));
    CHECK(order::trace_of(e).node.empty());
    CHECK(order::trace_of(e).request_id.empty());
    // An untraced event is still written exactly as before.
    CHECK(order::encode(e) == bytes);
    order::apply(s, e);
    events.push_back(e);
  }
  CHECK(s.status == order_status::reserved);
  CHECK(s.total_cents == 1000);
  const auto view = timeline("o1", events);
  REQUIRE(view.steps.size() == 2);
  CHECK(view.steps[1].step == "reserve");
  CHECK(view.steps[1].at_ms == 1001);
  CHECK(view.steps[1].node.empty());
}

TEST_CASE("trace: a damaged trace is refused", "[domain][timeline]") {
  const auto bytes = order::encode(traced(order::paid{5}, "n1", "r1"));
  order::event e;
  REQUIRE(order::decode(bytes, e));
  CHECK_FALSE(order::decode(bytes.substr(0, bytes.size() - 1), e));  // cut inside it
  CHECK_FALSE(order::decode(bytes + "x", e));                        // bytes after it
}
