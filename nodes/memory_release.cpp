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

bool memory_releaser::poll(uint64_t answered, int64_t in_flight, clock::time_point now) {
  if (answered != answered_) {
    answered_ = answered;
    last_answer_ = now;
  }
  // Under load the memory is about to be used again: trimming then only costs page faults.
  if (in_flight > 0 || now - last_release_ < interval_ || last_answer_ == clock::time_point{} ||
      now - last_answer_ > 6 * interval_)
    return false;
  last_release_ = now;
  release_free_memory();
  return true;
}

}  // namespace ordermesh::node
