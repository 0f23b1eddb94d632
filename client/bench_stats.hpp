#pragma once
// Statistics for orderbench: a log-linear latency histogram (HdrHistogram-like: exact below
// 2^(sub_bits+1), then 2^sub_bits linear buckets per power of two, so every recorded value is
// known to within 1/2^sub_bits of itself) and a zipf / uniform key chooser.
#include <cstddef>
#include <cstdint>
#include <random>
#include <vector>

namespace ordermesh::bench {

class histogram {
 public:
  /// sub_bits 7: 128 buckets per power of two, relative error below 0.8 %.
  explicit histogram(int sub_bits = 7);

  void record(uint64_t value);
  void merge(const histogram& other);
  void clear();

  uint64_t count() const { return count_; }
  uint64_t min() const { return count_ ? min_ : 0; }
  uint64_t max() const { return max_; }
  double mean() const { return count_ ? static_cast<double>(sum_) / count_ : 0.0; }
  /// The smallest bucket bound v such that at least `pct` percent of the values are <= v
  /// (the highest value equivalent to the bucket's values, clamped to max()). 0 when empty.
  uint64_t percentile(double pct) const;

  /// Bucket index of a value, and the highest value that lands in a bucket (for tests).
  size_t index_of(uint64_t value) const;
  uint64_t highest_equivalent(size_t index) const;

 private:
  int sub_bits_;
  uint64_t sub_count_;  // 2^sub_bits
  std::vector<uint64_t> counts_;
  uint64_t count_ = 0;
  uint64_t min_ = UINT64_MAX;
  uint64_t max_ = 0;
  uint64_t sum_ = 0;
};

/// Picks keys 0..n-1: uniformly, or zipf-distributed with exponent theta (key 0 the most
/// frequent; P(k) proportional to 1/(k+1)^theta). Gray et al., "Quickly generating billion-record
/// synthetic databases" (the YCSB generator); theta in (0, 1).
class key_chooser {
 public:
  key_chooser(uint64_t n, bool zipf, double theta = 0.99);
  uint64_t next(std::mt19937_64& rng) const;
  uint64_t size() const { return n_; }
  /// The probability of key k under this distribution.
  double probability(uint64_t k) const;

 private:
  uint64_t n_;
  bool zipf_;
  double theta_ = 0, alpha_ = 0, zetan_ = 0, eta_ = 0, half_pow_theta_ = 0;
};

}  // namespace ordermesh::bench
