#pragma once
// Gives memory the process freed back to the kernel. Allocators keep freed memory for reuse
// (glibc in its arenas, one per thread that allocated, fragmented; tcmalloc in its page heap),
// so the resident size of a node that served a burst of large replies (order.list, issue 13)
// stays near its peak unless asked to give it back. The policy (when to ask) is the caller's:
// see orderd_main.cpp. Which allocator: ORDERMESH_ALLOCATOR in the top-level CMakeLists.txt.
#include <chrono>
#include <cstdint>

namespace ordermesh::node {

/// "tcmalloc" or "system": the allocator this build links (logged when orderd starts).
const char* allocator_name();

/// Asks the allocator to return its free pages to the kernel (tcmalloc's
/// MallocExtension_ReleaseFreeMemory, glibc's malloc_trim); a no-op elsewhere. glibc takes each
/// arena's lock in turn: a few ms for a heap of 100 MB.
void release_free_memory();

/// Calls release_free_memory() at most once per `interval`, while nothing is in flight, and only
/// within 6 intervals of the last request answered: memory freed after the last answer (a
/// client reading its queued replies, a connection closing) is given back too, and a node
/// left idle stops trimming. Not thread-safe: one caller, e.g. orderd's main loop.
class memory_releaser {
 public:
  explicit memory_releaser(std::chrono::milliseconds interval) : interval_(interval) {}
  using clock = std::chrono::steady_clock;
  /// `answered`: requests answered since start; `in_flight`: requests not answered yet; `now`
  /// given by tests. True when it released memory now.
  bool poll(uint64_t answered, int64_t in_flight, clock::time_point now = clock::now());

 private:
  std::chrono::milliseconds interval_;
  clock::time_point last_release_{};
  clock::time_point last_answer_{};  // when `answered` last changed; epoch: never
  uint64_t answered_ = 0;
};

}  // namespace ordermesh::node
