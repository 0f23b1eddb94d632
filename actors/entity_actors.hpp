#pragma once
// Spawn functions of the entity actors, one per kind. Each actor recovers its state from the
// journal when it starts; its supervisor routes every message for its id to it.
#include <caf/actor.hpp>
#include <caf/fwd.hpp>

#include "actors/messages.hpp"
#include "actors/node_context.hpp"

namespace ordermesh::actors {

/// Spawns the actor of entity `who`, monitored by `supervisor` (the caller).
caf::actor spawn_entity(caf::local_actor* supervisor, const context_ptr& ctx,
                        const entity_ref& who);

}  // namespace ordermesh::actors
