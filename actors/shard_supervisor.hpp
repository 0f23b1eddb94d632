#pragma once
#include <cstdint>

#include <caf/actor.hpp>
#include <caf/fwd.hpp>

#include "actors/node_context.hpp"

namespace ordermesh::actors {

/// Spawns the supervisor of `shard`: it accepts every message addressed to an entity of the
/// shard (first element an entity_ref), activates, routes, passivates and restarts entities.
/// Answers (stats_atom) with the number of entities it holds.
caf::actor spawn_shard_supervisor(caf::actor_system& sys, const context_ptr& ctx, uint16_t shard);

}  // namespace ordermesh::actors
