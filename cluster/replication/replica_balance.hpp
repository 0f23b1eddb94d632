#pragma once
// Rebalance for a replicated cluster (issue 12, "Join and leave move replicas"), as a pure
// function over what etcd holds: a member that joins (or comes back) takes its share of the
// replicas and of the primaries. It only reorders and edits the desired replica lists that
// desired_replicas (replica_moves.hpp) hands it; next_replica_step walks towards them with the
// same safe steps as a leave (add, catch up, move the primary, drop; never below min_insync).
//
// Rules:
//  - Only members with a member key that are not leaving take part (a dead member's replicas
//    stay where they are: it comes back and catches up); a shard is moved only while it is
//    healthy (its primary alive on its disk, every replica a member and in the ISR), so no move
//    waits on a dead node while holding a slot.
//  - Replicas first: while the most and the least loaded members (replicas over every shard)
//    differ by two or more, one replica moves from the most loaded to the least loaded (ties:
//    the smaller node id; lowest shard first), only from a shard it does not lead (a replica
//    move never moves a primary). A shard with more replicas than the replication factor (a
//    move between its add and its drop) drops its most loaded replica that does not lead (on a
//    tie one already in the ISR, so a newcomer being copied stays).
//  - Primaries once no replica is moving: while the members leading the most and the fewest
//    shards differ by two or more, one shard's leadership moves (its preferred primary, the
//    first of its desired list, becomes an in-sync replica of the member leading fewest).
//  - Bounded churn: at most max_shards_in_motion shards differ from what etcd holds at once
//    (leaves included; a leave is never held back by this bound, only rebalance is).
//  - A balanced cluster (both differences at most one) desires exactly what it holds: nothing
//    oscillates.
#include <cstddef>
#include <string>
#include <vector>

#include "cluster/coordination/coordination.hpp"

namespace ordermesh::cluster::replication {

/// How many shards rebalance lets be in the middle of a move at once. Each replica move costs
/// a full copy of the shard (a RocksDB snapshot streamed to the new member) and each primary
/// move a brief pause of the shard's writes (epoch + 1: the new primary takes the longest tail,
/// the old one demotes): four keeps a join from copying every shard at once or pausing many
/// shards together, while the controller's own bound (--max-moves, 2 copies at a time) keeps
/// the copy pipeline full. The controller runs again after every change, so the rest follows.
inline constexpr size_t max_shards_in_motion = 4;

/// Edits `desired` (index = shard, as desired_replicas computed it for leaving members; the
/// first of each list is the preferred primary) into a balanced plan, within the bound above.
void balance_replicas(const ::ordermesh::cluster::coordination::cluster_state& state,
                      std::vector<std::vector<std::string>>& desired);

}  // namespace ordermesh::cluster::replication
