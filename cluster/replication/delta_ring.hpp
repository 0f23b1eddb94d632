#pragma once
// The recent replication deltas of one shard, in memory: what a primary sends a replica that
// is a little behind (a restart, a slow disk, a lost message) without copying the whole shard.
// The storage engine keeps key/value states, not a log (persistence/storage_engine.hpp), so
// positions older than what this ring holds can only be caught up by a full copy.
//
// Bounded twice: by count and by bytes. The oldest deltas go first. Positions are contiguous:
// a delta that does not follow the last one starts the ring again at its position (a full copy
// was installed, or this node's log was reset), so the ring never holds a gap.
#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <vector>

#include "cluster/replication/epoch_history.hpp"
#include "persistence/storage_engine.hpp"

namespace ordermesh::cluster::replication {

class delta_ring {
 public:
  delta_ring(size_t max_deltas, size_t max_bytes)
      : max_deltas_(max_deltas), max_bytes_(max_bytes) {}

  /// Appends `d` (position last() + 1), or starts again at `d` when it does not follow.
  void push(persistence::shard_delta d);
  void clear();
  /// First and last position held; 0 when empty.
  position first() const { return ring_.empty() ? 0 : ring_.front().position; }
  position last() const { return ring_.empty() ? 0 : ring_.back().position; }
  /// Deltas from position `from` on, at most `max_count` and about `max_bytes` (at least one).
  /// Empty when `from` is past last(); nullopt when `from` is no longer (or never was) held:
  /// the replica needs a full copy.
  std::optional<std::vector<persistence::shard_delta>> from(position from, size_t max_count,
                                                            size_t max_bytes) const;
  size_t bytes() const { return bytes_; }

  /// Bytes one delta counts for against the bound.
  static size_t size_of(const persistence::shard_delta& d);

 private:
  size_t max_deltas_;
  size_t max_bytes_;
  size_t bytes_ = 0;
  std::deque<persistence::shard_delta> ring_;
};

}  // namespace ordermesh::cluster::replication
