#pragma once
// Placement: which shard moves where, decided by the controller from what the store holds.
// Pure and deterministic: the same state gives the same plan on any node, so a new controller
// picks up where the last one stopped without any state of its own.
#include <cstddef>
#include <string>
#include <vector>

#include "cluster/coordination/coordination.hpp"

namespace ordermesh::cluster::coordination {

/// One move to start: the controller writes `shard`'s assignment with `target = to` (same
/// primary, same epoch); the primary then hands the shard over.
struct planned_move {
  uint16_t shard = 0;
  std::string from;
  std::string to;
};

/// The moves that bring the shard map towards balance, at most `max_moves` pending at once
/// (moves already pending in the state count against the bound):
///  - a leaving member's shards go to the least loaded members that stay;
///  - then from the most to the least loaded member while they differ by more than one;
///  - only shards whose primary is a member (alive: its key exists) and that have no move
///    pending can move; a dead primary's shards wait for it (without replication nobody else
///    holds their data);
///  - load counts every shard a member leads, plus moves pending towards it.
/// Ties break by node id, then by shard number, highest first.
std::vector<planned_move> plan_moves(const cluster_state& state, size_t max_moves);

/// `state`'s assignment of `move.shard` with the move's target set, ready for write_shard.
shard_assignment with_target(const cluster_state& state, const planned_move& move);

}  // namespace ordermesh::cluster::coordination
