// The registry renders what was recorded, in the text format, and keeps its bounds.
#include <catch2/catch.hpp>

#include <thread>
#include <vector>

#include "observability/registry.hpp"
#include "tests/observability/exposition_parser.hpp"

using namespace om::obs;
using om::obs::testing::parse_exposition;

TEST_CASE("counters and gauges render with their HELP and TYPE lines", "[observability]") {
  registry r;
  r.counters("t_requests_total", "Requests.", {"op"}).with({"get"}).inc(3);
  r.gauges("t_open", "Open things.").with({}).set(-2);
  auto text = r.render();
  auto p = parse_exposition(text);
  CHECK(p.type.at("t_requests_total") == "counter");
  CHECK(p.type.at("t_open") == "gauge");
  CHECK(p.help.at("t_requests_total") == "Requests.");
  CHECK(p.value("t_requests_total", {{"op", "get"}}) == 3);
  CHECK(p.value("t_open") == -2);
  // A family nobody recorded into has no series and no header.
  r.counters("t_unused_total", "Never used.", {"x"});
  CHECK(parse_exposition(r.render()).type.count("t_unused_total") == 0);
}

TEST_CASE("label values and help text are escaped and read back unchanged", "[observability]") {
  registry r;
  const std::string nasty = "a\"quote\\back\nnewline}{,=";
  r.counters("t_escaped_total", "Help with \\ and\nnewline.", {"v"}).with({nasty}).inc();
  auto text = r.render();
  // One sample line: the newline inside the value is escaped, not written.
  CHECK(text.find("t_escaped_total{v=\"a\\\"quote\\\\back\\nnewline}{,=\"} 1\n") !=
        std::string::npos);
  auto p = parse_exposition(text);
  CHECK(p.value("t_escaped_total", {{"v", nasty}}) == 1);
  CHECK(p.help.at("t_escaped_total") == "Help with \\ and\nnewline.");
}

TEST_CASE("a family folds label sets past its bound into one other series", "[observability]") {
  registry r;
  auto& f = r.counters("t_bounded_total", "Bounded.", {"shard", "node"}, 4);
  for (int i = 0; i < 100; ++i)
    f.with({std::to_string(i), "n"}).inc();
  auto p = parse_exposition(r.render());
  auto all = p.find("t_bounded_total");
  CHECK(all.size() == 5);  // 4 label sets and `other`
  CHECK(p.value("t_bounded_total", {{"shard", "other"}, {"node", "other"}}) == 96);
  CHECK(p.value("t_bounded_total", {{"shard", "3"}}) == 1);
  CHECK(f.folded() == 96);
  double total = 0;
  for (auto& s : all)
    total += s.number();
  CHECK(total == 100);  // nothing is lost, only folded
}

TEST_CASE("concurrent increments from threads sum exactly", "[observability]") {
  registry r;
  auto& c = r.counters("t_concurrent_total", "Concurrent.").with({});
  auto& h = r.histograms("t_concurrent_seconds", "Concurrent.", {}, {0.5, 1}).with({});
  constexpr int threads = 8, per_thread = 50000;
  std::vector<std::thread> ts;
  for (int t = 0; t < threads; ++t) {
    ts.emplace_back([&, t] {
      for (int i = 0; i < per_thread; ++i) {
        c.inc();
        h.observe(t % 2 == 0 ? 0.25 : 2.0);
      }
    });
  }
  for (auto& t : ts)
    t.join();
  auto p = parse_exposition(r.render());
  CHECK(p.value("t_concurrent_total") == threads * per_thread);
  CHECK(p.value("t_concurrent_seconds_count") == threads * per_thread);
  CHECK(p.value("t_concurrent_seconds_bucket", {{"le", "0.5"}}) == threads / 2 * per_thread);
  // Every addition to the sum landed too: 0.25 and 2.0 add exactly in binary floating point.
  CHECK(p.value("t_concurrent_seconds_sum") ==
        threads / 2 * per_thread * 0.25 + threads / 2 * per_thread * 2.0);
}

TEST_CASE("histogram buckets are cumulative and end with Inf equal to count", "[observability]") {
  registry r;
  auto& h = r.histograms("t_latency_seconds", "Latency.", {"op"}, {0.001, 0.01, 0.1}).with({"x"});
  for (double v : {0.0005, 0.001, 0.002, 0.05, 0.05, 3.0})
    h.observe(v);
  auto p = parse_exposition(r.render());
  CHECK(p.type.at("t_latency_seconds") == "histogram");
  auto buckets = p.find("t_latency_seconds_bucket", {{"op", "x"}});
  REQUIRE(buckets.size() == 4);
  CHECK(buckets[0].labels.at("le") == "0.001");
  CHECK(buckets[1].labels.at("le") == "0.01");
  CHECK(buckets[2].labels.at("le") == "0.1");
  CHECK(buckets[3].labels.at("le") == "+Inf");
  std::vector<double> expected{2, 3, 5, 6};
  for (size_t i = 0; i < buckets.size(); ++i) {
    CHECK(buckets[i].number() == expected[i]);
    if (i > 0)
      CHECK(buckets[i].number() >= buckets[i - 1].number());
  }
  CHECK(p.value("t_latency_seconds_count", {{"op", "x"}}) == 6);
  CHECK(p.value("t_latency_seconds_sum", {{"op", "x"}}) == Approx(3.1035));
}

TEST_CASE("collectors read their value at render time and leave with their handle",
          "[observability]") {
  registry r;
  std::atomic<uint64_t> existing{7};
  {
    auto handle = r.collect("t_existing_total", "Read from an atomic.", metric_type::counter,
                            {"kind"}, [&](std::vector<sample>& out) {
                              out.push_back({{"a"}, static_cast<double>(existing.load())});
                              out.push_back({{"b", "too many"}, 1});  // wrong arity: left out
                            });
    CHECK(parse_exposition(r.render()).value("t_existing_total", {{"kind", "a"}}) == 7);
    existing = 9;
    auto p = parse_exposition(r.render());
    CHECK(p.value("t_existing_total", {{"kind", "a"}}) == 9);
    CHECK(p.find("t_existing_total").size() == 1);
  }
  CHECK(parse_exposition(r.render()).type.count("t_existing_total") == 0);
}

TEST_CASE("a collector's samples are bounded by its family", "[observability]") {
  registry r;
  auto handle = r.collect(
      "t_many", "Many.", metric_type::gauge, {"i"},
      [](std::vector<sample>& out) {
        for (int i = 0; i < 1000; ++i)
          out.push_back({{std::to_string(i)}, 1});
      },
      10);
  CHECK(parse_exposition(r.render()).find("t_many").size() == 10);
}

TEST_CASE("invalid names and label counts are refused", "[observability]") {
  registry r;
  CHECK_THROWS_AS(r.counters("9starts_with_digit", "x"), std::invalid_argument);
  CHECK_THROWS_AS(r.counters("t_ok_total", "x", {"bad-label"}), std::invalid_argument);
  CHECK_THROWS_AS(r.counters("t_ok_total", "x", {"__reserved"}), std::invalid_argument);
  CHECK_THROWS_AS(r.histograms("t_h", "x", {"le"}, {1}), std::invalid_argument);
  CHECK_THROWS_AS(r.histograms("t_h", "x", {}, {2, 1}), std::invalid_argument);
  auto& f = r.counters("t_two_total", "x", {"a", "b"});
  CHECK_THROWS_AS(f.with({"only one"}), std::invalid_argument);
  // Another type or other labels under a name already declared.
  CHECK_THROWS_AS(r.gauges("t_two_total", "x", {"a", "b"}), std::invalid_argument);
  CHECK_THROWS_AS(r.counters("t_two_total", "x", {"a"}), std::invalid_argument);
  // The same declaration again is the same family.
  CHECK(&r.counters("t_two_total", "x", {"a", "b"}) == &f);
  CHECK(r.render().empty());  // nothing refused left a trace
}
