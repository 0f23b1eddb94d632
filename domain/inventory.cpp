// Inventory rules: stock of one product, held per order through the saga.
#include "domain/inventory.hpp"

#include "domain/overloaded.hpp"

namespace ordermesh::domain::inventory {

namespace {

using decision_t = decision<event>;

const reservation* find(const state& s, std::string_view order_id) {
  auto it = s.reservations.find(std::string(order_id));
  return it == s.reservations.end() ? nullptr : &it->second;
}

std::string order_text(std::string_view order_id) {
  return "order " + std::string(order_id);
}

}  // namespace

void apply(state& s, const event& e) {
  // The rules emit each event only from the state it expects; apply still checks the hold's
  // status so that a replayed or duplicated event can never move stock twice.
  std::visit(overloaded{
                 [&](const stock_added& ev) {
                   if (s.adds.count(ev.request_id) != 0) {
                     return;
                   }
                   s.available += ev.quantity;
                   s.total_added += ev.quantity;
                   s.adds[ev.request_id] = ev.quantity;
                 },
                 [&](const reserved& ev) {
                   if (s.reservations.count(ev.order_id) != 0) {
                     return;
                   }
                   s.available -= ev.quantity;
                   s.reserved += ev.quantity;
                   s.reservations[ev.order_id] = reservation{ev.quantity, hold::reserved};
                 },
                 [&](const released& ev) {
                   auto [it, fresh] = s.reservations.try_emplace(
                       ev.order_id, reservation{0, hold::released});  // tombstone if new
                   if (!fresh && it->second.status == hold::reserved) {
                     s.reserved -= it->second.quantity;
                     s.available += it->second.quantity;
                     it->second.status = hold::released;
                   }
                 },
                 [&](const committed& ev) {
                   auto it = s.reservations.find(ev.order_id);
                   if (it != s.reservations.end() && it->second.status == hold::reserved) {
                     s.reserved -= it->second.quantity;
                     s.sold += it->second.quantity;
                     it->second.status = hold::committed;
                   }
                 },
                 [&](const returned& ev) {
                   auto it = s.reservations.find(ev.order_id);
                   if (it != s.reservations.end() && it->second.status == hold::committed) {
                     s.sold -= it->second.quantity;
                     s.available += it->second.quantity;
                     it->second.status = hold::returned;
                   }
                 },
             },
             e);
}

decision_t add_stock(const state& s, const principal& who, std::string_view request_id,
                     int64_t quantity) {
  if (!who.admin) {
    return decision_t::refuse(errc::forbidden, "only the admin adds stock");
  }
  if (!valid_id(request_id)) {
    return decision_t::refuse(errc::bad_request, "invalid request_id");
  }
  if (quantity < 1 || quantity > limits::max_quantity) {
    return decision_t::refuse(errc::bad_request, "quantity must be 1..100000");
  }
  if (auto it = s.adds.find(std::string(request_id)); it != s.adds.end()) {
    if (it->second == quantity) {
      return decision_t::accept();  // a retry of an add already made
    }
    return decision_t::refuse(
        errc::conflict, "request_id " + std::string(request_id) + " used with another quantity");
  }
  // Bounding everything ever added bounds available, reserved and sold too (they sum to it).
  if (s.total_added > limits::max_stock - quantity) {
    return decision_t::refuse(errc::bad_request, "stock would exceed 10^12 units");
  }
  return decision_t::accept({stock_added{std::string(request_id), quantity}});
}

decision_t reserve(const state& s, std::string_view order_id, int64_t quantity) {
  if (!valid_id(order_id)) {
    return decision_t::refuse(errc::bad_request, "invalid order_id");
  }
  if (quantity < 1 || quantity > limits::max_quantity) {
    return decision_t::refuse(errc::bad_request, "quantity must be 1..100000");
  }
  if (const reservation* r = find(s, order_id)) {
    if (r->status == hold::released || r->status == hold::returned) {
      // The order gave up on this stock; a late retry must not take it again.
      return decision_t::refuse(errc::invalid_state, order_text(order_id) + " already released");
    }
    if (r->quantity != quantity) {
      return decision_t::refuse(errc::conflict,
                                order_text(order_id) + " reserved another quantity");
    }
    return decision_t::accept();  // reserved or committed with this quantity: a retry
  }
  if (s.available < quantity) {
    return decision_t::refuse(errc::out_of_stock, s.product_id + ": " +
                                                      std::to_string(s.available) + " available, " +
                                                      std::to_string(quantity) + " requested");
  }
  return decision_t::accept({reserved{std::string(order_id), quantity}});
}

decision_t release(const state& s, std::string_view order_id) {
  if (!valid_id(order_id)) {
    return decision_t::refuse(errc::bad_request, "invalid order_id");
  }
  const reservation* r = find(s, order_id);
  if (r == nullptr || r->status == hold::reserved) {
    return decision_t::accept({released{std::string(order_id)}});
  }
  if (r->status == hold::committed) {
    return decision_t::refuse(errc::invalid_state, order_text(order_id) + " is committed");
  }
  return decision_t::accept();  // released or returned already
}

decision_t commit(const state& s, std::string_view order_id) {
  const reservation* r = find(s, order_id);
  if (r != nullptr && r->status == hold::reserved) {
    return decision_t::accept({committed{std::string(order_id)}});
  }
  if (r != nullptr && r->status == hold::committed) {
    return decision_t::accept();
  }
  return decision_t::refuse(errc::invalid_state, order_text(order_id) + " holds no reservation");
}

decision_t give_back(const state& s, std::string_view order_id) {
  const reservation* r = find(s, order_id);
  if (r != nullptr && r->status == hold::committed) {
    return decision_t::accept({returned{std::string(order_id)}});
  }
  if (r != nullptr && r->status == hold::returned) {
    return decision_t::accept();
  }
  return decision_t::refuse(errc::invalid_state, order_text(order_id) + " holds no sold stock");
}

inventory_view view(const state& s) {
  return inventory_view{s.product_id, s.available, s.reserved, s.sold};
}

bool consistent(const state& s) {
  if (s.available < 0 || s.reserved < 0 || s.sold < 0 || s.total_added < 0) {
    return false;
  }
  // The rules keep total_added <= 10^12, but a corrupt snapshot could carry anything: compare
  // by subtracting non-negative terms, which cannot overflow, instead of adding them.
  if (s.available > s.total_added || s.reserved > s.total_added - s.available) {
    return false;
  }
  return s.sold == s.total_added - s.available - s.reserved;
}

}  // namespace ordermesh::domain::inventory
