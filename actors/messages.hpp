#pragma once
// The messages entity actors understand. Every message to an entity starts with the entity_ref
// that addresses it, so routers and supervisors can forward any message without knowing its type.
//
//   (entity_ref, atom, args...)  ->  a view, or a caf::error (category "ordermesh", see errors.hpp)
//
// Saga steps between entities use the same messages as clients would, with a system principal.
#include <cstdint>
#include <string>

#include <caf/atom.hpp>
#include <caf/fwd.hpp>

#include "domain/types.hpp"

namespace ordermesh::actors {

/// Addresses one entity: its kind and id. Every message to an entity starts with one, so it is
/// also the envelope that carries the request id (domain/request_id.hpp) to whichever node runs
/// the entity: the gateway sets it, and the order's saga sets it on every step it asks.
struct entity_ref {
  uint8_t kind = 0;  // domain::entity_kind
  std::string id;
  std::string req{};  // the request this message serves; empty for internal messages
};
template <class Inspector>
auto inspect(Inspector& f, entity_ref& x) {
  return f(x.kind, x.id, x.req);
}
inline entity_ref ref(domain::entity_kind k, std::string id, std::string req = {}) {
  return entity_ref{static_cast<uint8_t>(k), std::move(id), std::move(req)};
}

/// A user's password hash as stored (for login verification by the node, never by clients).
struct credentials {
  std::string password_hash;
};
template <class Inspector>
auto inspect(Inspector& f, credentials& x) {
  return f(x.password_hash);
}

/// Ids of a user's orders, oldest first.
struct order_ids {
  std::vector<std::string> ids;
};
template <class Inspector>
auto inspect(Inspector& f, order_ids& x) {
  return f(x.ids);
}

// ---- atoms (at most 10 characters; same text = same type, so none reuse CAF's own) ----
// user
using register_atom = caf::atom_constant<caf::atom("u_register")>;  // (name, hash) -> user_view
using creds_atom = caf::atom_constant<caf::atom("u_creds")>;        // () -> credentials
using deposit_atom = caf::atom_constant<caf::atom("u_deposit")>;  // (who, req, cents) -> user_view
using debit_atom = caf::atom_constant<caf::atom("u_debit")>;      // (order, cents) -> user_view
using refund_atom = caf::atom_constant<caf::atom("u_refund")>;    // (order) -> user_view
using link_atom = caf::atom_constant<caf::atom("u_link")>;        // (order) -> user_view
using orders_atom = caf::atom_constant<caf::atom("u_orders")>;    // (who) -> order_ids
using claim_atom = caf::atom_constant<caf::atom("u_claim")>;      // (order, units) -> user_view
using unclaim_atom = caf::atom_constant<caf::atom("u_unclaim")>;  // (order) -> user_view
// product
using create_atom =
    caf::atom_constant<caf::atom("p_create")>;  // (who, name, cents) -> product_view
// inventory
using restock_atom = caf::atom_constant<caf::atom("i_add")>;  // (who, req, qty) -> inventory_view
using reserve_atom = caf::atom_constant<caf::atom("i_reserve")>;  // (order, qty) -> inventory_view
using release_atom = caf::atom_constant<caf::atom("i_release")>;  // (order) -> inventory_view
using commit_atom = caf::atom_constant<caf::atom("i_commit")>;    // (order) -> inventory_view
using giveback_atom = caf::atom_constant<caf::atom("i_giveback")>;  // (order) -> inventory_view
// order
using place_atom = caf::atom_constant<caf::atom("o_place")>;    // (who, user, items) -> order_view
using pay_atom = caf::atom_constant<caf::atom("o_pay")>;        // (who) -> order_view
using cancel_atom = caf::atom_constant<caf::atom("o_cancel")>;  // (who) -> order_view
using wakeup_atom = caf::atom_constant<caf::atom("o_wakeup")>;  // () async: resume or expire
// any entity
using read_atom = caf::atom_constant<caf::atom("e_read")>;          // (who) -> its view
using timeline_atom = caf::atom_constant<caf::atom("o_timeline")>;  // (who) -> timeline view
using crash_atom = caf::atom_constant<caf::atom("e_crash")>;  // () async: throws (fault injection)
// internal to the actor layer
using persisted_atom = caf::atom_constant<caf::atom("e_synced")>;
using passivate_atom = caf::atom_constant<caf::atom("e_passiv")>;
using idle_atom = caf::atom_constant<caf::atom("e_idle")>;    // supervisor: nothing routed lately
using evict_atom = caf::atom_constant<caf::atom("e_evict")>;  // stop now: the shard moves away
using barrier_atom = caf::atom_constant<caf::atom("e_barrier")>;
// entity -> its supervisor, local only: (entity_ref, why) its stored data is damaged.
using corrupted_atom = caf::atom_constant<caf::atom("e_corrupt")>;
using retry_atom = caf::atom_constant<caf::atom("e_retry")>;
using expire_atom = caf::atom_constant<caf::atom("o_expire")>;
using resume_atom = caf::atom_constant<caf::atom("o_resume")>;  // order: resume once confirmed
using fire_atom = caf::atom_constant<caf::atom("w_fire")>;
using stats_atom = caf::atom_constant<caf::atom("n_stats")>;

/// Registers every type above (and the domain's views) with CAF, so they can cross nodes.
void add_message_types(caf::actor_system_config& cfg);

}  // namespace ordermesh::actors
