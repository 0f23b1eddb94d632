// User rules: registration and the wallet. Every amount is integer cents.
#include "domain/user.hpp"

#include <algorithm>

#include "domain/overloaded.hpp"

namespace ordermesh::domain::user {

namespace {

using decision_t = decision<event>;

bool valid_amount(int64_t cents) {
  return cents >= 0 && cents <= limits::max_money_cents;
}

}  // namespace

void apply(state& s, const event& e) {
  std::visit(overloaded{
                 [&](const registered& ev) {
                   s.exists = true;
                   s.name = ev.name;
                   s.password_hash = ev.password_hash;
                   s.created_at = ev.at_ms;
                 },
                 [&](const deposited& ev) {
                   s.balance_cents += ev.amount_cents;
                   s.deposits[ev.request_id] = ev.amount_cents;
                 },
                 [&](const debited& ev) {
                   s.balance_cents -= ev.amount_cents;
                   s.payments[ev.order_id] = payment{ev.amount_cents, false};
                 },
                 [&](const refunded& ev) {
                   // The rule emits this only for a debited, unrefunded order; guarding here
                   // keeps a replay from ever crediting twice.
                   auto it = s.payments.find(ev.order_id);
                   if (it == s.payments.end() || it->second.refunded) {
                     return;
                   }
                   s.balance_cents += ev.amount_cents;
                   it->second.refunded = true;
                 },
                 [&](const order_linked& ev) { s.orders.push_back(ev.order_id); },
                 [&](const slot_opened& ev) {
                   // Pruned by the event's own time, so a replay prunes exactly the same.
                   for (auto it = s.open_slots.begin(); it != s.open_slots.end();) {
                     it = it->second.until_ms <= ev.at_ms ? s.open_slots.erase(it) : std::next(it);
                   }
                   s.open_slots[ev.order_id] = open_slot{ev.units, ev.until_ms};
                 },
                 [&](const slot_closed& ev) { s.open_slots.erase(ev.order_id); },
             },
             e);
}

decision_t register_user(const state& s, std::string_view name, std::string password_hash,
                         int64_t now_ms) {
  if (name.size() > limits::max_name_length) {
    return decision_t::refuse(errc::bad_request, "name longer than 200 bytes");
  }
  if (password_hash.empty()) {
    // The node hashes the password; an empty hash would be an account nobody can log into.
    return decision_t::refuse(errc::bad_request, "missing password hash");
  }
  if (s.exists) {
    return decision_t::refuse(errc::conflict, "user " + s.user_id + " already exists");
  }
  return decision_t::accept({registered{std::string(name), std::move(password_hash), now_ms}});
}

decision_t deposit(const state& s, const principal& who, std::string_view request_id,
                   int64_t amount_cents) {
  if (!valid_id(request_id)) {
    return decision_t::refuse(errc::bad_request, "invalid request_id");
  }
  if (!valid_amount(amount_cents)) {
    return decision_t::refuse(errc::bad_request, "amount must be 0..10^12 cents");
  }
  // Authorization before existence: another user's id answers the same whether it exists.
  if (!who.may_act_for(s.user_id)) {
    return decision_t::refuse(errc::forbidden, "may not act for another user");
  }
  if (!s.exists) {
    return decision_t::refuse(errc::not_found, "user " + s.user_id + " not found");
  }
  if (auto it = s.deposits.find(std::string(request_id)); it != s.deposits.end()) {
    if (it->second == amount_cents) {
      return decision_t::accept();  // a retry of a deposit already made
    }
    return decision_t::refuse(
        errc::conflict, "request_id " + std::string(request_id) + " used with another amount");
  }
  // Both are <= 10^15, so the sum cannot overflow int64.
  if (s.balance_cents + amount_cents > limits::max_balance_cents) {
    return decision_t::refuse(errc::bad_request, "balance would exceed 10^15 cents");
  }
  return decision_t::accept({deposited{std::string(request_id), amount_cents}});
}

decision_t debit(const state& s, std::string_view order_id, int64_t amount_cents) {
  if (!valid_id(order_id)) {
    return decision_t::refuse(errc::bad_request, "invalid order_id");
  }
  if (!valid_amount(amount_cents)) {
    return decision_t::refuse(errc::bad_request, "amount must be 0..10^12 cents");
  }
  if (!s.exists) {
    return decision_t::refuse(errc::not_found, "user " + s.user_id + " not found");
  }
  if (auto it = s.payments.find(std::string(order_id)); it != s.payments.end()) {
    if (it->second.amount_cents == amount_cents) {
      return decision_t::accept();  // the saga retried a debit that already happened
    }
    return decision_t::refuse(errc::conflict,
                              "order " + std::string(order_id) + " debited another amount");
  }
  if (s.balance_cents < amount_cents) {
    return decision_t::refuse(
        errc::insufficient_funds,
        "balance " + std::to_string(s.balance_cents) + ", needed " + std::to_string(amount_cents));
  }
  return decision_t::accept({debited{std::string(order_id), amount_cents}});
}

decision_t refund(const state& s, std::string_view order_id) {
  // Never refused: refunding is a compensation the saga retries until it succeeds, so "nothing
  // to refund" must be success. The balance cap is not checked for the same reason: the money
  // was in this wallet before, and a cap refusal here would leave the saga stuck. The balance
  // then exceeds the cap by at most the outstanding debits, far from int64 overflow.
  auto it = s.payments.find(std::string(order_id));
  if (it == s.payments.end() || it->second.refunded) {
    return decision_t::accept();
  }
  return decision_t::accept({refunded{std::string(order_id), it->second.amount_cents}});
}

decision_t link_order(const state& s, std::string_view order_id, int64_t now_ms,
                      int64_t slot_until_ms) {
  if (!valid_id(order_id)) {
    return decision_t::refuse(errc::bad_request, "invalid order_id");
  }
  if (!s.exists) {
    return decision_t::refuse(errc::not_found, "user " + s.user_id + " not found");
  }
  std::vector<event> events;
  if (std::find(s.orders.begin(), s.orders.end(), order_id) == s.orders.end()) {
    events.push_back(order_linked{std::string(order_id)});
  }
  // Only a slot still held is extended: a closed one stays closed, whatever arrives late.
  if (auto it = s.open_slots.find(std::string(order_id));
      it != s.open_slots.end() && it->second.until_ms < slot_until_ms) {
    events.push_back(slot_opened{std::string(order_id), it->second.units, slot_until_ms, now_ms});
  }
  return decision_t::accept(std::move(events));
}

failure check_read(const state& s, const principal& who) {
  // Authorization before existence: another user's id answers the same whether it exists.
  if (!who.may_act_for(s.user_id)) {
    return {errc::forbidden, "may not act for another user"};
  }
  if (!s.exists) {
    return {errc::not_found, "user " + s.user_id + " not found"};
  }
  return {};
}

user_view view(const state& s) {
  return user_view{s.user_id, s.name, s.balance_cents};
}

}  // namespace ordermesh::domain::user
