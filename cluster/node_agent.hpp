#pragma once
// The node agent: this node's member of the cluster. It joins (or founds) the cluster, sends and
// watches heartbeats, keeps the cluster view (members and shard map) and, on the coordinator,
// changes it: admits nodes, marks them unreachable and up again, and moves shards one bounded
// step at a time. It runs the handoff protocol on both ends and publishes the routing table the
// rest of the node uses. It knows shards, not entities.
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <caf/actor.hpp>
#include <caf/fwd.hpp>

#include "cluster/cluster_messages.hpp"

namespace spdlog {
class logger;
}
namespace ordermesh::persistence {
class storage_engine;
}

namespace ordermesh::cluster {

struct agent_config {
  std::string node_id;
  std::string cluster_address;     // host:port this node's agent is published on
  std::string client_address;      // host:port of this node's client listener
  std::vector<std::string> seeds;  // host:port of members to join through; empty: found/restart
  uint16_t shard_count = 64;
  std::chrono::milliseconds heartbeat_interval{500};
  std::chrono::milliseconds failure_timeout{3000};
  std::chrono::milliseconds request_timeout{5000};  // one agent-to-agent request
  size_t max_concurrent_moves = 2;
  size_t chunk_bytes = 256 * 1024;
  /// Fault injection only: a pause between chunks, so tests can kill a target mid-copy.
  std::chrono::milliseconds chunk_delay{0};
  bool auto_rebalance = true;
};

/// What the agent needs from the rest of its node.
struct agent_hooks {
  std::vector<caf::actor> supervisors;  // this node's, index = shard (accept freeze/thaw)
  caf::actor wakeups;                   // accepts (scan_atom, shard)
  caf::actor unavailable;               // answers every entity message with `unavailable`
  std::function<void(routing_ptr)> publish_routes;
  /// Until when (steady clock ns; 0: not at all) this node's lease in the store is surely
  /// valid. Used by the member agent only (the node agent has no lease).
  std::function<void(int64_t)> set_lease_until;
  std::function<void()> on_left;  // this node handed off everything and left
  /// The cluster refused this node for good (another cluster, another shard count).
  std::function<void(const std::string&)> on_refused;
};

/// Starts the agent on its own thread (it does synced storage writes). The view on disk, if any,
/// is loaded first: a restarted node serves its shards at once and rejoins in the background.
/// Without a view and without seeds it founds a new cluster. Returns the agent, to be published
/// on the cluster port by the caller.
caf::actor spawn_node_agent(caf::actor_system& sys, agent_config cfg,
                            persistence::storage_engine& storage, agent_hooks hooks,
                            std::shared_ptr<spdlog::logger> log);

}  // namespace ordermesh::cluster
