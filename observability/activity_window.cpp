#include "observability/activity_window.hpp"

#include <algorithm>

namespace om::obs {

activity_window::activity_window(std::chrono::milliseconds interval, size_t max_samples)
    : interval_ms_(std::max<int64_t>(1, interval.count())),
      max_samples_(std::max<size_t>(1, max_samples)) {}

void activity_window::set_source(source_fn source) {
  std::lock_guard<std::mutex> lock(mu_);
  source_ = std::move(source);
  copies_.clear();
  current_slot_.store(-1, std::memory_order_relaxed);
}

void activity_window::tick(int64_t now_ms) {
  const int64_t slot = now_ms / interval_ms_;
  if (current_slot_.load(std::memory_order_relaxed) >= slot)
    return;
  std::lock_guard<std::mutex> lock(mu_);
  if (!source_ || current_slot_.load(std::memory_order_relaxed) >= slot)
    return;  // no source yet, or another thread copied this interval first
  auto snap = source_();
  bounds_ = std::move(snap.bounds);
  copies_.push_back(copy{slot, std::move(snap.counts)});
  while (copies_.size() > max_samples_ + 1)
    copies_.pop_front();
  current_slot_.store(slot, std::memory_order_relaxed);
}

std::vector<activity_sample> activity_window::samples(int64_t now_ms) {
  tick(now_ms);
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<activity_sample> out;
  if (copies_.empty())
    return out;
  const int64_t current = now_ms / interval_ms_;
  const int64_t first =
      std::max(copies_.front().slot, current - static_cast<int64_t>(max_samples_));
  const double seconds = static_cast<double>(interval_ms_) / 1000.0;
  std::vector<uint64_t> diff;
  size_t next = 0;  // the first copy after the slot being filled
  for (int64_t slot = first; slot < current; ++slot) {
    while (next < copies_.size() && copies_[next].slot <= slot)
      ++next;
    activity_sample s;
    s.unix_ms = (slot + 1) * interval_ms_;
    // Only the interval that starts at a copy saw requests: up to the next copy nothing else did.
    if (next > 0 && next < copies_.size() && copies_[next - 1].slot == slot) {
      const auto& a = copies_[next - 1].counts;
      const auto& b = copies_[next].counts;
      diff.assign(b.size(), 0);
      uint64_t n = 0;
      for (size_t i = 0; i < b.size() && i < a.size(); ++i) {
        diff[i] = b[i] >= a[i] ? b[i] - a[i] : 0;
        n += diff[i];
      }
      s.requests_per_s = static_cast<double>(n) / seconds;
      s.p99_ms = estimate_quantile(0.99, bounds_, diff) * 1000.0;
    }
    out.push_back(s);
  }
  return out;
}

activity_window& global_activity() {
  static activity_window w(std::chrono::seconds(5), 60);
  return w;
}

int64_t unix_now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace om::obs
