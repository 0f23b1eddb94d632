// Order rules: validation, placement, pay/cancel/expire, apply, saga step events, views.
#include <stdexcept>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "test_util.hpp"

using namespace ordermesh::domain;
using namespace ordermesh::domain::test;
using order::phase;

namespace {

constexpr int64_t ttl = 60000;

std::vector<order_item> two_items() {
  return {{"p1", 2, 0}, {"p2", 1, 0}};
}
std::vector<order_item> two_priced() {
  return {{"p1", 2, 500}, {"p2", 1, 250}};
}

order::state fresh() {
  order::state s;
  s.order_id = "o1";
  return s;
}

order::state pending_reserving() {
  order::state s = fresh();
  apply_all(s, order::place(s, "u1", two_priced(), 1000));
  return s;
}

order::state reserved_at(int64_t now = 2000) {
  order::state s = pending_reserving();
  order::apply(s, order::step_succeeded(s, now, ttl));
  return s;
}

order::state paid_order() {
  order::state s = reserved_at();
  apply_all(s, order::pay(s, as_user("u1"), 3000));
  order::apply(s, order::step_succeeded(s, 3001, ttl));  // debited
  order::apply(s, order::step_succeeded(s, 3002, ttl));  // paid
  return s;
}

order::state cancelled_order() {
  order::state s = reserved_at();
  apply_all(s, order::cancel(s, as_user("u1"), "", 4000));
  order::apply(s, order::step_succeeded(s, 4001, ttl));
  return s;
}

order::state rejected_order() {
  order::state s = pending_reserving();
  order::apply(s, order::step_refused(s, {errc::out_of_stock, "p1"}, 1500));
  order::apply(s, order::step_succeeded(s, 1501, ttl));
  return s;
}

}  // namespace

// ---------------------------------------------------------------- items and placement

TEST_CASE("order: check_items", "[domain][order]") {
  CHECK(order::check_items(two_items()).code == errc::none);
  CHECK(order::check_items({}).code == errc::bad_request);

  std::vector<order_item> many;
  for (size_t i = 0; i < limits::max_items; ++i) {
    many.push_back({"p" + std::to_string(i), 1, 0});
  }
  CHECK(order::check_items(many).code == errc::none);
  many.push_back({"extra", 1, 0});
  CHECK(order::check_items(many).code == errc::bad_request);

  CHECK(order::check_items({{"p1", 1, 0}, {"p1", 2, 0}}).code == errc::bad_request);
  CHECK(order::check_items({{"p1", 1, 0}, {"p2", 1, 0}, {"p1", 1, 0}}).code == errc::bad_request);
  CHECK(order::check_items({{"", 1, 0}}).code == errc::bad_request);
  CHECK(order::check_items({{"p 1", 1, 0}}).code == errc::bad_request);
  CHECK(order::check_items({{"p1", 0, 0}}).code == errc::bad_request);
  CHECK(order::check_items({{"p1", -1, 0}}).code == errc::bad_request);
  CHECK(order::check_items({{"p1", limits::max_quantity + 1, 0}}).code == errc::bad_request);
  CHECK(order::check_items({{"p1", limits::max_quantity, 0}}).code == errc::none);
}

TEST_CASE("order: check_place on a new order", "[domain][order]") {
  const order::state s = fresh();
  CHECK(order::check_place(s, as_user("u1"), "u1", two_items()).code == errc::none);
  CHECK(order::check_place(s, admin(), "u1", two_items()).code == errc::none);
  CHECK(order::check_place(s, as_user("u2"), "u1", two_items()).code == errc::forbidden);
  CHECK(order::check_place(s, anonymous(), "u1", two_items()).code == errc::forbidden);
  CHECK(order::check_place(s, as_user("u1"), "u1", {}).code == errc::bad_request);
  CHECK(order::check_place(s, admin(), "bad id", two_items()).code == errc::bad_request);
  // Items are checked first: a malformed request is bad_request whoever sends it.
  CHECK(order::check_place(s, as_user("u2"), "u1", {}).code == errc::bad_request);
}

TEST_CASE("order: check_place on an existing order", "[domain][order]") {
  const order::state s = reserved_at();
  // Same user and lines (unpriced in the request, priced in the order): a retry.
  CHECK(order::check_place(s, as_user("u1"), "u1", two_items()).code == errc::none);
  CHECK(order::check_place(s, admin(), "u1", two_items()).code == errc::none);
  CHECK(order::check_place(s, admin(), "u2", two_items()).code == errc::conflict);
  CHECK(order::check_place(s, as_user("u1"), "u1", {{"p1", 3, 0}, {"p2", 1, 0}}).code ==
        errc::conflict);
  CHECK(order::check_place(s, as_user("u1"), "u1", {{"p2", 1, 0}, {"p1", 2, 0}}).code ==
        errc::conflict);
  CHECK(order::check_place(s, as_user("u1"), "u1", {{"p1", 2, 0}}).code == errc::conflict);
  CHECK(order::check_place(s, as_user("u2"), "u1", two_items()).code == errc::forbidden);
}

TEST_CASE("order: place prices the order and starts reserving", "[domain][order]") {
  order::state s = fresh();
  const auto d = order::place(s, "u1", two_priced(), 1000);
  REQUIRE(d.ok());
  REQUIRE(d.events.size() == 1);
  const auto& ev = std::get<order::placed>(d.events[0]);
  CHECK(ev.user_id == "u1");
  CHECK(ev.items == two_priced());
  CHECK(ev.total_cents == 2 * 500 + 250);
  CHECK(ev.at_ms == 1000);
  apply_all(s, d);
  CHECK(s.status == order_status::pending);
  CHECK(s.step == phase::reserving);
  CHECK(s.user_id == "u1");
  CHECK(s.total_cents == 1250);
  CHECK(s.created_at == 1000);
  CHECK(s.updated_at == 1000);
  CHECK(s.expires_at == 0);
  CHECK(s.reason.empty());
  CHECK(order::next_step(s) == phase::reserving);

  CHECK(refused(order::place(s, "u1", two_priced(), 1001), errc::conflict));
}

TEST_CASE("order: place checks prices and the total", "[domain][order]") {
  const order::state s = fresh();
  const int64_t max = limits::max_money_cents;
  CHECK(order::place(s, "u1", {{"p1", 1, max}}, 1).ok());
  CHECK(order::place(s, "u1", {{"p1", 1, 0}}, 1).ok());
  CHECK(order::place(s, "u1", {{"p1", 4, max / 4}}, 1).ok());
  CHECK(refused(order::place(s, "u1", {{"p1", 2, max / 2 + 1}}, 1), errc::bad_request));
  CHECK(refused(order::place(s, "u1", {{"p1", 1, max}, {"p2", 1, 1}}, 1), errc::bad_request));
  CHECK(refused(order::place(s, "u1", {{"p1", 1, -1}}, 1), errc::bad_request));
  CHECK(refused(order::place(s, "u1", {{"p1", 1, max + 1}}, 1), errc::bad_request));
  CHECK(refused(order::place(s, "u1", {{"p1", limits::max_quantity, max}}, 1), errc::bad_request));
  // The largest possible lines: 100 x 10^5 x 10^12 overflows int64 if summed naively.
  std::vector<order_item> huge;
  for (size_t i = 0; i < limits::max_items; ++i) {
    huge.push_back({"p" + std::to_string(i), limits::max_quantity, max});
  }
  CHECK(refused(order::place(s, "u1", huge, 1), errc::bad_request));
  CHECK(refused(order::place(s, "u1", {}, 1), errc::bad_request));
  CHECK(refused(order::place(s, "u1", {{"p1", 1, 1}, {"p1", 1, 1}}, 1), errc::bad_request));
  CHECK(refused(order::place(s, "", two_priced(), 1), errc::bad_request));
}

// ---------------------------------------------------------------- pay

TEST_CASE("order: pay a reserved order", "[domain][order]") {
  order::state s = reserved_at(2000);
  REQUIRE(s.expires_at == 2000 + ttl);
  const auto d = order::pay(s, as_user("u1"), 2500);
  REQUIRE(d.ok());
  REQUIRE(d.events.size() == 1);
  CHECK(std::get<order::payment_started>(d.events[0]).at_ms == 2500);
  apply_all(s, d);
  CHECK(s.status == order_status::pending);
  CHECK(s.step == phase::debiting);
  CHECK(s.updated_at == 2500);
  CHECK(s.expires_at == 2000 + ttl);  // kept: a refused payment returns to it

  CHECK(order::pay(reserved_at(), admin(), 2500).ok());
}

TEST_CASE("order: pay refusals", "[domain][order]") {
  CHECK(refused(order::pay(fresh(), admin(), 1), errc::not_found));
  CHECK(refused(order::pay(reserved_at(), as_user("u2"), 2500), errc::not_found));
  CHECK(refused(order::pay(reserved_at(), anonymous(), 2500), errc::not_found));
  CHECK(refused(order::pay(pending_reserving(), as_user("u1"), 1), errc::conflict));
  CHECK(no_op(order::pay(paid_order(), as_user("u1"), 5000)));
  CHECK(refused(order::pay(cancelled_order(), as_user("u1"), 5000), errc::invalid_state));
  CHECK(refused(order::pay(rejected_order(), as_user("u1"), 5000), errc::invalid_state));
  // Another user's paid order is still hidden.
  CHECK(refused(order::pay(paid_order(), as_user("u2"), 5000), errc::not_found));
}

TEST_CASE("order: pay after the reservation lapsed is invalid_state", "[domain][order]") {
  const order::state s = reserved_at(2000);
  CHECK(order::pay(s, as_user("u1"), 2000 + ttl - 1).ok());
  const auto at = order::pay(s, as_user("u1"), 2000 + ttl);
  CHECK(refused(at, errc::invalid_state));
  CHECK(at.error.message == "reservation expired");
  CHECK(refused(order::pay(s, as_user("u1"), 2000 + ttl + 1), errc::invalid_state));
}

// ---------------------------------------------------------------- cancel and expire

TEST_CASE("order: cancel a reserved order releases it", "[domain][order]") {
  order::state s = reserved_at();
  const auto d = order::cancel(s, as_user("u1"), "changed my mind", 4000);
  REQUIRE(d.ok());
  REQUIRE(d.events.size() == 1);
  CHECK(std::get<order::cancel_started>(d.events[0]).reason == "changed my mind");
  apply_all(s, d);
  CHECK(s.status == order_status::pending);
  CHECK(s.step == phase::releasing);
  CHECK(s.reason == "changed my mind");
  CHECK(s.updated_at == 4000);
}

TEST_CASE("order: cancel with no reason says who cancelled", "[domain][order]") {
  const auto d = order::cancel(reserved_at(), admin(), "", 4000);
  REQUIRE(d.events.size() == 1);
  CHECK(std::get<order::cancel_started>(d.events[0]).reason == "cancelled by client");
}

TEST_CASE("order: cancel a paid order refunds it", "[domain][order]") {
  order::state s = paid_order();
  apply_all(s, order::cancel(s, as_user("u1"), "return", 5000));
  CHECK(s.status == order_status::pending);
  CHECK(s.step == phase::refunding);
  CHECK(s.reason == "return");
}

TEST_CASE("order: cancel refusals and repeats", "[domain][order]") {
  CHECK(refused(order::cancel(fresh(), admin(), "", 1), errc::not_found));
  CHECK(refused(order::cancel(reserved_at(), as_user("u2"), "", 1), errc::not_found));
  CHECK(refused(order::cancel(paid_order(), anonymous(), "", 1), errc::not_found));
  CHECK(refused(order::cancel(pending_reserving(), as_user("u1"), "", 1), errc::conflict));
  CHECK(refused(order::cancel(rejected_order(), as_user("u1"), "", 1), errc::invalid_state));
  CHECK(no_op(order::cancel(cancelled_order(), as_user("u1"), "again", 1)));
  // A cancel while the cancel is in flight is a step in flight.
  order::state s = reserved_at();
  apply_all(s, order::cancel(s, as_user("u1"), "", 4000));
  CHECK(refused(order::cancel(s, as_user("u1"), "", 4001), errc::conflict));
}

TEST_CASE("order: expire lapses a reservation once its time has come", "[domain][order]") {
  order::state s = reserved_at(2000);
  CHECK(no_op(order::expire(s, 2000 + ttl - 1)));
  const auto d = order::expire(s, 2000 + ttl);
  REQUIRE(d.ok());
  REQUIRE(d.events.size() == 1);
  CHECK(std::get<order::cancel_started>(d.events[0]).reason == "expired");
  CHECK(std::get<order::cancel_started>(d.events[0]).at_ms == 2000 + ttl);
  apply_all(s, d);
  CHECK(s.step == phase::releasing);
  CHECK(no_op(order::expire(s, 2000 + ttl + 5)));  // already expiring

  CHECK(no_op(order::expire(fresh(), 1 << 30)));
  CHECK(no_op(order::expire(pending_reserving(), 1 << 30)));
  CHECK(no_op(order::expire(paid_order(), 1 << 30)));
  CHECK(no_op(order::expire(cancelled_order(), 1 << 30)));
  CHECK(no_op(order::expire(rejected_order(), 1 << 30)));
}

TEST_CASE("order: check_read hides other users' orders", "[domain][order]") {
  CHECK(order::check_read(reserved_at(), as_user("u1")).code == errc::none);
  CHECK(order::check_read(reserved_at(), admin()).code == errc::none);
  CHECK(order::check_read(reserved_at(), as_user("u2")).code == errc::not_found);
  CHECK(order::check_read(reserved_at(), anonymous()).code == errc::not_found);
  CHECK(order::check_read(fresh(), admin()).code == errc::not_found);
}

// ---------------------------------------------------------------- apply and saga events

TEST_CASE("order: step_succeeded ends each phase with its event", "[domain][order]") {
  struct row {
    phase from;
    order_status status;  // status while in `from`
    size_t event_index;   // the variant alternative expected
    order_status after;
    phase next;
  };
  const row rows[] = {
      {phase::reserving, order_status::pending, 1, order_status::reserved, phase::none},
      {phase::rejecting, order_status::pending, 3, order_status::rejected, phase::none},
      {phase::debiting, order_status::pending, 6, order_status::pending, phase::committing},
      {phase::committing, order_status::pending, 7, order_status::paid, phase::none},
      {phase::releasing, order_status::pending, 10, order_status::cancelled, phase::none},
      {phase::refunding, order_status::pending, 9, order_status::pending, phase::returning},
      {phase::returning, order_status::pending, 10, order_status::cancelled, phase::none},
  };
  for (const row& r : rows) {
    order::state s = pending_reserving();
    s.step = r.from;
    s.status = r.status;
    INFO("phase " << static_cast<int>(r.from));
    const order::event e = order::step_succeeded(s, 7000, ttl);
    CHECK(e.index() == r.event_index);
    order::apply(s, e);
    CHECK(s.status == r.after);
    CHECK(s.step == r.next);
    CHECK(s.updated_at == 7000);
  }
  const order::event e = order::step_succeeded(pending_reserving(), 7000, ttl);
  CHECK(std::get<order::reserved>(e).at_ms == 7000);
  CHECK(std::get<order::reserved>(e).expires_at == 7000 + ttl);
}

TEST_CASE("order: step_refused compensates reserving and debiting", "[domain][order]") {
  order::state s = pending_reserving();
  const order::event e =
      order::step_refused(s, {errc::out_of_stock, "p1: 2 available, 3 requested"}, 1500);
  CHECK(std::get<order::reservation_failed>(e).reason ==
        "out_of_stock: p1: 2 available, 3 requested");
  CHECK(std::get<order::reservation_failed>(e).at_ms == 1500);
  order::apply(s, e);
  CHECK(s.status == order_status::pending);
  CHECK(s.step == phase::rejecting);
  CHECK(s.reason == "out_of_stock: p1: 2 available, 3 requested");

  order::state p = reserved_at(2000);
  apply_all(p, order::pay(p, as_user("u1"), 2500));
  const order::event r = order::step_refused(p, {errc::insufficient_funds, "short"}, 2600);
  CHECK(std::get<order::payment_refused>(r).reason == "insufficient_funds: short");
  order::apply(p, r);
  CHECK(p.status == order_status::reserved);
  CHECK(p.step == phase::none);
  CHECK(p.expires_at == 2000 + ttl);
  CHECK(p.reason.empty());  // a refused payment is the pay reply's error, not the order's
  CHECK(p.updated_at == 2600);
}

#ifdef NDEBUG
TEST_CASE("order: saga functions without a step in flight are programmer errors",
          "[domain][order]") {
  CHECK_THROWS_AS(order::step_succeeded(reserved_at(), 1, ttl), std::logic_error);
  CHECK_THROWS_AS(order::step_succeeded(fresh(), 1, ttl), std::logic_error);
  order::state s = pending_reserving();
  s.step = phase::committing;
  CHECK_THROWS_AS(order::step_refused(s, {errc::internal, "x"}, 1), std::logic_error);
  CHECK_NOTHROW(order::step_succeeded(s, 1, ttl));
}
#endif

TEST_CASE("order: apply of every event sets status, phase and updated_at", "[domain][order]") {
  order::state s = fresh();
  order::apply(s, order::placed{"u1", two_priced(), 1250, 10});
  CHECK(s.status == order_status::pending);
  CHECK(s.step == phase::reserving);
  CHECK(s.created_at == 10);
  CHECK(s.updated_at == 10);

  order::apply(s, order::reserved{11, 500});
  CHECK(s.status == order_status::reserved);
  CHECK(s.step == phase::none);
  CHECK(s.expires_at == 500);
  CHECK(s.updated_at == 11);

  order::apply(s, order::payment_started{12});
  CHECK((s.status == order_status::pending && s.step == phase::debiting));
  order::apply(s, order::payment_refused{"x", 13});
  CHECK((s.status == order_status::reserved && s.step == phase::none));
  CHECK(s.expires_at == 500);
  order::apply(s, order::payment_started{14});
  order::apply(s, order::debited{15});
  CHECK((s.status == order_status::pending && s.step == phase::committing));
  order::apply(s, order::paid{16});
  CHECK((s.status == order_status::paid && s.step == phase::none));
  CHECK(s.expires_at == 0);
  CHECK(s.updated_at == 16);

  order::apply(s, order::cancel_started{"why", 17});
  CHECK((s.status == order_status::pending && s.step == phase::refunding));
  CHECK(s.reason == "why");
  order::apply(s, order::refunded{18});
  CHECK((s.status == order_status::pending && s.step == phase::returning));
  order::apply(s, order::cancelled{19});
  CHECK((s.status == order_status::cancelled && s.step == phase::none));
  CHECK(s.reason == "why");
  CHECK(s.updated_at == 19);
  CHECK(s.created_at == 10);

  order::state r = fresh();
  order::apply(r, order::placed{"u1", two_priced(), 1250, 10});
  order::apply(r, order::reservation_failed{"out_of_stock: p1", 20});
  CHECK((r.status == order_status::pending && r.step == phase::rejecting));
  order::apply(r, order::rejected{21});
  CHECK((r.status == order_status::rejected && r.step == phase::none));
  CHECK(r.reason == "out_of_stock: p1");
  CHECK(r.updated_at == 21);

  order::state c = fresh();
  order::apply(c, order::placed{"u1", two_priced(), 1250, 10});
  order::apply(c, order::reserved{11, 500});
  order::apply(c, order::cancel_started{"expired", 600});
  CHECK((c.status == order_status::pending && c.step == phase::releasing));
  order::apply(c, order::cancelled{601});
  CHECK(c.status == order_status::cancelled);
  CHECK(c.expires_at == 0);
}

TEST_CASE("order: wakeup_at and is_terminal", "[domain][order]") {
  CHECK(order::wakeup_at(fresh(), 5) == 0);
  CHECK(order::wakeup_at(pending_reserving(), 5) == 5);
  CHECK(order::wakeup_at(reserved_at(2000), 5) == 2000 + ttl);
  CHECK(order::wakeup_at(paid_order(), 5) == 0);
  CHECK(order::wakeup_at(cancelled_order(), 5) == 0);
  CHECK(order::wakeup_at(rejected_order(), 5) == 0);

  CHECK_FALSE(order::is_terminal(fresh()));
  CHECK_FALSE(order::is_terminal(pending_reserving()));
  CHECK_FALSE(order::is_terminal(reserved_at()));
  CHECK_FALSE(order::is_terminal(paid_order()));
  CHECK(order::is_terminal(cancelled_order()));
  CHECK(order::is_terminal(rejected_order()));
}

TEST_CASE("order: next_step follows the phase", "[domain][order]") {
  CHECK(order::next_step(fresh()) == phase::none);
  CHECK(order::next_step(pending_reserving()) == phase::reserving);
  CHECK(order::next_step(reserved_at()) == phase::none);
  CHECK(order::next_step(paid_order()) == phase::none);
}

TEST_CASE("order: view", "[domain][order]") {
  const order::state s = reserved_at(2000);
  const order_view v = order::view(s);
  CHECK(v.order_id == "o1");
  CHECK(v.user_id == "u1");
  CHECK(v.status == static_cast<uint8_t>(order_status::reserved));
  CHECK(v.items == two_priced());
  CHECK(v.total_cents == 1250);
  CHECK(v.reason.empty());
  CHECK(v.created_at == 1000);
  CHECK(v.updated_at == 2000);
  CHECK(v.expires_at == 2000 + ttl);

  // expires_at is shown for RESERVED only, though kept while a payment is in flight.
  order::state debiting = s;
  apply_all(debiting, order::pay(debiting, as_user("u1"), 2500));
  CHECK(order::view(debiting).status == static_cast<uint8_t>(order_status::pending));
  CHECK(order::view(debiting).expires_at == 0);

  const order_view c = order::view(cancelled_order());
  CHECK(c.status == static_cast<uint8_t>(order_status::cancelled));
  CHECK(c.reason == "cancelled by client");
  CHECK(c.expires_at == 0);
}
