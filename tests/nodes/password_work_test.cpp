// The password work's building blocks with a made-up clock: token buckets, the keyed buckets'
// bound, the fair queue's round-robin and bounds, the limits' order, and the hasher's answer
// for an unknown user. No sleeps and no timing assertions: time is a value passed in.
#include <catch2/catch.hpp>

#include <chrono>
#include <future>
#include <string>
#include <vector>

#include "nodes/fair_queue.hpp"
#include "nodes/password_hasher.hpp"
#include "nodes/password_limits.hpp"
#include "nodes/token_bucket.hpp"

using namespace ordermesh::node;
using namespace std::chrono_literals;

namespace {
const bucket_clock::time_point t0{};  // the made-up clock's zero
}  // namespace

TEST_CASE("token bucket starts full and refills at its rate") {
  token_bucket b(5, 10, t0);  // 5 per second, burst 10
  for (int i = 0; i < 10; ++i)
    REQUIRE(b.try_take(t0));
  REQUIRE_FALSE(b.try_take(t0));
  CHECK(b.wait_for_one(t0) == 200ms);
  CHECK_FALSE(b.try_take(t0 + 199ms));
  CHECK(b.try_take(t0 + 200ms));
  CHECK_FALSE(b.try_take(t0 + 200ms));
  // An hour later it holds its burst, not 18000 tokens.
  auto later = t0 + 1h;
  CHECK(b.full(later));
  for (int i = 0; i < 10; ++i)
    REQUIRE(b.try_take(later));
  CHECK_FALSE(b.try_take(later));
}

TEST_CASE("token bucket ignores a clock that goes back") {
  token_bucket b(1, 1, t0 + 10s);
  REQUIRE(b.try_take(t0 + 10s));
  CHECK_FALSE(b.try_take(t0));  // earlier reading: adds nothing, takes nothing
  CHECK_FALSE(b.try_take(t0 + 10s));
  CHECK(b.try_take(t0 + 11s));
}

TEST_CASE("keyed buckets are independent per key") {
  keyed_buckets k(1, 2, 100);
  std::chrono::milliseconds wait{0};
  REQUIRE(k.try_take("a", t0, &wait));
  REQUIRE(k.try_take("a", t0, &wait));
  REQUIRE_FALSE(k.try_take("a", t0, &wait));
  CHECK(wait == 1000ms);
  CHECK(k.try_take("b", t0, &wait));
  CHECK(k.try_take("a", t0 + 1s, &wait));
}

TEST_CASE("keyed buckets with rate 0 are unlimited and store nothing") {
  keyed_buckets k(0, 1, 1);
  std::chrono::milliseconds wait{0};
  for (int i = 0; i < 1000; ++i)
    REQUIRE(k.try_take("k" + std::to_string(i % 7), t0, &wait));
  CHECK(k.size() == 0);
}

TEST_CASE("keyed buckets stay bounded and forget full buckets first") {
  keyed_buckets k(1, 1, 2);
  std::chrono::milliseconds wait{0};
  REQUIRE(k.try_take("a", t0, &wait));
  REQUIRE(k.try_take("b", t0, &wait));
  // Both in use (empty): a third key is refused rather than growing the map.
  CHECK_FALSE(k.try_take("c", t0, &wait));
  CHECK(k.size() == 2);
  // A second later both refilled: they are forgotten, and c gets a bucket.
  CHECK(k.try_take("c", t0 + 1s, &wait));
  CHECK(k.size() == 1);
}

TEST_CASE("password limits check the address before the user id") {
  password_limit_options o;
  o.per_user_rate = 1;
  o.per_user_burst = 2;
  o.per_address_rate = 10;
  o.per_address_burst = 3;
  password_limits l(o);
  CHECK_FALSE(l.admit("127.0.0.1", "alice", t0));
  CHECK_FALSE(l.admit("127.0.0.1", "alice", t0));
  auto user_limited = l.admit("127.0.0.2", "alice", t0);  // other address, same user
  REQUIRE(user_limited);
  CHECK(user_limited->find("this user id") != std::string::npos);
  CHECK_FALSE(l.admit("127.0.0.1", "bob", t0));  // third of the address's burst of 3
  auto address_limited = l.admit("127.0.0.1", "carol", t0);
  REQUIRE(address_limited);
  CHECK(address_limited->find("this address") != std::string::npos);
  CHECK(address_limited->find("retry in 100 ms") != std::string::npos);
  // Carol's bucket was never touched: after the address refills she gets in.
  CHECK_FALSE(l.admit("127.0.0.1", "carol", t0 + 100ms));
}

TEST_CASE("fair queue serves keys round-robin") {
  fair_queue<int> q(100, 1000);
  for (int i = 0; i < 5; ++i)
    REQUIRE(q.push("flood", i) == fair_queue<int>::push_result::queued);
  REQUIRE(q.push("victim", 100) == fair_queue<int>::push_result::queued);
  REQUIRE(q.push("other", 200) == fair_queue<int>::push_result::queued);
  CHECK(q.keys() == 3);
  // The victim's job is second, not sixth: one flood job per round ahead of it.
  std::vector<int> order;
  while (auto x = q.pop())
    order.push_back(*x);
  CHECK(order == std::vector<int>{0, 100, 200, 1, 2, 3, 4});
  CHECK(q.empty());
  CHECK(q.keys() == 0);
}

TEST_CASE("fair queue puts a key that comes back at the end of the round") {
  fair_queue<int> q(100, 1000);
  q.push("a", 1);
  q.push("a", 2);
  q.push("b", 10);
  CHECK(*q.pop() == 1);   // a goes to the end: b, a
  q.push("c", 20);        // c joins after them
  CHECK(*q.pop() == 10);  // b leaves the round
  q.push("b", 11);        // b comes back: after a and c
  CHECK(*q.pop() == 2);
  CHECK(*q.pop() == 20);
  CHECK(*q.pop() == 11);
  CHECK_FALSE(q.pop());
}

TEST_CASE("fair queue bounds each key and the total") {
  fair_queue<int> q(2, 3);
  using r = fair_queue<int>::push_result;
  CHECK(q.push("a", 1) == r::queued);
  CHECK(q.push("a", 2) == r::queued);
  CHECK(q.push("a", 3) == r::key_full);
  CHECK(q.queued_for("a") == 2);
  CHECK(q.push("b", 4) == r::queued);
  CHECK(q.push("c", 5) == r::total_full);
  CHECK(q.size() == 3);
  q.pop();
  CHECK(q.push("c", 5) == r::queued);
}

TEST_CASE("hasher answers an unknown user like a wrong password") {
  password_pool_options o;
  o.threads = 1;
  password_hasher h(password_hasher::cost::fast, o);
  auto stored = h.hash_now("right");
  REQUIRE_FALSE(stored.empty());
  CHECK(h.verify_now("right", stored));
  CHECK_FALSE(h.verify_now("wrong", stored));
  CHECK_FALSE(h.verify_now("right", ""));  // unusable hash: a check, then false

  auto check = [&](std::optional<std::string> hash, std::string pw) {
    std::promise<bool> p;
    auto f = p.get_future();
    REQUIRE(h.verify("127.0.0.1", std::move(pw), std::move(hash),
                     [&p](bool ok) { p.set_value(ok); }) == password_hasher::admission::queued);
    return f.get();
  };
  CHECK(check(stored, "right"));
  CHECK_FALSE(check(stored, "wrong"));
  CHECK_FALSE(check(std::nullopt, "right"));
  CHECK_FALSE(check(std::nullopt, ""));
}
