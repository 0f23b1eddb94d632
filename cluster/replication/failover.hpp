#pragma once
// Failover and forced promotion, as pure functions over what etcd holds: which ISR member takes
// over a shard whose primary is gone, and the assignment the controller writes for it (a
// compare-and-set on the shard key's mod revision, like every shard write).
//
// Why an ISR member and only one whose incarnation matches: every position ever acknowledged to
// a client is durable on every ISR member (primary_log commits only then, and a member enters
// the ISR only once it holds everything committed). A node that restarted since it entered the
// ISR has a new incarnation and may have come back with an empty disk, so its entry no longer
// proves anything; it catches up and re-enters the ISR like any other replica.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "cluster/coordination/coordination.hpp"

namespace ordermesh::cluster::replication {

namespace coord = ::ordermesh::cluster::coordination;

enum class failover_outcome : uint8_t {
  none,         // the primary is a member at the incarnation it was given the shard with
  promote,      // write `next` (guarded by the shard's mod revision): a new primary
  unavailable,  // no ISR member left that may take over: the shard waits (or an operator forces)
  invalid,      // no such shard, or an ISR value without incarnations for every entry
};
std::string_view to_string(failover_outcome o);

struct failover_decision {
  failover_outcome outcome = failover_outcome::invalid;
  coord::shard_assignment next;  // promote: the assignment to write
  std::string reason;            // unavailable, invalid: why, for the log and cluster.status
};

/// The primary of `shard` has failed when no member record has its node id at the incarnation
/// its ISR entry records (the lease expired, or it rejoined as a new life). Then: the first ISR
/// member (in ISR order, members that are not leaving first) whose member record still has the
/// incarnation its ISR entry records becomes primary at epoch + 1; the ISR keeps only such
/// members (the failed primary and stale entries go; the failed primary stays a replica, to
/// catch up and re-enter), any pending move is cleared. No such member: unavailable.
failover_decision choose_failover(const coord::cluster_state& state, uint16_t shard);

/// The operator's unclean promotion (`orderctl cluster.force-primary --shard N --node ID`):
/// `node`, which must be a member, becomes primary at epoch + 1 with itself alone in the ISR and
/// among the replicas. It CAN LOSE ACKNOWLEDGED WRITES: whatever was committed but is not on
/// `node` is gone, and the other replicas' tails beyond its log are truncated when they sync.
/// Only for a shard that is otherwise unavailable for good (every ISR member lost).
failover_decision force_primary(const coord::cluster_state& state, uint16_t shard,
                                const std::string& node);

}  // namespace ordermesh::cluster::replication
