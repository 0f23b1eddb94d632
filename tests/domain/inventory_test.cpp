// Inventory rules: stock, per-order holds through the saga, and the stock invariant.
#include <limits>
#include <random>
#include <string>

#include <catch2/catch.hpp>

#include "test_util.hpp"

using namespace ordermesh::domain;
using namespace ordermesh::domain::test;
using inventory::hold;

namespace {

inventory::state stocked(int64_t quantity) {
  inventory::state s;
  s.product_id = "p1";
  if (quantity > 0) {
    apply_all(s, inventory::add_stock(s, admin(), "seed", quantity));
  }
  return s;
}

void check_counts(const inventory::state& s, int64_t available, int64_t reserved, int64_t sold) {
  CHECK(s.available == available);
  CHECK(s.reserved == reserved);
  CHECK(s.sold == sold);
  CHECK(inventory::consistent(s));
}

}  // namespace

TEST_CASE("inventory: add_stock by the admin, idempotent per request_id", "[domain][inventory]") {
  inventory::state s = stocked(0);
  const auto d = inventory::add_stock(s, admin(), "a1", 10);
  REQUIRE(d.ok());
  REQUIRE(d.events.size() == 1);
  CHECK(std::get<inventory::stock_added>(d.events[0]).quantity == 10);
  apply_all(s, d);
  check_counts(s, 10, 0, 0);
  CHECK(s.total_added == 10);
  CHECK(s.adds.at("a1") == 10);

  CHECK(no_op(inventory::add_stock(s, admin(), "a1", 10)));
  CHECK(refused(inventory::add_stock(s, admin(), "a1", 11), errc::conflict));
  CHECK(refused(inventory::add_stock(s, as_user("u1"), "a2", 1), errc::forbidden));
  CHECK(refused(inventory::add_stock(s, anonymous(), "a2", 1), errc::forbidden));
}

TEST_CASE("inventory: add_stock validates quantity and request id", "[domain][inventory]") {
  const inventory::state s = stocked(0);
  CHECK(inventory::add_stock(s, admin(), "a", 1).ok());
  CHECK(inventory::add_stock(s, admin(), "a", limits::max_quantity).ok());
  CHECK(refused(inventory::add_stock(s, admin(), "a", 0), errc::bad_request));
  CHECK(refused(inventory::add_stock(s, admin(), "a", -5), errc::bad_request));
  CHECK(
      refused(inventory::add_stock(s, admin(), "a", limits::max_quantity + 1), errc::bad_request));
  CHECK(refused(inventory::add_stock(s, admin(), "", 1), errc::bad_request));
  CHECK(refused(inventory::add_stock(s, admin(), "a b", 1), errc::bad_request));
}

TEST_CASE("inventory: stock may not exceed max_stock", "[domain][inventory]") {
  inventory::state s = stocked(0);
  // Start near the cap; snapshots are the only way such a state arises quickly.
  s.available = limits::max_stock - 5;
  s.total_added = limits::max_stock - 5;
  CHECK(inventory::add_stock(s, admin(), "a", 5).ok());
  CHECK(refused(inventory::add_stock(s, admin(), "a", 6), errc::bad_request));
}

TEST_CASE("inventory: reserve holds stock per order", "[domain][inventory]") {
  inventory::state s = stocked(5);
  const auto d = inventory::reserve(s, "o1", 3);
  REQUIRE(d.ok());
  REQUIRE(d.events.size() == 1);
  CHECK(std::get<inventory::reserved>(d.events[0]).order_id == "o1");
  CHECK(std::get<inventory::reserved>(d.events[0]).quantity == 3);
  apply_all(s, d);
  check_counts(s, 2, 3, 0);
  CHECK(s.reservations.at("o1") == inventory::reservation{3, hold::reserved});

  CHECK(no_op(inventory::reserve(s, "o1", 3)));
  CHECK(refused(inventory::reserve(s, "o1", 2), errc::conflict));
  check_counts(s, 2, 3, 0);
}

TEST_CASE("inventory: reserve beyond availability is out_of_stock", "[domain][inventory]") {
  inventory::state s = stocked(2);
  const auto d = inventory::reserve(s, "o1", 3);
  CHECK(refused(d, errc::out_of_stock));
  CHECK(d.error.message == "p1: 2 available, 3 requested");
  CHECK(inventory::reserve(s, "o1", 2).ok());
  CHECK(refused(inventory::reserve(stocked(0), "o1", 1), errc::out_of_stock));
}

TEST_CASE("inventory: reserve validates order id and quantity", "[domain][inventory]") {
  const inventory::state s = stocked(limits::max_quantity);
  CHECK(inventory::reserve(s, "o", limits::max_quantity).ok());
  CHECK(refused(inventory::reserve(s, "o", 0), errc::bad_request));
  CHECK(refused(inventory::reserve(s, "o", limits::max_quantity + 1), errc::bad_request));
  CHECK(refused(inventory::reserve(s, "", 1), errc::bad_request));
}

TEST_CASE("inventory: release returns held stock once", "[domain][inventory]") {
  inventory::state s = stocked(5);
  apply_all(s, inventory::reserve(s, "o1", 3));
  const auto d = inventory::release(s, "o1");
  REQUIRE(d.ok());
  REQUIRE(d.events.size() == 1);
  CHECK(std::get<inventory::released>(d.events[0]).order_id == "o1");
  apply_all(s, d);
  check_counts(s, 5, 0, 0);
  CHECK(s.reservations.at("o1").status == hold::released);

  CHECK(no_op(inventory::release(s, "o1")));
  // A late, retried reserve for the released order must not take stock again.
  CHECK(refused(inventory::reserve(s, "o1", 3), errc::invalid_state));
  // Re-applying the release (a duplicated journal entry) does not return stock twice.
  inventory::apply(s, d.events[0]);
  check_counts(s, 5, 0, 0);
}

TEST_CASE("inventory: releasing an unknown order leaves a tombstone", "[domain][inventory]") {
  inventory::state s = stocked(5);
  const auto d = inventory::release(s, "late");
  REQUIRE(d.ok());
  REQUIRE(d.events.size() == 1);
  apply_all(s, d);
  check_counts(s, 5, 0, 0);
  CHECK(s.reservations.at("late") == inventory::reservation{0, hold::released});
  CHECK(no_op(inventory::release(s, "late")));
  CHECK(refused(inventory::reserve(s, "late", 1), errc::invalid_state));
  CHECK(refused(inventory::release(s, "bad id"), errc::bad_request));
}

TEST_CASE("inventory: commit sells held stock", "[domain][inventory]") {
  inventory::state s = stocked(5);
  apply_all(s, inventory::reserve(s, "o1", 3));
  const auto d = inventory::commit(s, "o1");
  REQUIRE(d.ok());
  REQUIRE(d.events.size() == 1);
  CHECK(std::get<inventory::committed>(d.events[0]).order_id == "o1");
  apply_all(s, d);
  check_counts(s, 2, 0, 3);
  CHECK(s.reservations.at("o1").status == hold::committed);

  CHECK(no_op(inventory::commit(s, "o1")));
  CHECK(no_op(inventory::reserve(s, "o1", 3)));  // a retried reserve of a paid order
  CHECK(refused(inventory::reserve(s, "o1", 4), errc::conflict));
  CHECK(refused(inventory::release(s, "o1"), errc::invalid_state));
  CHECK(refused(inventory::commit(s, "unknown"), errc::invalid_state));
  apply_all(s, inventory::release(s, "gone"));
  CHECK(refused(inventory::commit(s, "gone"), errc::invalid_state));
}

TEST_CASE("inventory: give_back returns sold stock once", "[domain][inventory]") {
  inventory::state s = stocked(5);
  apply_all(s, inventory::reserve(s, "o1", 3));
  CHECK(refused(inventory::give_back(s, "o1"), errc::invalid_state));  // not sold yet
  apply_all(s, inventory::commit(s, "o1"));
  const auto d = inventory::give_back(s, "o1");
  REQUIRE(d.ok());
  REQUIRE(d.events.size() == 1);
  CHECK(std::get<inventory::returned>(d.events[0]).order_id == "o1");
  apply_all(s, d);
  check_counts(s, 5, 0, 0);
  CHECK(s.reservations.at("o1").status == hold::returned);

  CHECK(no_op(inventory::give_back(s, "o1")));
  CHECK(no_op(inventory::release(s, "o1")));
  CHECK(refused(inventory::reserve(s, "o1", 3), errc::invalid_state));
  CHECK(refused(inventory::commit(s, "o1"), errc::invalid_state));
  CHECK(refused(inventory::give_back(s, "unknown"), errc::invalid_state));
}

TEST_CASE("inventory: view and consistent", "[domain][inventory]") {
  inventory::state s = stocked(5);
  apply_all(s, inventory::reserve(s, "o1", 2));
  const inventory_view v = inventory::view(s);
  CHECK(v.product_id == "p1");
  CHECK(v.available == 3);
  CHECK(v.reserved == 2);
  CHECK(v.sold == 0);

  CHECK(inventory::consistent(s));
  CHECK(inventory::consistent(inventory::state{}));
  inventory::state broken = s;
  broken.available += 1;
  CHECK_FALSE(inventory::consistent(broken));
  broken = s;
  broken.available = -1;
  broken.reserved += 4;  // sum still matches, but a count is negative
  CHECK_FALSE(inventory::consistent(broken));
  broken = s;
  broken.sold = -2;
  broken.available += 2;
  CHECK_FALSE(inventory::consistent(broken));
  broken = s;
  broken.available = std::numeric_limits<int64_t>::max();
  broken.reserved = std::numeric_limits<int64_t>::max();
  CHECK_FALSE(inventory::consistent(broken));  // no overflow into a false "match"
}

TEST_CASE("inventory: a random walk never oversells and keeps the invariant",
          "[domain][inventory]") {
  std::mt19937 rng(20240611);
  auto pick = [&](uint32_t n) { return static_cast<int64_t>(rng() % n); };

  inventory::state s;
  s.product_id = "p1";
  int accepted_events = 0;
  int out_of_stock = 0;
  int counts[5] = {0, 0, 0, 0, 0};  // events applied per command kind

  for (int step = 0; step < 5000; ++step) {
    const int kind = static_cast<int>(pick(100));
    // Ids from a window that slides with the step: recent ids repeat (retries, races between
    // steps of one order), and fresh ones keep arriving once old orders are finished.
    const std::string order_id = "o" + std::to_string(step / 8 + pick(40));
    decision<inventory::event> d;
    int which = 0;
    if (kind < 8) {
      which = 0;
      d = inventory::add_stock(s, admin(), "a" + std::to_string(step / 25 + pick(4)), 1 + pick(30));
    } else if (kind < 50) {
      which = 1;
      d = inventory::reserve(s, order_id, 1 + pick(12));
    } else if (kind < 65) {
      which = 2;
      d = inventory::release(s, order_id);
    } else if (kind < 90) {
      which = 3;
      d = inventory::commit(s, order_id);
    } else {
      which = 4;
      d = inventory::give_back(s, order_id);
    }
    INFO("step " << step << " command " << which << " order " << order_id);
    if (!d.ok()) {
      REQUIRE(d.events.empty());  // a refusal never carries events
      out_of_stock += d.error.code == errc::out_of_stock ? 1 : 0;
      continue;
    }
    const inventory::state before = s;
    for (const auto& e : d.events) {
      inventory::apply(s, e);
    }
    counts[which] += static_cast<int>(d.events.size());
    accepted_events += static_cast<int>(d.events.size());

    REQUIRE(inventory::consistent(s));
    REQUIRE(s.available >= 0);
    // The holds agree with the counters: what is held or sold is exactly what the map says.
    int64_t held = 0;
    int64_t sold = 0;
    for (const auto& [id, r] : s.reservations) {
      REQUIRE(r.quantity >= 0);
      held += r.status == hold::reserved ? r.quantity : 0;
      sold += r.status == hold::committed ? r.quantity : 0;
    }
    REQUIRE(held == s.reserved);
    REQUIRE(sold == s.sold);
    int64_t added = 0;
    for (const auto& [id, q] : s.adds) {
      added += q;
    }
    REQUIRE(added == s.total_added);

    // Idempotency: the same command again changes nothing (no events, or a refusal).
    if (!d.events.empty()) {
      decision<inventory::event> again;
      if (which == 0) {
        const auto& ev = std::get<inventory::stock_added>(d.events[0]);
        again = inventory::add_stock(s, admin(), ev.request_id, ev.quantity);
      } else if (which == 1) {
        again =
            inventory::reserve(s, order_id, std::get<inventory::reserved>(d.events[0]).quantity);
      } else if (which == 2) {
        again = inventory::release(s, order_id);
      } else if (which == 3) {
        again = inventory::commit(s, order_id);
      } else {
        again = inventory::give_back(s, order_id);
      }
      REQUIRE(no_op(again));
    } else {
      REQUIRE(s == before);
    }
  }
  // The walk exercised every path, so the checks above were not vacuous.
  CHECK(accepted_events > 1000);
  CHECK(out_of_stock > 0);
  for (int c : counts) {
    CHECK(c > 10);
  }
}
