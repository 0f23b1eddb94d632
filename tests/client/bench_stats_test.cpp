// Tests for orderbench's statistics (client/bench_stats.hpp): the log-linear histogram's
// buckets and percentiles, and the zipf / uniform key chooser's distribution.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "client/bench_stats.hpp"

using ordermesh::bench::histogram;
using ordermesh::bench::key_chooser;

TEST_CASE("histogram: small values are exact, larger ones within 1/128", "[bench]") {
  histogram h;
  for (uint64_t v = 0; v < 256; ++v)
    CHECK(h.highest_equivalent(h.index_of(v)) == v);
  std::mt19937_64 rng(7);
  for (int i = 0; i < 100000; ++i) {
    uint64_t v = rng() >> (rng() % 64);
    size_t idx = h.index_of(v);
    uint64_t hi = h.highest_equivalent(idx);
    REQUIRE(hi >= v);
    REQUIRE(static_cast<double>(hi - v) <= static_cast<double>(v) / 128.0);
    if (idx > 0)
      REQUIRE(h.highest_equivalent(idx - 1) < v);  // buckets are contiguous and ordered
  }
  CHECK(h.highest_equivalent(h.index_of(UINT64_MAX)) == UINT64_MAX);
}

TEST_CASE("histogram: percentiles, min, max, mean, merge", "[bench]") {
  histogram h;
  CHECK(h.percentile(99) == 0);
  for (uint64_t v = 1; v <= 10000; ++v)
    h.record(v);
  CHECK(h.count() == 10000);
  CHECK(h.min() == 1);
  CHECK(h.max() == 10000);
  CHECK(h.mean() == Approx(5000.5));
  auto near = [](uint64_t got, double want) {
    return std::fabs(static_cast<double>(got) - want) <= want / 100.0;
  };
  CHECK(near(h.percentile(50), 5000));
  CHECK(near(h.percentile(90), 9000));
  CHECK(near(h.percentile(99), 9900));
  CHECK(near(h.percentile(99.9), 9990));
  CHECK(h.percentile(100) == 10000);
  CHECK(h.percentile(0) == 1);

  histogram tail;
  tail.record(1'000'000);  // one slow op among 10000 fast ones moves p99.99, not p99
  h.merge(tail);
  CHECK(h.count() == 10001);
  CHECK(h.max() == 1'000'000);
  CHECK(near(h.percentile(99), 9900));
  CHECK(near(h.percentile(100), 1'000'000));
  h.clear();
  CHECK(h.count() == 0);
  CHECK(h.max() == 0);
}

TEST_CASE("key_chooser: uniform covers every key about equally", "[bench]") {
  key_chooser u(10, false);
  std::mt19937_64 rng(1);
  std::vector<int> seen(10);
  for (int i = 0; i < 100000; ++i) {
    auto k = u.next(rng);
    REQUIRE(k < 10);
    ++seen[k];
  }
  for (int n : seen)
    CHECK(std::abs(n - 10000) < 600);
  CHECK(u.probability(3) == Approx(0.1));
}

TEST_CASE("key_chooser: zipf follows 1/(k+1)^theta", "[bench]") {
  const uint64_t n = 1000;
  key_chooser z(n, true, 0.99);
  double total = 0;
  for (uint64_t k = 0; k < n; ++k)
    total += z.probability(k);
  CHECK(total == Approx(1.0));
  std::mt19937_64 rng(42);
  std::vector<int> seen(n);
  const int draws = 400000;
  for (int i = 0; i < draws; ++i) {
    auto k = z.next(rng);
    REQUIRE(k < n);
    ++seen[k];
  }
  // The head is sampled exactly by the generator: key 0 and 1 match their probabilities.
  CHECK(seen[0] / double(draws) == Approx(z.probability(0)).epsilon(0.03));
  CHECK(seen[1] / double(draws) == Approx(z.probability(1)).epsilon(0.05));
  CHECK(seen[0] > seen[1]);
  CHECK(seen[1] > seen[10]);
  // Skew: the 10 % most popular keys take well over half of the draws (uniform: 10 %).
  int head = 0;
  for (uint64_t k = 0; k < n / 10; ++k)
    head += seen[k];
  CHECK(head > draws / 2);
  CHECK_THROWS(key_chooser(n, true, 1.0));
  CHECK_THROWS(key_chooser(0, false));
}
