#include "actors/entity_actors.hpp"

#include <caf/local_actor.hpp>
#include <caf/spawn_options.hpp>

#include "actors/entity_kinds.hpp"

namespace ordermesh::actors {

caf::actor spawn_entity(caf::local_actor* supervisor, const context_ptr& ctx,
                        const entity_ref& who) {
  auto sup = caf::actor_cast<caf::actor>(supervisor);
  switch (static_cast<domain::entity_kind>(who.kind)) {
    case domain::entity_kind::user:
      return supervisor->spawn<caf::monitored + caf::linked>(user_actor, ctx, who, sup);
    case domain::entity_kind::product:
      return supervisor->spawn<caf::monitored + caf::linked>(product_actor, ctx, who, sup);
    case domain::entity_kind::inventory:
      return supervisor->spawn<caf::monitored + caf::linked>(inventory_actor, ctx, who, sup);
    case domain::entity_kind::order:
      return supervisor->spawn<caf::monitored + caf::linked>(order_actor, ctx, who, sup);
  }
  // Kinds come from the node's own code, never from a client; an unknown one is a bug.
  throw std::logic_error("spawn_entity: unknown entity kind " + std::to_string(who.kind));
}

}  // namespace ordermesh::actors
