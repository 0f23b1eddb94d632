#pragma once
// Gives memory the process freed back to the kernel. glibc keeps freed memory in its arenas
// (one per thread that allocated it, fragmented), so the resident size of a node that served a
// burst of large replies (order.list, issue 13) stays at its peak for the rest of its life
// unless asked to trim. The policy (when to ask) is the caller's: see orderd_main.cpp.
#include <chrono>
#include <cstdint>

namespace ordermesh::node {

/// Asks the allocator to return free pages of every arena to the kernel (glibc malloc_trim);
/// a no-op elsewhere. Takes each arena's lock in turn: a few ms for a heap of 100 MB.
void release_free_memory();

/// Calls release_free_memory() at most once per `interval`, and only once the node has been
/// quiet (nothing in flight) after answering requests since the last call. Not thread-safe:
/// one caller, e.g. orderd's main loop.
class memory_releaser {
 public:
  explicit memory_releaser(std::chrono::milliseconds interval) : interval_(interval) {}
  /// `answered`: requests answered since start; `in_flight`: requests not answered yet.
  /// True when it released memory now.
  bool poll(uint64_t answered, int64_t in_flight);

 private:
  std::chrono::milliseconds interval_;
  std::chrono::steady_clock::time_point last_{};
  uint64_t answered_at_last_ = 0;
};

}  // namespace ordermesh::node
