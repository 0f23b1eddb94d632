#pragma once
// The status page's recent activity: requests per second and p99 latency per interval, over a
// bounded window, sampled from the request histogram without a thread of its own.
//
// How: at the first tick() of each interval (the request recorder ticks before it records, and
// a reader ticks before it reads) the window stores a copy of the histogram's bucket counts.
// Nothing was recorded between the interval's start and that first tick, so the copy is the
// counts at the boundary; an interval's activity is the difference between consecutive copies,
// and an interval with no copy saw no requests. At most max_samples + 1 copies are kept.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <vector>

#include "observability/histogram.hpp"
#include "observability/metrics_text.hpp"

namespace om::obs {

class activity_window {
 public:
  /// Where the counts come from (the sum of the per-op request histograms); may be slow-ish, it
  /// runs once per interval.
  using source_fn = std::function<histogram_snapshot()>;

  activity_window(std::chrono::milliseconds interval, size_t max_samples);

  /// Installs the source (the request meter, once). Until then the window stays empty.
  void set_source(source_fn source);

  /// Copies the counts if `now_ms` (Unix ms) starts a new interval; otherwise one atomic load.
  void tick(int64_t now_ms);

  /// The completed intervals before `now_ms`, oldest first, at most max_samples of them,
  /// starting with the first interval that has a copy.
  std::vector<activity_sample> samples(int64_t now_ms);

 private:
  struct copy {
    int64_t slot = 0;
    std::vector<uint64_t> counts;
  };

  const int64_t interval_ms_;
  const size_t max_samples_;
  std::atomic<int64_t> current_slot_{-1};
  std::mutex mu_;
  source_fn source_;
  std::vector<double> bounds_;
  std::deque<copy> copies_;
};

/// The window recent_activity() reads: 5 minutes of 5-second intervals.
activity_window& global_activity();

/// Wall clock, ms since the Unix epoch.
int64_t unix_now_ms();

}  // namespace om::obs
