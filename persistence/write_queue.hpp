#pragma once
// Internal: the bounded queue between submitters and the single writer thread.
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <mutex>
#include <vector>

#include "persistence/status.hpp"
#include "persistence/write_batch.hpp"

namespace ordermesh::persistence::detail {

/// Many producers, one consumer. Bounded so that a slow disk pushes back on submitters instead
/// of growing memory without limit.
class write_queue {
 public:
  explicit write_queue(size_t capacity);

  /// Appends `w` unless the queue failed, is closed, or (when `bounded`) holds `capacity` entries;
  /// then returns false, leaves `w` untouched and sets *why.
  bool push(pending_write& w, bool bounded, status* why);

  /// Blocks until something is queued or the queue is closed, then moves up to `max` entries, in
  /// push order, to the end of `out`. Returns false only when closed and empty.
  bool pop_batch(size_t max, std::vector<pending_write>& out);

  /// Refuses every later push with status closed; entries already queued can still be popped.
  void close();
  /// Refuses every later push with `error` (kept over a later close, so callers learn why).
  void fail(const status& error);

  size_t size() const;

 private:
  const size_t capacity_;
  mutable std::mutex mutex_;
  std::condition_variable not_empty_;
  std::deque<pending_write> items_;
  bool closed_ = false;
  status failure_;
};

}  // namespace ordermesh::persistence::detail
