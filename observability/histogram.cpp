#include "observability/histogram.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace om::obs {

uint64_t histogram_snapshot::count() const {
  uint64_t n = 0;
  for (auto c : counts)
    n += c;
  return n;
}

histogram::histogram(std::vector<double> bounds) : bounds_(std::move(bounds)) {
  if (bounds_.empty() || bounds_.size() > max_histogram_buckets)
    throw std::invalid_argument("histogram: 1 to 40 bucket bounds");
  for (size_t i = 0; i < bounds_.size(); ++i) {
    if (!std::isfinite(bounds_[i]) || (i > 0 && bounds_[i] <= bounds_[i - 1]))
      throw std::invalid_argument("histogram: bounds must be finite and strictly ascending");
  }
  counts_ = std::make_unique<std::atomic<uint64_t>[]>(bounds_.size() + 1);
  for (size_t i = 0; i <= bounds_.size(); ++i)
    counts_[i].store(0, std::memory_order_relaxed);
}

void histogram::observe(double v) noexcept {
  // Prometheus buckets are `le`: a value equal to a bound belongs to that bound's bucket. NaN
  // (a caller's bug) counts in +Inf and stays out of the sum, which it would spoil for good.
  if (std::isnan(v)) {
    counts_[bounds_.size()].fetch_add(1, std::memory_order_relaxed);
    return;
  }
  size_t i = std::lower_bound(bounds_.begin(), bounds_.end(), v) - bounds_.begin();
  counts_[i].fetch_add(1, std::memory_order_relaxed);
  // No fetch_add for double in C++17: a CAS loop, lock-free on x86-64 and arm64.
  double old = sum_.load(std::memory_order_relaxed);
  while (!sum_.compare_exchange_weak(old, old + v, std::memory_order_relaxed)) {
  }
}

histogram_snapshot histogram::snapshot() const {
  histogram_snapshot s;
  s.bounds = bounds_;
  s.counts.resize(bounds_.size() + 1);
  for (size_t i = 0; i <= bounds_.size(); ++i)
    s.counts[i] = counts_[i].load(std::memory_order_relaxed);
  s.sum = sum_.load(std::memory_order_relaxed);
  return s;
}

std::vector<double> latency_buckets_seconds() {
  return {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
}

std::vector<double> batch_size_buckets() {
  std::vector<double> b;
  for (double v = 1; v <= 4096; v *= 2)
    b.push_back(v);
  return b;
}

double estimate_quantile(double q, const std::vector<double>& bounds,
                         const std::vector<uint64_t>& counts) {
  uint64_t total = 0;
  for (auto c : counts)
    total += c;
  if (total == 0 || counts.size() != bounds.size() + 1)
    return 0;
  double rank = q * static_cast<double>(total);
  uint64_t below = 0;
  for (size_t i = 0; i < bounds.size(); ++i) {
    if (static_cast<double>(below + counts[i]) >= rank && counts[i] > 0) {
      double lower = i == 0 ? std::min(0.0, bounds[0]) : bounds[i - 1];
      double into = (rank - static_cast<double>(below)) / static_cast<double>(counts[i]);
      return lower + (bounds[i] - lower) * into;
    }
    below += counts[i];
  }
  return bounds.back();  // in +Inf: no upper bound to interpolate to
}

}  // namespace om::obs
