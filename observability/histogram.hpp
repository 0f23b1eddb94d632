#pragma once
// A histogram with fixed bucket bounds (Prometheus `histogram`). observe() is a short search over
// the bounds plus two atomic updates: no lock, no allocation. Buckets are stored per bucket (not
// cumulative) so that one observation touches one bucket; the render accumulates them.
#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

namespace om::obs {

/// At most this many finite bounds per histogram (each series costs one line per bucket).
constexpr size_t max_histogram_buckets = 40;

/// A consistent-enough copy of a histogram: counts per bucket, the last one being +Inf.
struct histogram_snapshot {
  std::vector<double> bounds;    // finite upper bounds, ascending
  std::vector<uint64_t> counts;  // bounds.size() + 1 entries, not cumulative
  double sum = 0;
  uint64_t count() const;
};

class histogram {
 public:
  /// `bounds`: finite, strictly ascending, 1 to max_histogram_buckets of them; +Inf is implicit.
  /// Anything else is a programmer error: throws std::invalid_argument.
  explicit histogram(std::vector<double> bounds);

  /// Counts `v` in its bucket and adds it to the sum. NaN counts in +Inf only.
  void observe(double v) noexcept;
  histogram_snapshot snapshot() const;
  const std::vector<double>& bounds() const { return bounds_; }

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> counts_;  // bounds_.size() + 1
  std::atomic<double> sum_{0};
};

/// Latency buckets in seconds, 0.5 ms to 10 s: a client request or a synced write.
std::vector<double> latency_buckets_seconds();
/// Size buckets 1, 2, 4, ... 4096: how many writes one group commit batch holds.
std::vector<double> batch_size_buckets();

/// The q-quantile (0 < q < 1) estimated as Prometheus' histogram_quantile() does: linear inside
/// the bucket that holds it; the highest finite bound when it falls in +Inf; 0 for no data.
double estimate_quantile(double q, const std::vector<double>& bounds,
                         const std::vector<uint64_t>& counts);

}  // namespace om::obs
