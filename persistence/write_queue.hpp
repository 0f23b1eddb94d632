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

/// The answer of a replication sink for one batch. Guarded by the queue's mutex: posting it is
/// what wakes the writer.
struct ack_slot {
  bool answered = false;
  status result;
};

/// Many producers, one consumer. Bounded so that a slow disk pushes back on submitters instead
/// of growing memory without limit. Two lanes: the main one, and one for replica operations
/// (apply_replicated, fence_replica) that the writer takes even while it holds the maximum of
/// unacknowledged batches, so that a follower keeps answering its primary whatever its own
/// primary role waits for.
class write_queue {
 public:
  enum class lane { main, replica };
  explicit write_queue(size_t capacity);

  /// Appends `w` to `to` unless the queue failed, is closed, or (when `bounded`) that lane holds
  /// `capacity` entries; then returns false, leaves `w` untouched and sets *why.
  bool push(pending_write& w, bool bounded, status* why, lane to = lane::main);

  /// Blocks until there is something for the writer: replica entries, main entries when
  /// `take_main`, an ack posted since the last call, or closed with both lanes empty. Moves up to
  /// `max` entries of each lane, in push order, to the end of `replica` and `main`. Returns false
  /// only when closed, both lanes are empty and `holding` (the writer has unanswered batches) is
  /// false: then nothing more will ever come.
  bool take(size_t max, bool take_main, bool holding, std::vector<pending_write>& replica,
            std::vector<pending_write>& main);

  /// Records the sink's answer in `slot` (the first one only: a second call is ignored and
  /// returns false) and wakes the writer.
  bool post_ack(ack_slot& slot, status result);
  /// Whether `slot` was answered; if so, its answer in *result.
  bool answered(const ack_slot& slot, status* result) const;

  /// Refuses every later push with status closed; entries already queued can still be taken.
  void close();
  /// Refuses every later push with `error` (kept over a later close, so callers learn why).
  void fail(const status& error);

  size_t size() const;

 private:
  const size_t capacity_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<pending_write> items_;
  std::deque<pending_write> replica_items_;
  size_t acks_posted_ = 0;  // since the last take()
  bool closed_ = false;
  status failure_;
};

}  // namespace ordermesh::persistence::detail
