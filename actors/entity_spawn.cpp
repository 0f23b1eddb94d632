#include "actors/entity_actors.hpp"

#include <caf/local_actor.hpp>
#include <caf/spawn_options.hpp>

#include "actors/entity_kinds.hpp"

namespace ordermesh::actors {

caf::actor spawn_entity(caf::local_actor* supervisor, const context_ptr& ctx,
                        const entity_ref& who) {
  // Monitored, not linked: CAF 0.17 keeps a supervisor's links in one list that it scans on every
  // child's exit, so with links each passivation cost O(active entities of the shard) (40 % of
  // the CPU once settled orders passivated under load). The supervisor ends its children itself.
  auto sup = caf::actor_cast<caf::actor>(supervisor);
  switch (static_cast<domain::entity_kind>(who.kind)) {
    case domain::entity_kind::user:
      return supervisor->spawn<caf::monitored>(user_actor, ctx, who, sup);
    case domain::entity_kind::product:
      return supervisor->spawn<caf::monitored>(product_actor, ctx, who, sup);
    case domain::entity_kind::inventory:
      return supervisor->spawn<caf::monitored>(inventory_actor, ctx, who, sup);
    case domain::entity_kind::order:
      return supervisor->spawn<caf::monitored>(order_actor, ctx, who, sup);
  }
  // Kinds come from the node's own code, never from a client; an unknown one is a bug.
  throw std::logic_error("spawn_entity: unknown entity kind " + std::to_string(who.kind));
}

}  // namespace ordermesh::actors
