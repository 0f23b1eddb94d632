#pragma once
// The two scalar metric kinds. Recording is one relaxed atomic operation: no lock, no allocation,
// safe from any thread (the hot path of every request).
#include <atomic>
#include <cstdint>

namespace om::obs {

/// A count that only goes up (Prometheus `counter`): requests, restarts, bytes written.
class counter {
 public:
  void inc(uint64_t n = 1) noexcept { value_.fetch_add(n, std::memory_order_relaxed); }
  uint64_t value() const noexcept { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> value_{0};
};

/// A level that goes up and down (Prometheus `gauge`): open connections, ISR size.
class gauge {
 public:
  void set(int64_t v) noexcept { value_.store(v, std::memory_order_relaxed); }
  void add(int64_t n) noexcept { value_.fetch_add(n, std::memory_order_relaxed); }
  int64_t value() const noexcept { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<int64_t> value_{0};
};

}  // namespace om::obs
