#pragma once
// The entity layer of a node: node root -> one supervisor per shard -> entity actors.
#include <vector>

#include <caf/actor.hpp>
#include <caf/fwd.hpp>

#include "actors/node_context.hpp"

namespace ordermesh::actors {

struct entity_layer {
  std::vector<caf::actor> supervisors;  // index = shard
  caf::actor wakeups;
};

/// Spawns every shard's supervisor (and records them in ctx as the routing table), then the
/// wakeup scheduler. Call once, before any request is routed.
entity_layer start_entity_layer(caf::actor_system& sys, const context_ptr& ctx);

/// Stops every actor of the layer (entities stop with their supervisors).
void stop_entity_layer(entity_layer& layer);

}  // namespace ordermesh::actors
