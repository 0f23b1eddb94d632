#pragma once
// Log positions and the epoch history of one shard's replicated log: which epoch wrote which
// positions. Two replicas' histories say how far their logs agree, which is what truncation at
// an epoch boundary needs (the idea of Kafka's leader-epoch cache, KIP-101/KIP-279).
//
// Why positions plus histories suffice: one primary per epoch (etcd raises an epoch only by a
// guarded txn) writes each position once, and a follower takes a primary's entries only after
// cutting its log to a prefix of that primary's log. So two logs that hold the same epoch at a
// position hold the same entries up to it (log matching), and comparing epochs position by
// position, from the bottom, finds the longest common prefix.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

namespace ordermesh::cluster::replication {

/// A position in a shard's replication log: 1 is the first entry, 0 the empty log. One
/// position is one synced batch's records of the shard (group commit), not one record.
using position = uint64_t;
/// A shard's epoch as etcd records it (coordination::shard_assignment::epoch).
using epoch_number = uint64_t;

/// Epochs kept per history. Older boundaries are dropped; positions below the oldest one kept
/// have no known epoch, and a follower whose log can only be compared there needs a full copy.
constexpr size_t max_epoch_history = 64;

/// From `first` on (until the next start), positions were written at `epoch`.
struct epoch_start {
  epoch_number epoch = 0;
  position first = 0;
  bool operator==(const epoch_start& o) const { return epoch == o.epoch && first == o.first; }
};

/// The epochs of one log, as ascending starts (epochs and first positions both ascending).
class epoch_history {
 public:
  /// Positions from `first` on are written at `epoch`. Returns false (and changes nothing) if
  /// the epoch does not grow or `first` lies before the last start. A start at the same
  /// position as the last one replaces it (that epoch wrote nothing).
  bool begin(epoch_number epoch, position first);

  /// The log was cut to `end`: starts beyond it go.
  void truncate_after(position end);

  /// The epoch that wrote `p`; 0 if unknown (p == 0, or below the oldest start kept).
  epoch_number epoch_at(position p) const;

  /// The first position whose epoch is known (the oldest start kept); 0 when empty.
  position known_from() const { return starts_.empty() ? 0 : starts_.front().first; }
  epoch_number last_epoch() const { return starts_.empty() ? 0 : starts_.back().epoch; }
  const std::vector<epoch_start>& starts() const { return starts_; }
  bool operator==(const epoch_history& o) const { return starts_ == o.starts_; }

 private:
  std::vector<epoch_start> starts_;  // at most max_epoch_history
};

/// The longest prefix on which a log ending at `a_end` with history `a` and a log ending at
/// `b_end` with history `b` agree: the largest p <= min(a_end, b_end) such that every position
/// up to p has the same epoch in both. nullopt when the histories cannot tell (the comparison
/// would need positions below what either history still knows): the caller copies in full.
std::optional<position> common_prefix(const epoch_history& a, position a_end,
                                      const epoch_history& b, position b_end);

}  // namespace ordermesh::cluster::replication
