// The order saga end to end across user, product and inventory rules: a small in-test
// coordinator drives next_step / step_succeeded / step_refused the way the order actor does,
// running every participant call twice (as a retry after a crash would) to prove idempotency.
#include <map>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "test_util.hpp"

using namespace ordermesh::domain;
using namespace ordermesh::domain::test;
using order::phase;

namespace {

constexpr int64_t ttl = 60000;
constexpr int64_t grace = 5000;  // entity_settings::slot_grace, shortened

struct world {
  user::state user;
  std::map<std::string, product::state> products;
  std::map<std::string, inventory::state> stock;
  order::state order;
  int64_t now = 1000;
  std::vector<std::string> journal;  // the order's encoded events, as persisted
  user::reservation_caps caps;       // unlimited unless a test sets them

  world() {
    user.user_id = "u1";
    apply_all(user, user::register_user(user, "Ann", "hash", now));
    order.order_id = "o1";
  }

  void add_product(const std::string& id, int64_t price, int64_t quantity) {
    product::state& p = products[id];
    p.product_id = id;
    apply_all(p, product::create(p, admin(), "name of " + id, price, now));
    inventory::state& i = stock[id];
    i.product_id = id;
    apply_all(i, inventory::add_stock(i, admin(), "initial", quantity));
  }

  void deposit(const std::string& request_id, int64_t cents) {
    apply_all(user, user::deposit(user, as_user("u1"), request_id, cents));
  }

  void record(const order::event& e) {
    journal.push_back(order::encode(e));
    order::apply(order, e);
  }

  /// Runs a participant command twice: the first may change things, the retry must not.
  template <class State, class Command>
  failure call(State& s, Command command) {
    const auto first = command(s);
    if (!first.ok()) {
      return first.error;
    }
    for (const auto& e : first.events) {
      apply(s, e);
    }
    const auto retry = command(s);
    REQUIRE(no_op(retry));
    return {};
  }

  /// One participant round for the current phase; returns the first refusal, if any.
  failure run_step() {
    const std::string& oid = order.order_id;
    switch (order::next_step(order)) {
      case phase::reserving: {
        if (failure f = call(
                user, [&](auto& u) { return user::link_order(u, oid, now, now + ttl + grace); });
            f.code != errc::none) {
          return f;
        }
        for (const order_item& item : order.items) {
          failure f = call(stock.at(item.product_id),
                           [&](auto& i) { return inventory::reserve(i, oid, item.quantity); });
          if (f.code != errc::none) {
            return f;
          }
        }
        return {};
      }
      case phase::rejecting:
      case phase::releasing:
        REQUIRE(call(user, [&](auto& u) { return user::close_slot(u, oid); }).code == errc::none);
        for (const order_item& item : order.items) {
          REQUIRE(call(stock.at(item.product_id), [&](auto& i) {
                    return inventory::release(i, oid);
                  }).code == errc::none);
        }
        return {};
      case phase::debiting:
        return call(user, [&](auto& u) { return user::debit(u, oid, order.total_cents); });
      case phase::committing:
        REQUIRE(call(user, [&](auto& u) { return user::close_slot(u, oid); }).code == errc::none);
        for (const order_item& item : order.items) {
          REQUIRE(call(stock.at(item.product_id), [&](auto& i) {
                    return inventory::commit(i, oid);
                  }).code == errc::none);
        }
        return {};
      case phase::refunding:
        REQUIRE(call(user, [&](auto& u) { return user::refund(u, oid); }).code == errc::none);
        return {};
      case phase::returning:
        for (const order_item& item : order.items) {
          REQUIRE(call(stock.at(item.product_id), [&](auto& i) {
                    return inventory::give_back(i, oid);
                  }).code == errc::none);
        }
        return {};
      case phase::none:
        break;
    }
    FAIL("run_step without a step");
    return {};
  }

  /// Drives the saga until no step is in flight, as the actor does on every wakeup.
  void settle() {
    for (int guard = 0; order::next_step(order) != phase::none; ++guard) {
      REQUIRE(guard < 10);
      ++now;
      const failure f = run_step();
      if (f.code == errc::none) {
        record(order::step_succeeded(order, now, ttl));
      } else {
        record(order::step_refused(order, f, now));
      }
      for (const auto& [id, i] : stock) {
        REQUIRE(inventory::consistent(i));
      }
    }
  }

  /// The client's place: validate, price from the catalog, place, then run the saga.
  failure place(const principal& who, std::vector<order_item> items) {
    if (failure f = order::check_place(order, who, "u1", items); f.code != errc::none) {
      return f;
    }
    for (order_item& item : items) {
      item.unit_price_cents = products.at(item.product_id).price_cents;
    }
    const auto d = order::place(order, "u1", items, ++now);
    if (!d.ok()) {
      return d.error;
    }
    // The order actor claims a slot under the user's caps before it writes anything.
    int64_t units = 0;
    for (const order_item& item : items) {
      units += item.quantity;
    }
    // An unknown user has no caps: the saga's link step rejects the order, as the actor does.
    if (failure f = call(user,
                         [&](auto& u) {
                           return user::claim_slot(u, order.order_id, units, caps, now,
                                                   now + grace);
                         });
        f.code != errc::none && f.code != errc::not_found) {
      return f;
    }
    for (const auto& e : d.events) {
      record(e);
    }
    settle();
    return {};
  }

  failure pay() {
    const auto d = order::pay(order, as_user("u1"), ++now);
    if (!d.ok()) {
      return d.error;
    }
    for (const auto& e : d.events) {
      record(e);
    }
    settle();
    return {};
  }

  failure cancel(std::string reason) {
    const auto d = order::cancel(order, as_user("u1"), std::move(reason), ++now);
    if (!d.ok()) {
      return d.error;
    }
    for (const auto& e : d.events) {
      record(e);
    }
    settle();
    return {};
  }

  /// The order rebuilt from its journal must equal the live one (crash recovery).
  void check_replay() const {
    order::state replayed;
    replayed.order_id = order.order_id;
    for (const std::string& rec : journal) {
      order::event e;
      REQUIRE(order::decode(rec, e));
      order::apply(replayed, e);
    }
    CHECK(replayed == order);
  }
};

}  // namespace

TEST_CASE("saga: place, pay, cancel a paid order, back to where we started", "[domain][saga]") {
  world w;
  w.add_product("p1", 500, 10);
  w.add_product("p2", 250, 3);
  w.deposit("d1", 2000);

  REQUIRE(w.place(as_user("u1"), {{"p1", 2, 0}, {"p2", 1, 0}}).code == errc::none);
  CHECK(w.order.status == order_status::reserved);
  CHECK(w.order.total_cents == 1250);
  CHECK(w.order.expires_at == w.now + ttl);
  CHECK(order::wakeup_at(w.order, w.now) == w.now + ttl);
  CHECK(inventory::view(w.stock.at("p1")).reserved == 2);
  CHECK(inventory::view(w.stock.at("p2")).available == 2);
  CHECK(w.user.orders == std::vector<std::string>{"o1"});
  // Placing again with the same content answers the existing order; no new events.
  CHECK(order::check_place(w.order, as_user("u1"), "u1", {{"p1", 2, 0}, {"p2", 1, 0}}).code ==
        errc::none);

  REQUIRE(w.pay().code == errc::none);
  CHECK(w.order.status == order_status::paid);
  CHECK(w.user.balance_cents == 2000 - 1250);
  CHECK(inventory::view(w.stock.at("p1")).sold == 2);
  CHECK(inventory::view(w.stock.at("p1")).reserved == 0);
  CHECK(w.pay().code == errc::none);  // paying again: no-op
  CHECK(w.order.status == order_status::paid);
  CHECK(w.user.balance_cents == 750);

  REQUIRE(w.cancel("return").code == errc::none);
  CHECK(w.order.status == order_status::cancelled);
  CHECK(w.order.reason == "return");
  CHECK(w.user.balance_cents == 2000);
  CHECK(inventory::view(w.stock.at("p1")).available == 10);
  CHECK(inventory::view(w.stock.at("p1")).sold == 0);
  CHECK(inventory::view(w.stock.at("p2")).available == 3);
  CHECK(order::is_terminal(w.order));
  CHECK(order::wakeup_at(w.order, w.now) == 0);
  CHECK(w.cancel("again").code == errc::none);  // no-op
  CHECK(w.order.reason == "return");
  w.check_replay();
}

TEST_CASE("saga: cancelling a reserved order releases its stock", "[domain][saga]") {
  world w;
  w.add_product("p1", 500, 4);
  REQUIRE(w.place(as_user("u1"), {{"p1", 4, 0}}).code == errc::none);
  CHECK(inventory::view(w.stock.at("p1")).available == 0);
  REQUIRE(w.cancel("").code == errc::none);
  CHECK(w.order.status == order_status::cancelled);
  CHECK(w.order.reason == "cancelled by client");
  CHECK(inventory::view(w.stock.at("p1")).available == 4);
  CHECK(w.pay().code == errc::invalid_state);
  w.check_replay();
}

TEST_CASE("saga: out of stock rejects the order and releases what was reserved", "[domain][saga]") {
  world w;
  w.add_product("p1", 500, 10);
  w.add_product("p2", 250, 1);
  REQUIRE(w.place(as_user("u1"), {{"p1", 2, 0}, {"p2", 5, 0}}).code == errc::none);
  CHECK(w.order.status == order_status::rejected);
  CHECK(w.order.reason == "out_of_stock: p2: 1 available, 5 requested");
  // p1 had been reserved before p2 refused; rejecting released it.
  CHECK(inventory::view(w.stock.at("p1")).available == 10);
  CHECK(inventory::view(w.stock.at("p1")).reserved == 0);
  CHECK(w.stock.at("p2").reservations.at("o1").status == inventory::hold::released);
  // A late retry of the reservation cannot take stock now.
  CHECK(refused(inventory::reserve(w.stock.at("p2"), "o1", 5), errc::invalid_state));
  CHECK(w.pay().code == errc::invalid_state);
  CHECK(w.cancel("").code == errc::invalid_state);
  CHECK(order::is_terminal(w.order));
  w.check_replay();
}

TEST_CASE("saga: an unknown user rejects the order", "[domain][saga]") {
  world w;
  w.add_product("p1", 500, 10);
  w.user = user::state{};
  w.user.user_id = "u1";  // never registered
  REQUIRE(w.place(as_user("u1"), {{"p1", 1, 0}}).code == errc::none);
  CHECK(w.order.status == order_status::rejected);
  CHECK(w.order.reason.rfind("not_found: ", 0) == 0);
  CHECK(inventory::view(w.stock.at("p1")).available == 10);
}

TEST_CASE("saga: insufficient funds returns the order to RESERVED", "[domain][saga]") {
  world w;
  w.add_product("p1", 500, 10);
  w.deposit("d1", 400);
  REQUIRE(w.place(as_user("u1"), {{"p1", 1, 0}}).code == errc::none);
  const int64_t expires = w.order.expires_at;

  REQUIRE(w.pay().code == errc::none);  // the request is accepted; the saga step is refused
  CHECK(w.order.status == order_status::reserved);
  CHECK(w.order.expires_at == expires);
  CHECK(w.order.reason.empty());
  CHECK(w.user.balance_cents == 400);
  CHECK(w.user.payments.empty());
  CHECK(inventory::view(w.stock.at("p1")).reserved == 1);
  // The refusal went to the journal with its code.
  order::event last;
  REQUIRE(order::decode(w.journal.back(), last));
  REQUIRE(std::holds_alternative<order::payment_refused>(last));
  CHECK(std::get<order::payment_refused>(last).reason.rfind("insufficient_funds: ", 0) == 0);

  // Topping up and paying again succeeds.
  w.deposit("d2", 100);
  REQUIRE(w.pay().code == errc::none);
  CHECK(w.order.status == order_status::paid);
  CHECK(w.user.balance_cents == 0);
  CHECK(inventory::view(w.stock.at("p1")).sold == 1);
  w.check_replay();
}

TEST_CASE("saga: a reservation expires and releases its stock", "[domain][saga]") {
  world w;
  w.add_product("p1", 500, 3);
  w.deposit("d1", 10000);
  REQUIRE(w.place(as_user("u1"), {{"p1", 3, 0}}).code == errc::none);
  const int64_t expires = w.order.expires_at;
  REQUIRE(order::wakeup_at(w.order, w.now) == expires);

  // Woken early (e.g. after a restart): nothing to do yet.
  CHECK(no_op(order::expire(w.order, expires - 1)));

  w.now = expires;
  CHECK(w.pay().code == errc::invalid_state);  // pay at the deadline is too late
  const auto d = order::expire(w.order, w.now);
  REQUIRE(d.events.size() == 1);
  w.record(d.events[0]);
  CHECK(order::wakeup_at(w.order, w.now) == w.now);  // PENDING: resume now
  w.settle();
  CHECK(w.order.status == order_status::cancelled);
  CHECK(w.order.reason == "expired");
  CHECK(w.order.expires_at == 0);
  CHECK(inventory::view(w.stock.at("p1")).available == 3);
  CHECK(w.user.balance_cents == 10000);
  CHECK(no_op(order::expire(w.order, w.now + 1)));
  w.check_replay();
}

TEST_CASE("saga: a crash mid-step resumes from the snapshot and journal", "[domain][saga]") {
  world w;
  w.add_product("p1", 500, 10);
  w.deposit("d1", 1000);
  REQUIRE(w.place(as_user("u1"), {{"p1", 2, 0}}).code == errc::none);

  // payment_started is persisted, then the node dies before the debit runs.
  const auto d = order::pay(w.order, as_user("u1"), ++w.now);
  REQUIRE(d.events.size() == 1);
  w.record(d.events[0]);
  order::state recovered;
  REQUIRE(order::decode_snapshot(order::encode_snapshot(w.order), recovered));
  REQUIRE(recovered == w.order);
  CHECK(order::next_step(recovered) == phase::debiting);
  CHECK(order::wakeup_at(recovered, w.now) == w.now);

  // The debit ran, but the outcome was not persisted: the resumed step runs it again.
  apply_all(w.user, user::debit(w.user, "o1", recovered.total_cents));
  w.order = recovered;
  w.settle();
  CHECK(w.order.status == order_status::paid);
  CHECK(w.user.balance_cents == 0);  // debited once, not twice
  CHECK(inventory::view(w.stock.at("p1")).sold == 2);
}

TEST_CASE("saga: another user cannot place, pay, cancel or read", "[domain][saga]") {
  world w;
  w.add_product("p1", 500, 10);
  CHECK(w.place(as_user("u2"), {{"p1", 1, 0}}).code == errc::forbidden);
  CHECK(w.order.status == order_status::none);
  REQUIRE(w.place(admin(), {{"p1", 1, 0}}).code == errc::none);
  CHECK(refused(order::pay(w.order, as_user("u2"), w.now), errc::not_found));
  CHECK(refused(order::cancel(w.order, as_user("u2"), "", w.now), errc::not_found));
  CHECK(order::check_read(w.order, as_user("u2")).code == errc::not_found);
  CHECK(order::check_read(w.order, as_user("u1")).code == errc::none);
}

namespace {

/// Makes `id` the world's current order, keeping the one it replaces (the world drives one order
/// at a time; the caps are about several).
void switch_to(world& w, std::map<std::string, order::state>& kept, const std::string& id) {
  kept[w.order.order_id] = w.order;
  if (auto it = kept.find(id); it != kept.end()) {
    w.order = it->second;
  } else {
    w.order = order::state{};
    w.order.order_id = id;
  }
  w.journal.clear();
}

int64_t open_orders(const world& w) {
  return user::open_usage(w.user, w.now).orders;
}

}  // namespace

TEST_CASE("saga: the count cap holds until an order is paid or cancelled or expired or rejected",
          "[domain][saga][caps]") {
  world w;
  w.caps = {2, 0};
  w.add_product("p1", 100, 100);
  w.add_product("few", 100, 1);
  w.deposit("d1", 100000);
  std::map<std::string, order::state> kept;

  REQUIRE(w.place(as_user("u1"), {{"p1", 1, 0}}).code == errc::none);
  switch_to(w, kept, "o2");
  REQUIRE(w.place(as_user("u1"), {{"p1", 1, 0}}).code == errc::none);
  CHECK(open_orders(w) == 2);
  // A retried place of an order already counted answers it as it is and counts nothing more.
  CHECK(order::check_place(w.order, as_user("u1"), "u1", {{"p1", 1, 0}}).code == errc::none);
  CHECK(open_orders(w) == 2);

  // Over the cap: refused before anything is written; no stock held for it.
  switch_to(w, kept, "o3");
  CHECK(w.place(as_user("u1"), {{"p1", 1, 0}}).code == errc::limit_exceeded);
  CHECK(w.order.status == order_status::none);
  CHECK(w.journal.empty());
  CHECK(inventory::view(w.stock.at("p1")).reserved == 2);
  CHECK(open_orders(w) == 2);

  // Paying o1 frees its slot.
  switch_to(w, kept, "o1");
  REQUIRE(w.pay().code == errc::none);
  CHECK(w.order.status == order_status::paid);
  CHECK(open_orders(w) == 1);
  switch_to(w, kept, "o3");
  REQUIRE(w.place(as_user("u1"), {{"p1", 1, 0}}).code == errc::none);
  CHECK(open_orders(w) == 2);

  // Cancelling o2 frees its slot.
  switch_to(w, kept, "o2");
  REQUIRE(w.cancel("").code == errc::none);
  CHECK(open_orders(w) == 1);

  // A rejected order (out of stock) frees the slot it claimed.
  switch_to(w, kept, "o4");
  REQUIRE(w.place(as_user("u1"), {{"few", 5, 0}}).code == errc::none);
  CHECK(w.order.status == order_status::rejected);
  CHECK(open_orders(w) == 1);

  // The expiry of o3 frees its slot.
  switch_to(w, kept, "o3");
  w.now = w.order.expires_at;
  const auto d = order::expire(w.order, w.now);
  REQUIRE(d.events.size() == 1);
  w.record(d.events[0]);
  w.settle();
  CHECK(w.order.status == order_status::cancelled);
  CHECK(open_orders(w) == 0);
  CHECK(w.user.open_slots.empty());
}

TEST_CASE("saga: the units cap counts every open order's quantity", "[domain][saga][caps]") {
  world w;
  w.caps = {0, 5};
  w.add_product("p1", 100, 100);
  w.add_product("p2", 100, 100);
  w.deposit("d1", 100000);
  std::map<std::string, order::state> kept;
  REQUIRE(w.place(as_user("u1"), {{"p1", 2, 0}, {"p2", 1, 0}}).code == errc::none);
  switch_to(w, kept, "o2");
  CHECK(w.place(as_user("u1"), {{"p1", 3, 0}}).code == errc::limit_exceeded);
  CHECK(inventory::view(w.stock.at("p1")).reserved == 2);
  REQUIRE(w.place(as_user("u1"), {{"p1", 2, 0}}).code == errc::none);
  CHECK(user::open_usage(w.user, w.now).units == 5);
  // One order above the cap by itself can never be placed.
  switch_to(w, kept, "o3");
  CHECK(w.place(as_user("u1"), {{"p2", 6, 0}}).code == errc::limit_exceeded);
}

TEST_CASE("saga: the slot lasts as long as the reservation", "[domain][saga][caps]") {
  world w;
  w.caps = {1, 0};
  w.add_product("p1", 100, 10);
  REQUIRE(w.place(as_user("u1"), {{"p1", 1, 0}}).code == errc::none);
  // The link at the reserving step moved the slot's deadline past the reservation's lapse.
  const auto& slot = w.user.open_slots.at("o1");
  CHECK(slot.until_ms >= w.order.expires_at);
  CHECK(slot.until_ms <= w.order.expires_at + grace);
  // Long after the claim's own grace, the reservation still counts.
  CHECK(user::open_usage(w.user, w.order.expires_at - 1).orders == 1);
}
