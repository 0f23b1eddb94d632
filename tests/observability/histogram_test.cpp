// Histogram buckets, the quantile estimate the status page shows, and how values are written.
#include <catch2/catch.hpp>

#include <cmath>

#include "observability/histogram.hpp"
#include "observability/text_format.hpp"

using namespace om::obs;

TEST_CASE("histogram puts a value equal to a bound in that bucket", "[observability]") {
  histogram h({1, 2, 4});
  h.observe(1);
  h.observe(1.5);
  h.observe(4);
  h.observe(4.5);
  h.observe(NAN);
  auto s = h.snapshot();
  REQUIRE(s.counts.size() == 4);
  CHECK(s.counts[0] == 1);  // 1 <= 1
  CHECK(s.counts[1] == 1);  // 1.5
  CHECK(s.counts[2] == 1);  // 4 <= 4
  CHECK(s.counts[3] == 2);  // 4.5 and NaN: +Inf
  CHECK(s.count() == 5);
  CHECK(s.sum == 1 + 1.5 + 4 + 4.5);  // NaN left out: it would make the sum NaN for good
}

TEST_CASE("histogram refuses bounds that are not finite and ascending", "[observability]") {
  CHECK_THROWS_AS(histogram({}), std::invalid_argument);
  CHECK_THROWS_AS(histogram({1, 1}), std::invalid_argument);
  CHECK_THROWS_AS(histogram({1, INFINITY}), std::invalid_argument);
  CHECK_THROWS_AS(histogram(std::vector<double>(max_histogram_buckets + 1, 1)),
                  std::invalid_argument);
  CHECK_NOTHROW(histogram(latency_buckets_seconds()));
  CHECK_NOTHROW(histogram(batch_size_buckets()));
}

TEST_CASE("quantile estimate interpolates inside the bucket that holds it", "[observability]") {
  std::vector<double> bounds{0.01, 0.1, 1};
  // 100 observations: 90 up to 10 ms, 10 between 10 and 100 ms.
  CHECK(estimate_quantile(0.99, bounds, {90, 10, 0, 0}) == Approx(0.01 + 0.09 * 0.9));
  CHECK(estimate_quantile(0.5, bounds, {90, 10, 0, 0}) == Approx(0.01 * 50.0 / 90.0));
  // In +Inf there is no upper bound: the highest finite one.
  CHECK(estimate_quantile(0.99, bounds, {0, 0, 0, 5}) == 1);
  CHECK(estimate_quantile(0.99, bounds, {0, 0, 0, 0}) == 0);
}

TEST_CASE("sample values are written as Prometheus reads them", "[observability]") {
  using om::obs::text::format_value;
  CHECK(format_value(0.0005) == "0.0005");
  CHECK(format_value(2.5) == "2.5");
  CHECK(format_value(4096) == "4096");
  CHECK(format_value(-3) == "-3");
  CHECK(format_value(1e300) == "1e+300");
  CHECK(format_value(INFINITY) == "+Inf");
  CHECK(format_value(-INFINITY) == "-Inf");
  CHECK(format_value(NAN) == "NaN");
  CHECK(std::stod(format_value(0.1 + 0.2)) == 0.1 + 0.2);  // exact round trip
}
