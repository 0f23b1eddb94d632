// The user entity: registration, credentials for login, wallet, the list of its orders.
#include "actors/entity_command.hpp"
#include "actors/entity_kinds.hpp"
#include "actors/entity_traits.hpp"

namespace ordermesh::actors {

namespace u = domain::user;
using self_ptr = entity_actor<user_traits>*;

caf::behavior user_actor(self_ptr self, context_ptr ctx, entity_ref who, caf::actor supervisor) {
  if (!start_entity(self, std::move(ctx), who))
    return not_started_behavior(self, supervisor);
  auto view = [](const u::state& s) { return u::view(s); };
  return entity_behavior(
      self, supervisor,
      [=](const entity_ref&, register_atom, const std::string& name, const std::string& hash) {
        auto now = self->state.ctx->now_ms();
        return command<domain::user_view>(
            self, [&](const u::state& s) { return u::register_user(s, name, hash, now); }, view);
      },
      [=](const entity_ref&, creds_atom) {
        // A read like any other: a registration is not usable for a login before it is durable
        // (and committed, in a replicated cluster).
        return query<credentials>(
            self,
            [](const u::state& s) {
              return s.exists ? domain::failure{}
                              : domain::failure{domain::errc::not_found, "no such user"};
            },
            [](const u::state& s) { return credentials{s.password_hash}; });
      },
      [=](const entity_ref&, deposit_atom, const domain::principal& p, const std::string& req,
          int64_t cents) -> caf::result<domain::user_view> {
        if (self->state.ctx->settings().fault_ack_without_write) {
          // Planted fault (see entity_settings): apply and answer, write nothing.
          auto d = u::deposit(self->state.st, p, req, cents);
          if (!d.ok())
            return make_error(d.error);
          for (auto& e : d.events)
            u::apply(self->state.st, e);
          return u::view(self->state.st);
        }
        return command<domain::user_view>(
            self, [&](const u::state& s) { return u::deposit(s, p, req, cents); }, view);
      },
      [=](const entity_ref&, debit_atom, const std::string& order_id, int64_t cents) {
        return step_command<domain::user_view>(
            self, [&](const u::state& s) { return u::debit(s, order_id, cents); }, view);
      },
      [=](const entity_ref&, refund_atom, const std::string& order_id) {
        return step_command<domain::user_view>(
            self, [&](const u::state& s) { return u::refund(s, order_id); }, view);
      },
      [=](const entity_ref&, link_atom, const std::string& order_id) {
        // The reservation starts now: its slot counts until it lapses, plus the margin.
        auto& node = *self->state.ctx;
        auto now = node.now_ms();
        auto until = now + node.settings().reservation_ttl_ms + node.settings().slot_grace.count();
        return step_command<domain::user_view>(
            self, [&](const u::state& s) { return u::link_order(s, order_id, now, until); }, view);
      },
      [=](const entity_ref&, claim_atom, const std::string& order_id, int64_t units) {
        auto& node = *self->state.ctx;
        auto now = node.now_ms();
        u::reservation_caps caps{node.settings().max_open_orders_per_user,
                                 node.settings().max_reserved_units_per_user};
        auto until = now + node.settings().slot_grace.count();
        return step_command<domain::user_view>(
            self,
            [&](const u::state& s) { return u::claim_slot(s, order_id, units, caps, now, until); },
            view);
      },
      [=](const entity_ref&, unclaim_atom, const std::string& order_id) {
        auto r = step_command<domain::user_view>(
            self, [&](const u::state& s) { return u::close_slot(s, order_id); }, view);
        // Closing is never refused, also for a user never registered (an admin's order for an
        // unknown id): that one must not stay in memory.
        forget_if_never_created(self);
        return r;
      },
      [=](const entity_ref&, orders_atom, const domain::principal& p) {
        return query<order_ids>(
            self, [&](const u::state& s) { return u::check_read(s, p); },
            [](const u::state& s) { return order_ids{s.orders}; });
      },
      [=](const entity_ref&, read_atom, const domain::principal& p) {
        return query<domain::user_view>(
            self, [&](const u::state& s) { return u::check_read(s, p); }, view);
      });
}

}  // namespace ordermesh::actors
