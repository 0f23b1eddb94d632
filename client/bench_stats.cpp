#include "client/bench_stats.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace ordermesh::bench {

namespace {
int msb(uint64_t v) {
  return 63 - __builtin_clzll(v);
}
}  // namespace

histogram::histogram(int sub_bits) : sub_bits_(sub_bits), sub_count_(uint64_t{1} << sub_bits) {
  if (sub_bits < 1 || sub_bits > 16)
    throw std::invalid_argument("histogram: sub_bits must be in 1..16");
  // Values below 2*sub_count are exact; then one group of sub_count buckets per shift 1..63-s.
  counts_.assign(index_of(UINT64_MAX) + 1, 0);
}

size_t histogram::index_of(uint64_t value) const {
  if (value < 2 * sub_count_)
    return static_cast<size_t>(value);
  int shift = msb(value) - sub_bits_;  // >= 1
  return static_cast<size_t>((static_cast<uint64_t>(shift) + 1) * sub_count_ +
                             ((value >> shift) - sub_count_));
}

uint64_t histogram::highest_equivalent(size_t index) const {
  if (index < 2 * sub_count_)
    return index;
  uint64_t shift = index / sub_count_ - 1;
  uint64_t top = (index % sub_count_) + sub_count_;  // value >> shift
  uint64_t low = top << shift;
  return low + ((uint64_t{1} << shift) - 1);
}

void histogram::record(uint64_t value) {
  ++counts_[index_of(value)];
  ++count_;
  min_ = std::min(min_, value);
  max_ = std::max(max_, value);
  sum_ += value;
}

void histogram::merge(const histogram& other) {
  if (other.sub_bits_ != sub_bits_)
    throw std::invalid_argument("histogram: merging different resolutions");
  for (size_t i = 0; i < counts_.size(); ++i)
    counts_[i] += other.counts_[i];
  count_ += other.count_;
  min_ = std::min(min_, other.min_);
  max_ = std::max(max_, other.max_);
  sum_ += other.sum_;
}

void histogram::clear() {
  std::fill(counts_.begin(), counts_.end(), 0);
  count_ = 0;
  min_ = UINT64_MAX;
  max_ = 0;
  sum_ = 0;
}

uint64_t histogram::percentile(double pct) const {
  if (count_ == 0)
    return 0;
  pct = std::clamp(pct, 0.0, 100.0);
  auto rank = static_cast<uint64_t>(std::ceil(pct / 100.0 * static_cast<double>(count_)));
  rank = std::clamp<uint64_t>(rank, 1, count_);
  uint64_t seen = 0;
  for (size_t i = 0; i < counts_.size(); ++i) {
    seen += counts_[i];
    if (seen >= rank)
      return std::min(highest_equivalent(i), max_);
  }
  return max_;
}

key_chooser::key_chooser(uint64_t n, bool zipf, double theta) : n_(n), zipf_(zipf) {
  if (n == 0)
    throw std::invalid_argument("key_chooser: n must be positive");
  if (!zipf_)
    return;
  if (!(theta > 0.0 && theta < 1.0))
    throw std::invalid_argument("key_chooser: zipf theta must be in (0, 1)");
  theta_ = theta;
  for (uint64_t i = 1; i <= n; ++i)
    zetan_ += 1.0 / std::pow(static_cast<double>(i), theta);
  double zeta2 = 1.0 + 1.0 / std::pow(2.0, theta);
  alpha_ = 1.0 / (1.0 - theta);
  eta_ = (1.0 - std::pow(2.0 / static_cast<double>(n), 1.0 - theta)) / (1.0 - zeta2 / zetan_);
  half_pow_theta_ = std::pow(0.5, theta);
}

uint64_t key_chooser::next(std::mt19937_64& rng) const {
  if (!zipf_ || n_ == 1)
    return std::uniform_int_distribution<uint64_t>(0, n_ - 1)(rng);
  double u = std::uniform_real_distribution<double>(0.0, 1.0)(rng);
  double uz = u * zetan_;
  if (uz < 1.0)
    return 0;
  if (uz < 1.0 + half_pow_theta_)
    return 1;
  auto k = static_cast<uint64_t>(static_cast<double>(n_) * std::pow(eta_ * u - eta_ + 1.0, alpha_));
  return std::min(k, n_ - 1);
}

double key_chooser::probability(uint64_t k) const {
  if (k >= n_)
    return 0.0;
  if (!zipf_)
    return 1.0 / static_cast<double>(n_);
  return 1.0 / std::pow(static_cast<double>(k + 1), theta_) / zetan_;
}

}  // namespace ordermesh::bench
