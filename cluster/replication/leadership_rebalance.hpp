#pragma once
// When the controller may move leadership only to balance it (step 5 of replica_moves.hpp): not
// while the cluster is unsettled. A member that has just come back (a restart, a healed
// partition) is given its share of primaries at once otherwise, in the second after it rejoined
// the ISRs; a new primary starts with an empty ring of recent deltas, so a follower a little
// behind then needs a full copy and the shard's writes pause, and a fault in that second meets a
// cluster in motion (CHAOS.md, "Eighth session"). So a rebalance of leadership waits until every
// shard's ISR holds all its replicas and no member is suspected, and has for a while (as Kafka's
// leader rebalance and Akka's rebalance interval wait). Moving a primary off a replica that is
// to go (a leave, a removal: step 3) never waits.
#include <set>
#include <string>
#include <vector>

#include "cluster/coordination/coordination.hpp"
#include "cluster/replication/replica_moves.hpp"

namespace ordermesh::cluster::replication {

/// Every shard's ISR holds all its replicas and no member is `suspected`.
bool is_settled(const ::ordermesh::cluster::coordination::cluster_state& state,
                const std::set<std::string>& suspected);

/// Whether `step` for `current` only moves leadership to balance it: a move_primary whose
/// current primary stays among the `desired` replicas.
bool is_leadership_rebalance(const replica_step& step,
                             const ::ordermesh::cluster::coordination::shard_assignment& current,
                             const std::vector<std::string>& desired);

}  // namespace ordermesh::cluster::replication
