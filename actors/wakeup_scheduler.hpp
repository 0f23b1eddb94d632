#pragma once
#include <caf/actor.hpp>
#include <caf/fwd.hpp>

#include "actors/node_context.hpp"

namespace ordermesh::actors {

/// Reads the wakeup index once and wakes each entity in it when its time comes.
caf::actor spawn_wakeup_scheduler(caf::actor_system& sys, const context_ptr& ctx);

}  // namespace ordermesh::actors
