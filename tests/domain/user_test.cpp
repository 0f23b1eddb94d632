// User rules: registration, deposits, saga debit/refund, order links, reads.
#include <string>

#include <catch2/catch.hpp>

#include "test_util.hpp"

using namespace ordermesh::domain;
using namespace ordermesh::domain::test;

namespace {

user::state fresh(const std::string& id = "u1") {
  user::state s;
  s.user_id = id;
  return s;
}

user::state registered_with(int64_t balance, const std::string& id = "u1") {
  user::state s = fresh(id);
  apply_all(s, user::register_user(s, "Ann", "hash", 1000));
  if (balance > 0) {
    apply_all(s, user::deposit(s, admin(), "seed", balance));
  }
  return s;
}

}  // namespace

TEST_CASE("user: register creates the user once", "[domain][user]") {
  user::state s = fresh();
  const auto d = user::register_user(s, "Ann", "hash$1", 1234);
  REQUIRE(d.ok());
  REQUIRE(d.events.size() == 1);
  const auto& ev = std::get<user::registered>(d.events[0]);
  CHECK(ev.name == "Ann");
  CHECK(ev.password_hash == "hash$1");
  CHECK(ev.at_ms == 1234);
  apply_all(s, d);
  CHECK(s.exists);
  CHECK(s.name == "Ann");
  CHECK(s.password_hash == "hash$1");
  CHECK(s.created_at == 1234);
  CHECK(s.balance_cents == 0);

  // Registering again is a conflict, even with identical content.
  CHECK(refused(user::register_user(s, "Ann", "hash$1", 1234), errc::conflict));
  CHECK(refused(user::register_user(s, "Bob", "other", 9), errc::conflict));
}

TEST_CASE("user: register validates the name and the hash", "[domain][user]") {
  user::state s = fresh();
  CHECK(user::register_user(s, std::string(200, 'n'), "h", 1).ok());
  CHECK(user::register_user(s, "", "h", 1).ok());  // only a maximum is specified for users
  CHECK(refused(user::register_user(s, std::string(201, 'n'), "h", 1), errc::bad_request));
  CHECK(refused(user::register_user(s, "Ann", "", 1), errc::bad_request));
}

TEST_CASE("user: deposit by the owner or the admin", "[domain][user]") {
  user::state s = registered_with(0);
  const auto own = user::deposit(s, as_user("u1"), "r1", 500);
  REQUIRE(own.ok());
  REQUIRE(own.events.size() == 1);
  CHECK(std::get<user::deposited>(own.events[0]).request_id == "r1");
  CHECK(std::get<user::deposited>(own.events[0]).amount_cents == 500);
  apply_all(s, own);
  CHECK(s.balance_cents == 500);
  CHECK(s.deposits.at("r1") == 500);

  apply_all(s, user::deposit(s, admin(), "r2", 250));
  CHECK(s.balance_cents == 750);

  CHECK(refused(user::deposit(s, as_user("u2"), "r3", 1), errc::forbidden));
  CHECK(refused(user::deposit(s, anonymous(), "r3", 1), errc::forbidden));
}

TEST_CASE("user: deposit to a missing user is not_found for itself and the admin",
          "[domain][user]") {
  const user::state s = fresh();
  CHECK(refused(user::deposit(s, as_user("u1"), "r1", 1), errc::not_found));
  CHECK(refused(user::deposit(s, admin(), "r1", 1), errc::not_found));
}

TEST_CASE("user: another user's id answers the same whether it exists or not", "[domain][user]") {
  // Issue 13: forbidden vs not_found told which user ids exist.
  const user::state missing = fresh();
  const user::state existing = registered_with(5);
  const auto d1 = user::deposit(missing, as_user("u2"), "r1", 1);
  const auto d2 = user::deposit(existing, as_user("u2"), "r1", 1);
  CHECK(refused(d1, errc::forbidden));
  CHECK(refused(d2, errc::forbidden));
  CHECK(d1.error.message == d2.error.message);
  const failure r1 = user::check_read(missing, as_user("u2"));
  const failure r2 = user::check_read(existing, as_user("u2"));
  CHECK(r1.code == errc::forbidden);
  CHECK(r2.code == errc::forbidden);
  CHECK(r1.message == r2.message);
}

TEST_CASE("user: deposit amount and request id are validated", "[domain][user]") {
  const user::state s = registered_with(0);
  CHECK(user::deposit(s, admin(), "r", 0).ok());
  CHECK(user::deposit(s, admin(), "r", limits::max_money_cents).ok());
  CHECK(refused(user::deposit(s, admin(), "r", -1), errc::bad_request));
  CHECK(refused(user::deposit(s, admin(), "r", limits::max_money_cents + 1), errc::bad_request));
  CHECK(refused(user::deposit(s, admin(), "", 1), errc::bad_request));
  CHECK(refused(user::deposit(s, admin(), "bad id", 1), errc::bad_request));
}

TEST_CASE("user: deposit is idempotent per request_id", "[domain][user]") {
  user::state s = registered_with(0);
  apply_all(s, user::deposit(s, admin(), "r1", 100));
  CHECK(no_op(user::deposit(s, admin(), "r1", 100)));
  CHECK(no_op(user::deposit(s, as_user("u1"), "r1", 100)));
  CHECK(refused(user::deposit(s, admin(), "r1", 101), errc::conflict));
  CHECK(s.balance_cents == 100);
}

TEST_CASE("user: the wallet may not exceed max_balance_cents", "[domain][user]") {
  user::state s = registered_with(0);
  for (int i = 0; i < 1000; ++i) {
    apply_all(s, user::deposit(s, admin(), "r" + std::to_string(i), limits::max_money_cents));
  }
  REQUIRE(s.balance_cents == limits::max_balance_cents);
  CHECK(refused(user::deposit(s, admin(), "over", 1), errc::bad_request));
  CHECK(user::deposit(s, admin(), "zero", 0).ok());
  // A repeat of an accepted deposit is still a no-op at the cap.
  CHECK(no_op(user::deposit(s, admin(), "r999", limits::max_money_cents)));
}

TEST_CASE("user: debit takes an order's payment once", "[domain][user]") {
  user::state s = registered_with(1000);
  const auto d = user::debit(s, "o1", 400);
  REQUIRE(d.ok());
  REQUIRE(d.events.size() == 1);
  CHECK(std::get<user::debited>(d.events[0]).order_id == "o1");
  CHECK(std::get<user::debited>(d.events[0]).amount_cents == 400);
  apply_all(s, d);
  CHECK(s.balance_cents == 600);
  CHECK(s.payments.at("o1") == user::payment{400, false});

  CHECK(no_op(user::debit(s, "o1", 400)));
  CHECK(refused(user::debit(s, "o1", 401), errc::conflict));
  CHECK(s.balance_cents == 600);
}

TEST_CASE("user: debit refusals", "[domain][user]") {
  const user::state s = registered_with(1000);
  CHECK(refused(user::debit(s, "o1", 1001), errc::insufficient_funds));
  CHECK(user::debit(s, "o1", 1000).ok());  // the whole balance is fine
  CHECK(user::debit(s, "o1", 0).ok());
  CHECK(refused(user::debit(s, "o1", -1), errc::bad_request));
  CHECK(refused(user::debit(s, "o1", limits::max_money_cents + 1), errc::bad_request));
  CHECK(refused(user::debit(s, "no/id", 1), errc::bad_request));
  CHECK(refused(user::debit(fresh(), "o1", 1), errc::not_found));
  const auto short_d = user::debit(s, "o1", 1001);
  CHECK(short_d.error.message.find("1000") != std::string::npos);
}

TEST_CASE("user: refund gives back exactly the debit, once", "[domain][user]") {
  user::state s = registered_with(1000);
  apply_all(s, user::debit(s, "o1", 300));
  apply_all(s, user::deposit(s, admin(), "later", 50));
  const auto d = user::refund(s, "o1");
  REQUIRE(d.ok());
  REQUIRE(d.events.size() == 1);
  CHECK(std::get<user::refunded>(d.events[0]).order_id == "o1");
  CHECK(std::get<user::refunded>(d.events[0]).amount_cents == 300);
  apply_all(s, d);
  CHECK(s.balance_cents == 1050);
  CHECK(s.payments.at("o1").refunded);

  CHECK(no_op(user::refund(s, "o1")));
  // Re-applying the event (a duplicated journal entry) does not credit twice.
  user::apply(s, d.events[0]);
  CHECK(s.balance_cents == 1050);
  // A retried debit of the same order after its refund stays a no-op: the order is done.
  CHECK(no_op(user::debit(s, "o1", 300)));
}

TEST_CASE("user: refund of an unknown order or missing user is a no-op", "[domain][user]") {
  CHECK(no_op(user::refund(registered_with(10), "never")));
  CHECK(no_op(user::refund(fresh(), "o1")));
}

TEST_CASE("user: link_order records placements once, in order", "[domain][user]") {
  user::state s = registered_with(0);
  apply_all(s, user::link_order(s, "o2", 10, 100));
  apply_all(s, user::link_order(s, "o1", 10, 100));
  CHECK(no_op(user::link_order(s, "o2", 10, 100)));
  CHECK(s.orders == std::vector<std::string>{"o2", "o1"});
  CHECK(s.open_slots.empty());  // no slot was claimed: linking opens none
  CHECK(refused(user::link_order(fresh(), "o1", 10, 100), errc::not_found));
  CHECK(refused(user::link_order(s, "", 10, 100), errc::bad_request));
}

TEST_CASE("user: check_read and view", "[domain][user]") {
  const user::state s = registered_with(77);
  CHECK(user::check_read(s, as_user("u1")).code == errc::none);
  CHECK(user::check_read(s, admin()).code == errc::none);
  CHECK(user::check_read(s, as_user("u2")).code == errc::forbidden);
  CHECK(user::check_read(s, anonymous()).code == errc::forbidden);
  CHECK(user::check_read(fresh(), admin()).code == errc::not_found);
  CHECK(user::check_read(fresh(), as_user("u1")).code == errc::not_found);
  CHECK(user::check_read(fresh(), as_user("u2")).code == errc::forbidden);
  const user_view v = user::view(s);
  CHECK(v.user_id == "u1");
  CHECK(v.name == "Ann");
  CHECK(v.balance_cents == 77);
}
