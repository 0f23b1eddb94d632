// The caps on a user's open reservations (domain/user_slots.cpp): claim, link, close, lapse.
#include <string>

#include <catch2/catch.hpp>

#include "test_util.hpp"

using namespace ordermesh::domain;
using namespace ordermesh::domain::test;

namespace {

user::state registered() {
  user::state s;
  s.user_id = "u1";
  apply_all(s, user::register_user(s, "Ann", "hash", 1));
  return s;
}

const user::reservation_caps two_orders{2, 0};
const user::reservation_caps ten_units{0, 10};

}  // namespace

TEST_CASE("slots: claims count up to the order cap, then limit_exceeded", "[domain][slots]") {
  user::state s = registered();
  apply_all(s, user::claim_slot(s, "o1", 1, two_orders, 100, 200));
  apply_all(s, user::claim_slot(s, "o2", 1, two_orders, 100, 200));
  const auto over = user::claim_slot(s, "o3", 1, two_orders, 100, 200);
  CHECK(refused(over, errc::limit_exceeded));
  CHECK(over.error.message.find("pay or cancel") != std::string::npos);
  CHECK(user::open_usage(s, 100).orders == 2);
  CHECK(user::open_usage(s, 100).units == 2);
  // Unlimited caps (0) never refuse.
  CHECK(user::claim_slot(s, "o3", 1, user::reservation_caps{}, 100, 200).ok());
}

TEST_CASE("slots: the units cap counts every open order", "[domain][slots]") {
  user::state s = registered();
  apply_all(s, user::claim_slot(s, "o1", 7, ten_units, 100, 200));
  CHECK(refused(user::claim_slot(s, "o2", 4, ten_units, 100, 200), errc::limit_exceeded));
  apply_all(s, user::claim_slot(s, "o2", 3, ten_units, 100, 200));
  CHECK(user::open_usage(s, 100).units == 10);
  CHECK(refused(user::claim_slot(s, "big", 11, user::reservation_caps{0, 10}, 100, 200),
                errc::limit_exceeded));
}

TEST_CASE("slots: a retried claim counts once and other items replace the claim",
          "[domain][slots]") {
  user::state s = registered();
  apply_all(s, user::claim_slot(s, "o1", 2, two_orders, 100, 200));
  CHECK(no_op(user::claim_slot(s, "o1", 2, two_orders, 150, 250)));
  apply_all(s, user::claim_slot(s, "o2", 1, two_orders, 100, 200));
  // At the cap, the same order again is still fine: it holds its slot already.
  CHECK(no_op(user::claim_slot(s, "o1", 2, two_orders, 150, 250)));
  apply_all(s, user::claim_slot(s, "o1", 5, two_orders, 150, 250));
  CHECK(user::open_usage(s, 150).orders == 2);
  CHECK(user::open_usage(s, 150).units == 6);
}

TEST_CASE("slots: close frees a slot and closing twice or unknown is a no-op", "[domain][slots]") {
  user::state s = registered();
  apply_all(s, user::claim_slot(s, "o1", 1, two_orders, 100, 200));
  apply_all(s, user::close_slot(s, "o1"));
  CHECK(user::open_usage(s, 100).orders == 0);
  CHECK(no_op(user::close_slot(s, "o1")));
  CHECK(no_op(user::close_slot(s, "never")));
  user::state missing;
  missing.user_id = "ghost";
  CHECK(no_op(user::close_slot(missing, "o1")));  // a compensation is never refused
}

TEST_CASE("slots: link moves the deadline of a held slot only", "[domain][slots]") {
  user::state s = registered();
  apply_all(s, user::claim_slot(s, "o1", 1, two_orders, 100, 200));
  apply_all(s, user::link_order(s, "o1", 150, 5000));
  CHECK(s.open_slots.at("o1").until_ms == 5000);
  CHECK(user::open_usage(s, 4999).orders == 1);
  CHECK(no_op(user::link_order(s, "o1", 150, 5000)));  // a retried step
  // A late link (an old attempt's message) never reopens a closed slot.
  apply_all(s, user::close_slot(s, "o1"));
  CHECK(no_op(user::link_order(s, "o1", 160, 9000)));
  CHECK(s.open_slots.empty());
  // A claim arriving after the order was linked is late too: it opens nothing.
  CHECK(no_op(user::claim_slot(s, "o1", 1, two_orders, 170, 300)));
}

TEST_CASE("slots: a claim whose order was never written lapses by itself", "[domain][slots]") {
  // A crash between the claim and the order's first write: no close will ever come.
  user::state s = registered();
  apply_all(s, user::claim_slot(s, "lost1", 1, two_orders, 100, 200));
  apply_all(s, user::claim_slot(s, "lost2", 1, two_orders, 100, 200));
  CHECK(refused(user::claim_slot(s, "o3", 1, two_orders, 199, 300), errc::limit_exceeded));
  CHECK(user::open_usage(s, 200).orders == 0);
  // The next claim drops the lapsed slots from the state (deterministically, by its own time).
  apply_all(s, user::claim_slot(s, "o3", 1, two_orders, 200, 300));
  CHECK(s.open_slots.size() == 1);
  CHECK(s.open_slots.count("o3") == 1);
}

TEST_CASE("slots: claim validates and needs a registered user", "[domain][slots]") {
  const user::state s = registered();
  CHECK(refused(user::claim_slot(s, "", 1, two_orders, 1, 2), errc::bad_request));
  CHECK(refused(user::claim_slot(s, "o1", 0, two_orders, 1, 2), errc::bad_request));
  user::state missing;
  missing.user_id = "ghost";
  CHECK(refused(user::claim_slot(missing, "o1", 1, two_orders, 1, 2), errc::not_found));
}
