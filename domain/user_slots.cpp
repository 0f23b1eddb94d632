// The caps on a user's open reservations (issue 13): one user without money must not be able to
// hold the whole stock for the reservation TTL. The user entity counts its own open orders: it is
// the one place that sees all of them, wherever each order's shard lives, and its journal keeps
// the count across restarts and failovers.
//
// Life of a slot: claim_slot before the order writes anything (a refusal changes nothing), then
// link_order when the reservation starts (the deadline becomes the reservation's lapse plus a
// margin), then close_slot when the order is paid, cancelled, expired or rejected. Every slot has
// a deadline, so one whose order never got written (a crash between the claim and the order's
// first event) or whose close was lost stops counting by itself.
#include <algorithm>
#include <string>

#include "domain/user.hpp"

namespace ordermesh::domain::user {

namespace {
using decision_t = decision<event>;
}  // namespace

slot_usage open_usage(const state& s, int64_t now_ms) {
  slot_usage u;
  for (const auto& [order_id, slot] : s.open_slots) {
    if (slot.until_ms > now_ms) {
      ++u.orders;
      u.units += slot.units;
    }
  }
  return u;
}

decision_t claim_slot(const state& s, std::string_view order_id, int64_t units,
                      const reservation_caps& caps, int64_t now_ms, int64_t until_ms) {
  if (!valid_id(order_id)) {
    return decision_t::refuse(errc::bad_request, "invalid order_id");
  }
  // At most 100 items of 100000 units each.
  if (units < 1 || units > limits::max_quantity * static_cast<int64_t>(limits::max_items)) {
    return decision_t::refuse(errc::bad_request, "units out of range");
  }
  if (!s.exists) {
    return decision_t::refuse(errc::not_found, "user " + s.user_id + " not found");
  }
  const std::string id(order_id);
  // Linked means the order was written: its slot was claimed (and maybe closed) already.
  if (std::find(s.orders.begin(), s.orders.end(), id) != s.orders.end()) {
    return decision_t::accept();
  }
  slot_usage used = open_usage(s, now_ms);
  if (auto it = s.open_slots.find(id); it != s.open_slots.end() && it->second.until_ms > now_ms) {
    if (it->second.units == units) {
      return decision_t::accept();  // a retried placement: counted once
    }
    --used.orders;  // the same order with other items replaces its claim
    used.units -= it->second.units;
  }
  if (caps.max_open_orders > 0 && used.orders + 1 > caps.max_open_orders) {
    return decision_t::refuse(errc::limit_exceeded,
                              "user " + s.user_id + " has " + std::to_string(used.orders) +
                                  " unpaid reservations, the limit: pay or cancel one first");
  }
  if (caps.max_reserved_units > 0 && used.units + units > caps.max_reserved_units) {
    return decision_t::refuse(errc::limit_exceeded,
                              "user " + s.user_id + " has " + std::to_string(used.units) +
                                  " units reserved unpaid; " + std::to_string(units) +
                                  " more would exceed the limit of " +
                                  std::to_string(caps.max_reserved_units));
  }
  return decision_t::accept({slot_opened{id, units, until_ms, now_ms}});
}

decision_t close_slot(const state& s, std::string_view order_id) {
  if (s.open_slots.count(std::string(order_id)) == 0) {
    return decision_t::accept();
  }
  return decision_t::accept({slot_closed{std::string(order_id)}});
}

}  // namespace ordermesh::domain::user
