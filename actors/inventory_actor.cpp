// The inventory entity of one product: stock, and reservations held for orders.
//
// An inventory belongs to a product: it exists once the product does, even before any stock was
// added (it then reads as zeros). Until it has an event of its own, a client's read or restock
// first asks the product; for a product that was never created it answers `not_found` and
// leaves memory at once, writing nothing (issue 13: reads of unknown ids must not pile up
// actors). Saga steps (reserve, release, commit, give back) come only from orders, which priced
// every product before their first step, so they are not asked again.
#include "actors/entity_command.hpp"
#include "actors/entity_kinds.hpp"

namespace ordermesh::actors {

namespace inv = domain::inventory;
using self_ptr = entity_actor<inventory_traits>*;

namespace {

/// Runs `cmd` once the product is known to exist; answers `rp` with `not_found` (a product
/// never created) or the retryable error of the lookup instead. Commands that arrive meanwhile
/// wait (the entity is busy), so they never see a half-known inventory.
void with_product(self_ptr self, caf::response_promise rp, std::function<void()> cmd) {
  auto& s = self->state;
  if (!never_created(self) || s.extra.product_known) {
    cmd();
    return;
  }
  s.busy = true;
  auto& ctx = *s.ctx;
  auto to = ref(domain::entity_kind::product, s.key.id);
  self->request(ctx.route(to), ctx.settings().step_timeout, to, read_atom::value,
                domain::principal{"", true})
      .then(
          [self, cmd](const domain::product_view&) {
            self->state.extra.product_known = true;
            cmd();
            finish_busy(self);
          },
          [self, rp, to](caf::error& err) mutable {
            auto f = to_failure(err);
            if (f.code == domain::errc::not_found)
              f.message = "no inventory: product " + to.id + " does not exist";
            rp.deliver(make_error(f));
            finish_busy(self);
            forget_if_never_created(self);
          });
}

}  // namespace

caf::behavior inventory_actor(self_ptr self, context_ptr ctx, entity_ref who,
                              caf::actor supervisor) {
  if (!start_entity(self, std::move(ctx), who))
    return not_started_behavior(self, supervisor);
  auto view = [](const inv::state& s) { return inv::view(s); };
  using result = domain::inventory_view;
  return entity_behavior(
      self, supervisor,
      [=](const entity_ref&, restock_atom, const domain::principal& by, const std::string& req,
          int64_t quantity) -> caf::result<result> {
        auto rp = self->make_response_promise();
        run_or_defer(self, rp, [=] {
          // Who may restock, and how much, is answered before the product is looked up.
          auto d = inv::add_stock(self->state.st, by, req, quantity);
          if (!d.ok()) {
            refuse(self, rp, d.error);
            return;
          }
          with_product(self, rp, [=] {
            decide_and_reply(self, rp, inv::add_stock(self->state.st, by, req, quantity), view);
          });
        });
        return rp;
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
      [=](const entity_ref&, read_atom, const domain::principal&) -> caf::result<result> {
        auto rp = self->make_response_promise();
        run_or_defer(self, rp,
                     [=] { with_product(self, rp, [=] { reply_read(self, rp, view); }); });
        return rp;
      });
}

}  // namespace ordermesh::actors
