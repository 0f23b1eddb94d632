// Product rules: admin-only, idempotent creation, validation, reads.
#include <string>

#include <catch2/catch.hpp>

#include "test_util.hpp"

using namespace ordermesh::domain;
using namespace ordermesh::domain::test;

namespace {
product::state fresh() {
  product::state s;
  s.product_id = "p1";
  return s;
}
}  // namespace

TEST_CASE("product: the admin creates it once", "[domain][product]") {
  product::state s = fresh();
  const auto d = product::create(s, admin(), "Widget", 1999, 5000);
  REQUIRE(d.ok());
  REQUIRE(d.events.size() == 1);
  const auto& ev = std::get<product::created>(d.events[0]);
  CHECK(ev.name == "Widget");
  CHECK(ev.price_cents == 1999);
  CHECK(ev.at_ms == 5000);
  apply_all(s, d);
  CHECK(s.exists);
  CHECK(s.name == "Widget");
  CHECK(s.price_cents == 1999);
  CHECK(s.created_at == 5000);

  CHECK(no_op(product::create(s, admin(), "Widget", 1999, 9999)));
  CHECK(refused(product::create(s, admin(), "Widget", 2000, 1), errc::conflict));
  CHECK(refused(product::create(s, admin(), "Gadget", 1999, 1), errc::conflict));
}

TEST_CASE("product: only the admin may create", "[domain][product]") {
  const product::state s = fresh();
  CHECK(refused(product::create(s, as_user("u1"), "Widget", 1, 1), errc::forbidden));
  CHECK(refused(product::create(s, anonymous(), "Widget", 1, 1), errc::forbidden));
  CHECK(product::create(s, admin(), "Widget", 1, 1).ok());
}

TEST_CASE("product: name and price are validated", "[domain][product]") {
  const product::state s = fresh();
  CHECK(product::create(s, admin(), "W", 0, 1).ok());
  CHECK(product::create(s, admin(), std::string(200, 'w'), limits::max_money_cents, 1).ok());
  CHECK(refused(product::create(s, admin(), "", 1, 1), errc::bad_request));
  CHECK(refused(product::create(s, admin(), std::string(201, 'w'), 1, 1), errc::bad_request));
  CHECK(refused(product::create(s, admin(), "W", -1, 1), errc::bad_request));
  CHECK(
      refused(product::create(s, admin(), "W", limits::max_money_cents + 1, 1), errc::bad_request));
}

TEST_CASE("product: check_read and view", "[domain][product]") {
  product::state s = fresh();
  CHECK(product::check_read(s).code == errc::not_found);
  apply_all(s, product::create(s, admin(), "Widget", 1999, 1));
  CHECK(product::check_read(s).code == errc::none);
  const product_view v = product::view(s);
  CHECK(v.product_id == "p1");
  CHECK(v.name == "Widget");
  CHECK(v.price_cents == 1999);
}
