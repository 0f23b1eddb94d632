#pragma once
// The member agent: this node's part in a cluster coordinated by a consensus store (etcd, or
// the local store of a node alone). The store decides who is a member, who is the controller
// and who leads each shard at which epoch; this agent only follows it:
//   - after every change it runs the shard reconciler (cluster/coordination/shard_reconciler.hpp)
//     and carries its steps out: own a shard, hand one over (freeze, release, copy in chunks),
//     receive one and write the flip, abort a failed move, drop what is no longer ours;
//   - when it is the controller, it bootstraps the shard map and writes move intents from the
//     placement (cluster/coordination/placement.hpp);
//   - it routes each shard to its primary's supervisor, and its own shards to `unavailable`
//     once its lease is not surely valid any more (it may have lost them without knowing);
//   - it connects to the other members' agents (CAF BASP) for routing and shard copies.
// It knows shards, not entities. The store talks to it through the coordination driver. The
// implementation is one file per role in cluster/agent/ (agent_state.hpp lists them).
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/atom.hpp>
#include <caf/expected.hpp>
#include <caf/fwd.hpp>

#include "cluster/cluster_messages.hpp"
#include "cluster/coordination/coordination.hpp"

namespace spdlog {
class logger;
}
namespace ordermesh::persistence {
class storage_engine;
}
namespace ordermesh::cluster {
class replica_sink;
}

namespace ordermesh::cluster {

/// What the agent needs from the rest of its node.
struct agent_hooks {
  std::vector<caf::actor> supervisors;  // this node's, index = shard (accept freeze/thaw)
  caf::actor wakeups;                   // accepts (scan_atom, shard)
  caf::actor unavailable;               // answers every entity message with `unavailable`
  std::function<void(routing_ptr)> publish_routes;
  /// Until when (steady clock ns; 0: not at all) this node's lease in the store is surely
  /// valid. Unset: the node does not gate on its lease (a node alone).
  std::function<void(int64_t)> set_lease_until;
  std::function<void()> on_left;  // this node handed off everything and left
  /// After drain_atom: this node leads no shard any more (a replicated cluster).
  std::function<void()> on_drained;
  /// The store refused this node for good (another cluster's data dir).
  std::function<void(const std::string&)> on_refused;
  /// This node became (true) or stopped being (false) cut off from its peers (reaches no
  /// majority of the members that may be alive): the client listener then tells clients to
  /// send their retries to another node (docs/PROTOCOL.md, "retry_elsewhere").
  std::function<void(bool)> on_cut_off;
  /// Opens a connection to the agent published at host:port (blocks; the agent calls it from
  /// a detached actor). Unset: CAF's plain middleman. The node passes caf::openssl's for
  /// mutual TLS; the agent does not need to know which transport it gets.
  std::function<caf::expected<caf::actor>(caf::actor_system&, const std::string& host,
                                          uint16_t port)>
      connect;
  /// Proves this node's id to its peers and checks theirs in the hello (nodes/tls_peer_prover:
  /// the cluster certificate). Unset: identity::make_insecure_prover (every claim believed).
  std::shared_ptr<identity::identity_prover> prover;
};

struct member_agent_config {
  std::string node_id;
  std::string cluster_address;  // host:port this node's agent is published on
  std::string client_address;   // host:port of this node's client listener
  uint16_t shard_count = 64;
  std::chrono::milliseconds lease_ttl{3000};
  std::chrono::milliseconds request_timeout{5000};  // one agent-to-agent request
  /// How long a primary waits for the target's flip after the last chunk before it aborts.
  std::chrono::milliseconds flip_timeout{15000};
  /// How long a primary tries to reach a move's target before it aborts the move.
  std::chrono::milliseconds connect_timeout{10000};
  size_t max_concurrent_moves = 2;
  size_t chunk_bytes = 256 * 1024;
  /// Fault injection only: a pause between chunks, so tests can kill a node mid-copy.
  std::chrono::milliseconds chunk_delay{0};
  /// Replication (issue 12), written into the store's config by the member that bootstraps
  /// the cluster (the store's value rules after that): copies of each shard, and the in-sync
  /// copies a write needs before it is acknowledged. A replicated cluster is created only once
  /// replication_factor members have joined.
  uint16_t replication_factor = 1;
  uint16_t min_insync = 1;
  /// A replica that has not caught up for this long leaves the ISR (if min_insync allows).
  std::chrono::milliseconds replica_lag_timeout{1000};
  /// A write not acknowledged by the in-sync replicas after this long answers unavailable.
  std::chrono::milliseconds commit_timeout{6000};
  /// Replicated cluster: the controller fails over the shards a member leads once its cluster
  /// connection to that member has been down this long (0: only once its lease has expired).
  /// Safe at any time (docs/REPLICATION.md, "Failover"): only availability depends on it.
  std::chrono::milliseconds suspect_after{1000};
  /// Replicated cluster without a shard map yet: how long the controller waits for
  /// replication_factor members before creating it on fewer (at least min_insync; 0: wait).
  std::chrono::milliseconds bootstrap_grace{10000};
  /// Replicated cluster: the controller removes a node that has had no member key this long
  /// (replication/member_removal.hpp); 0: never, only the operator's cluster.remove-member.
  std::chrono::milliseconds dead_member_timeout{300000};
  /// This node's disk identity (node_meta: made with the data dir), published in its member
  /// record; in replication it is what an ISR entry names (docs/REPLICATION.md).
  int64_t disk = 0;
};

/// What cluster.status shows of a store-coordinated cluster.
struct member_status {
  std::string coordination;  // the store: "etcd" or "local"
  std::string cluster_id;    // empty before the store holds a config
  std::string controller;    // node id, empty when none
  int64_t incarnation = 0;   // this node's
  bool lease_valid = false;  // this node's lease is surely valid now
  /// This node reaches no majority of the members that may be alive (agent_state::cut_off):
  /// the others take its shards over, so /readyz sends clients elsewhere meanwhile.
  bool cut_off = false;
  std::vector<coordination::member_record> members;
  std::vector<coordination::shard_assignment> shards;
  std::vector<std::string> unreachable;  // members this node has no connection to
  /// Nodes shards name without a member key (the clock of --dead-member-timeout), and dead
  /// nodes whose replicas are being replaced (docs/REPLICATION.md, "A member that dies for good").
  std::vector<coordination::departure_record> absent;
  std::vector<coordination::departure_record> removed;
  /// For each shard this node leads with replicas: how many positions (synced batches) each
  /// follower is behind this node's log, as of its last answer.
  std::map<uint16_t, std::map<std::string, uint64_t>> follower_lag;
};

/// (member_status_atom) -> member_status
using member_status_atom = caf::atom_constant<caf::atom("m_status")>;

/// (force_primary_atom, uint16_t shard, std::string node_id) -> (bool done, uint64_t epoch,
/// std::string why): the operator's unclean promotion (orderctl cluster.force-primary):
/// `node_id` becomes the shard's primary at epoch + 1, alone in its ISR. CAN LOSE ACKNOWLEDGED
/// WRITES (docs/REPLICATION.md, "Failover"). Asked by this node's gateway only.
using force_primary_atom = caf::atom_constant<caf::atom("m_force")>;

/// (remove_member_atom, std::string node_id) -> (std::string refusal, std::string why): the
/// operator's removal of a dead node (orderctl cluster.remove-member): a `removed` record in
/// the store, after which the controller replaces the node's replicas. `refusal` is empty when
/// recorded (or under way already), else replication::to_string(removal_refusal) ("live_member",
/// "unknown", "too_few_members", "not_replicated") or "store" (the store did not take it).
/// Asked by this node's gateway only.
using remove_member_atom = caf::atom_constant<caf::atom("m_remove")>;

/// (drain_atom) -> bool: a controlled shutdown in a replicated cluster (SIGTERM with --drain).
/// True: this member now asks to be drained (member_record::draining: the controller moves the
/// leadership of its shards to in-sync replicas) and calls agent_hooks::on_drained once it
/// leads nothing. False: the cluster is not replicated (hand the shards off by leave_atom).
/// Asked by this node's main only.
using drain_atom = caf::atom_constant<caf::atom("m_drain")>;

}  // namespace ordermesh::cluster

// Asked by this node's gateway only: never serialized.
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(ordermesh::cluster::member_status)

namespace ordermesh::cluster {

/// Starts the agent and its coordination driver (both detached: storage and store calls block).
/// Routes are published once the store holds a shard map. Returns the agent, to be published on
/// the cluster port by the caller. Accepts (leave_atom, node_id) -> bool like the node agent.
/// `sink`, the one given to `storage` (storage_options::replication), makes this node take part
/// in replication (its replica leader and follower start with the agent); null: a node alone.
caf::actor spawn_member_agent(caf::actor_system& sys, member_agent_config cfg,
                              persistence::storage_engine& storage, agent_hooks hooks,
                              std::unique_ptr<coordination::session> session,
                              std::shared_ptr<spdlog::logger> log,
                              std::shared_ptr<replica_sink> sink = nullptr);

}  // namespace ordermesh::cluster
