#include "nodes/memory_release.hpp"

#if defined(ORDERMESH_TCMALLOC)
#include <gperftools/malloc_extension_c.h>
#elif defined(__GLIBC__)
#include <malloc.h>
#endif

namespace ordermesh::node {

const char* allocator_name() {
#if defined(ORDERMESH_TCMALLOC)
  return "tcmalloc";
#else
  return "system";
#endif
}

void release_free_memory() {
#if defined(ORDERMESH_TCMALLOC)
  // tcmalloc also returns free spans on its own, a little at a time (TCMALLOC_RELEASE_RATE);
  // this hands back every free page of its page heap at once.
  MallocExtension_ReleaseFreeMemory();
#elif defined(__GLIBC__)
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
