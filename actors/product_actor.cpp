// The product entity: created once by the admin, then read.
#include "actors/entity_command.hpp"
#include "actors/entity_kinds.hpp"

namespace ordermesh::actors {

namespace p = domain::product;

caf::behavior product_actor(entity_actor<product_traits>* self, context_ptr ctx, entity_ref who,
                            caf::actor supervisor) {
  if (!start_entity(self, std::move(ctx), who))
    return not_started_behavior(self, supervisor);
  auto view = [](const p::state& s) { return p::view(s); };
  return entity_behavior(
      self, supervisor,
      [=](const entity_ref&, create_atom, const domain::principal& by, const std::string& name,
          int64_t price_cents) {
        auto now = self->state.ctx->now_ms();
        return command<domain::product_view>(
            self, [&](const p::state& s) { return p::create(s, by, name, price_cents, now); },
            view);
      },
      [=](const entity_ref&, read_atom, const domain::principal&) {
        return query<domain::product_view>(
            self, [](const p::state& s) { return p::check_read(s); }, view);
      });
}

}  // namespace ordermesh::actors
