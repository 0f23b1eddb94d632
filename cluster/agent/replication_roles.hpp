#pragma once
// The two replication roles of a node (issue 12, docs/REPLICATION.md), beside the member agent:
//   replica_leader.cpp    for each shard this node leads: sends every synced batch to the
//                         shard's other replicas, collects their acks, answers the storage
//                         engine's batch once the ISR holds it, changes the ISR by txn, and
//                         catches a replica up (the recent deltas, or a full copy);
//   replica_follower.cpp  for each shard this node follows: applies a primary's batches (and
//                         copies) to its storage, synced, refusing lower epochs, and acks;
//   replica_forget.cpp    for each shard it no longer replicates: deletes its copy once no
//                         primary can count on it.
// The leader runs on the scheduler and never blocks on a write of its own node (the storage
// engine's blocking calls wait for the batches it holds); the follower is detached, because
// each apply is a synced write. The decisions are pure: primary_log (commits, ISR proposals),
// commit_waiters, delta_ring (cluster/replication/).
#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include <caf/actor.hpp>
#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/atom.hpp>
#include <caf/fwd.hpp>

#include "cluster/agent/proven_peers.hpp"
#include "cluster/cluster_messages.hpp"
#include "cluster/coordination_driver.hpp"
#include "cluster/replica_sink.hpp"
#include "cluster/replication/delta_ring.hpp"

namespace spdlog {
class logger;
}

namespace ordermesh::cluster::agent {

/// What the member agent tells its replica leader after every change: the shard map, where
/// each peer's follower is, and this node's incarnation.
struct replication_view {
  state_ptr state;
  std::map<std::string, caf::actor> followers;  // node id -> its replica follower
  /// Peers whose cluster connection was lost and is not back: a shard this node starts to lead
  /// with one of them in its ISR proposes it for removal at once, as on a loss while leading
  /// (primary_log::connection_lost), instead of after the lag timeout. A peer never connected
  /// yet (a node starting) is not in it.
  std::set<std::string> unreachable;
  int64_t incarnation = 0;
  /// This node reaches no majority of the members (agent_state::cut_off): the shards it leads
  /// remove no follower from their ISR (primary_log::hold_removals).
  bool cut_off = false;
};
using replication_view_ptr = std::shared_ptr<const replication_view>;

/// What both roles share with the member agent.
struct replication_context {
  std::string node_id;
  persistence::storage_engine* storage = nullptr;
  std::shared_ptr<spdlog::logger> log;
  std::shared_ptr<replica_sink> sink;
  caf::actor driver;  // the coordination driver: ISR txns
  std::atomic<int64_t> incarnation{0};
  std::chrono::milliseconds request_timeout{5000};
  /// A replica that has not caught up for this long leaves the ISR (if min_insync allows).
  std::chrono::milliseconds lag_timeout{1000};
  /// A batch not committed after this long is answered unavailable (its writes stay on this
  /// disk, unacknowledged: the next primary decides whether they survive).
  std::chrono::milliseconds commit_timeout{6000};
  /// The recent deltas of every shard (index = shard): the leader's own, and the follower's
  /// applied ones (it may lead next). Guarded by rings_mu.
  std::mutex rings_mu;
  std::vector<replication::delta_ring> rings;
  /// What cluster.status shows: per shard this node leads, each follower's lag in positions.
  /// Written by the leader, read by the agent. Guarded by lag_mu.
  std::mutex lag_mu;
  std::map<uint16_t, std::map<std::string, uint64_t>> lag;
  /// Which member each connected node proved to be (the agent's): the follower takes a
  /// primary's messages only from a node that proved its id.
  std::shared_ptr<proven_peers> proven = std::make_shared<proven_peers>();
};
using replication_context_ptr = std::shared_ptr<replication_context>;

// ---- the sink -> the leader (this node only) ----
using replica_batch_atom = caf::atom_constant<caf::atom("r_batch")>;  // (replica_batch_ptr)
// ---- the agent -> the leader (this node only) ----
using replica_view_atom = caf::atom_constant<caf::atom("r_view")>;  // (replication_view_ptr)
using replica_tick_atom = caf::atom_constant<caf::atom("r_tick")>;
/// (shard, epoch) -> bool: before this node owns `shard` as its new primary at `epoch`, take the
/// longest tail among the in-sync replicas (replica_tail_atom), so that none of them holds a
/// batch the new primary lacks (it would need a full copy, which an ISR member cannot take).
/// Answers true when done, also when some replicas did not answer (bounded wait).
using replica_prepare_atom = caf::atom_constant<caf::atom("r_prepare")>;

caf::actor spawn_replica_leader(caf::actor_system& sys, replication_context_ptr ctx);
caf::actor spawn_replica_follower(caf::actor_system& sys, replication_context_ptr ctx);
/// Deletes the copy of each shard this node is no replica of any more, once that is sure
/// (replica_forget.cpp); takes replica_view_atom. Detached: each delete is a synced write.
caf::actor spawn_replica_forgetter(caf::actor_system& sys, replication_context_ptr ctx);

/// Wire form of a delta and back. from_wire fails (false) on a malformed one.
replica_delta to_wire(const persistence::shard_delta& d);
bool from_wire(const replica_delta& w, persistence::shard_delta& out);

}  // namespace ordermesh::cluster::agent

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(ordermesh::cluster::replica_batch_ptr)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(ordermesh::cluster::agent::replication_view_ptr)
