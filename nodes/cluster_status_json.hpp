#pragma once
// The JSON of the client op cluster.status, shared by the gateway (the op) and the admin port
// (GET /status.json), so that both show the same members, shard map and counters.
#include <cstdint>

#include <nlohmann/json.hpp>

#include "actors/node_context.hpp"
#include "cluster/member_agent.hpp"

namespace ordermesh::node {

/// Members with their incarnations, the controller, each shard's primary, epoch, replicas,
/// in-sync set and pending move (from the agent's `ms`); plus this node's counters
/// (`requests`: client requests answered since start).
nlohmann::json cluster_status_json(const cluster::member_status& ms,
                                   const actors::node_context& ctx, uint64_t requests);

}  // namespace ordermesh::node
