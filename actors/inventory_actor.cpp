// The inventory entity of one product: stock, and reservations held for orders.
#include "actors/entity_command.hpp"
#include "actors/entity_kinds.hpp"

namespace ordermesh::actors {

namespace inv = domain::inventory;

caf::behavior inventory_actor(entity_actor<inventory_traits>* self, context_ptr ctx, entity_ref who,
                              caf::actor supervisor) {
  if (!start_entity(self, std::move(ctx), who))
    return {};
  auto view = [](const inv::state& s) { return inv::view(s); };
  using result = domain::inventory_view;
  return entity_behavior(
      self, supervisor,
      [=](const entity_ref&, restock_atom, const domain::principal& by, const std::string& req,
          int64_t quantity) {
        return command<result>(
            self, [&](const inv::state& s) { return inv::add_stock(s, by, req, quantity); }, view);
      },
      [=](const entity_ref&, reserve_atom, const std::string& order_id, int64_t quantity) {
        return step_command<result>(
            self, [&](const inv::state& s) { return inv::reserve(s, order_id, quantity); }, view);
      },
      [=](const entity_ref&, release_atom, const std::string& order_id) {
        return step_command<result>(
            self, [&](const inv::state& s) { return inv::release(s, order_id); }, view);
      },
      [=](const entity_ref&, commit_atom, const std::string& order_id) {
        return step_command<result>(
            self, [&](const inv::state& s) { return inv::commit(s, order_id); }, view);
      },
      [=](const entity_ref&, giveback_atom, const std::string& order_id) {
        return step_command<result>(
            self, [&](const inv::state& s) { return inv::give_back(s, order_id); }, view);
      },
      [=](const entity_ref&, read_atom, const domain::principal&) {
        return query<result>(
            self, [](const inv::state&) { return domain::failure{}; }, view);
      });
}

}  // namespace ordermesh::actors
