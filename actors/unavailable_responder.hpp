#pragma once
#include <caf/actor.hpp>
#include <caf/fwd.hpp>

namespace ordermesh::actors {

/// An actor that answers every message addressed to an entity with `unavailable`: the route of
/// shards whose owner node cannot be reached right now. Clients may retry with the same ids.
caf::actor spawn_unavailable_responder(caf::actor_system& sys);

}  // namespace ordermesh::actors
