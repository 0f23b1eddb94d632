// The status page's recent activity, driven with explicit times (no sleeping), and the request
// meter that feeds it.
#include <catch2/catch.hpp>

#include "observability/activity_window.hpp"
#include "observability/request_meter.hpp"
#include "tests/observability/exposition_parser.hpp"

using namespace om::obs;
using om::obs::testing::parse_exposition;

namespace {
constexpr int64_t t0 = 1'700'000'000'000;  // a whole number of seconds: a 1 s interval starts here
}

TEST_CASE("activity window reports requests per second and p99 per interval", "[observability]") {
  histogram h({0.001, 0.01, 0.1});
  activity_window w(std::chrono::seconds(1), 10);
  w.set_source([&] { return h.snapshot(); });
  CHECK(w.samples(t0).empty());  // the first copy: no interval completed yet
  // Interval [t0, t0+1s): 100 requests, 99 fast and one slow.
  w.tick(t0 + 10);
  for (int i = 0; i < 99; ++i)
    h.observe(0.0005);
  h.observe(0.05);
  // Interval [t0+1s, t0+2s): nothing. Interval [t0+2s, t0+3s): 10 requests of 5 ms.
  w.tick(t0 + 2000);
  for (int i = 0; i < 10; ++i)
    h.observe(0.005);
  auto s = w.samples(t0 + 3500);
  REQUIRE(s.size() == 3);
  CHECK(s[0].unix_ms == t0 + 1000);
  CHECK(s[0].requests_per_s == 100);
  CHECK(s[0].p99_ms == Approx(1.0));  // rank 99 is the last of the first bucket
  CHECK(s[1].requests_per_s == 0);
  CHECK(s[1].p99_ms == 0);
  CHECK(s[2].requests_per_s == 10);
  CHECK(s[2].p99_ms == Approx((0.001 + 0.009 * 0.99) * 1000));
}

TEST_CASE("activity window is bounded after a long idle spell", "[observability]") {
  histogram h({1});
  activity_window w(std::chrono::seconds(5), 60);
  w.set_source([&] { return h.snapshot(); });
  w.tick(t0);
  h.observe(0.5);
  // A day later: at most 60 intervals, all of them idle, the newest last.
  auto s = w.samples(t0 + 86'400'000);
  REQUIRE(s.size() == 60);
  for (auto& x : s)
    CHECK(x.requests_per_s == 0);
  CHECK(s.back().unix_ms == t0 + 86'400'000);
  // Many busy intervals in a row keep it bounded too.
  for (int64_t i = 0; i < 500; ++i) {
    w.tick(t0 + 86'400'000 + i * 5000);
    h.observe(0.1);
  }
  auto busy = w.samples(t0 + 86'400'000 + 500 * 5000);
  REQUIRE(busy.size() == 60);
  CHECK(busy.back().requests_per_s == Approx(0.2));
}

TEST_CASE("request meter counts by op and code and feeds the window", "[observability]") {
  registry r;
  activity_window w(std::chrono::seconds(5), 60);
  request_meter m(r, w, {"order.place", "order.get"}, {"ok", "overloaded", "not_found"});
  for (int i = 0; i < 5; ++i)
    m.record(0, 0, 0.002);
  m.record(0, 1, 0.0001);
  m.record(1, 2, 0.02);
  m.record(17, 99, 0.02);  // out of range: "other", never a crash
  auto p = parse_exposition(r.render());
  CHECK(p.value("ordermesh_client_requests_total", {{"op", "order.place"}, {"code", "ok"}}) == 5);
  CHECK(p.value("ordermesh_client_requests_total",
                {{"op", "order.place"}, {"code", "overloaded"}}) == 1);
  CHECK(p.value("ordermesh_client_requests_total", {{"op", "order.get"}, {"code", "not_found"}}) ==
        1);
  CHECK(p.value("ordermesh_client_requests_total", {{"op", "other"}, {"code", "other"}}) == 1);
  CHECK(p.value("ordermesh_client_request_duration_seconds_count", {{"op", "order.place"}}) == 6);
  CHECK(p.value("ordermesh_client_overloaded_replies_total", {{"stage", "request"}}) == 1);
  // The window sees all 8 once their interval is over.
  auto s = w.samples(unix_now_ms() + 10'000);
  double requests = 0;
  for (auto& x : s)
    requests += x.requests_per_s * 5;
  CHECK(requests == Approx(8));
}
