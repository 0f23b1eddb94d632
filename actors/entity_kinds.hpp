#pragma once
// The behavior functions of the four entity kinds (one .cpp each).
#include <caf/actor.hpp>
#include <caf/behavior.hpp>

#include "actors/entity_core.hpp"
#include "actors/entity_traits.hpp"

namespace ordermesh::actors {

caf::behavior user_actor(entity_actor<user_traits>* self, context_ptr ctx, entity_ref who,
                         caf::actor supervisor);
caf::behavior product_actor(entity_actor<product_traits>* self, context_ptr ctx, entity_ref who,
                            caf::actor supervisor);
caf::behavior inventory_actor(entity_actor<inventory_traits>* self, context_ptr ctx, entity_ref who,
                              caf::actor supervisor);
/// The order answers its saga's waiters when it stops early (defined in order_actor.cpp).
template <>
void fail_waiters<order_traits>(entity_actor<order_traits>* self, const domain::failure& why);

caf::behavior order_actor(entity_actor<order_traits>* self, context_ptr ctx, entity_ref who,
                          caf::actor supervisor);

}  // namespace ordermesh::actors
