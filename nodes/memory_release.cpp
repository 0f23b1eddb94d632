#include "nodes/memory_release.hpp"

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace ordermesh::node {

void release_free_memory() {
#if defined(__GLIBC__)
  malloc_trim(0);
#endif
}

bool memory_releaser::poll(uint64_t answered, int64_t in_flight) {
  auto now = std::chrono::steady_clock::now();
  // Under load the memory is about to be used again: trimming then only costs page faults.
  if (answered == answered_at_last_ || in_flight > 0 || now - last_ < interval_)
    return false;
  last_ = now;
  answered_at_last_ = answered;
  release_free_memory();
  return true;
}

}  // namespace ordermesh::node
