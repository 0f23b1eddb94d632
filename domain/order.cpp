// Order rules and the saga that the order entity coordinates.
#include "domain/order.hpp"

#include <cassert>
#include <set>
#include <stdexcept>

#include "domain/overloaded.hpp"

namespace ordermesh::domain::order {

namespace {

using decision_t = decision<event>;

const char* const default_cancel_reason = "cancelled by client";
const char* const expired_reason = "expired";

failure not_found(const state& s) {
  return {errc::not_found, "order " + s.order_id + " not found"};
}

// Another user's order answers exactly like a missing one, so ids do not leak.
bool visible_to(const state& s, const principal& who) {
  return s.status != order_status::none && who.may_act_for(s.user_id);
}

// The saga functions are only called for a PENDING order; anything else is a coordinator bug.
// assert() stops a debug build at the spot; release builds must not invent an event either.
[[noreturn]] void no_step(const char* what) {
  assert(false && "saga step called in a phase that has none");
  throw std::logic_error(what);
}

}  // namespace

void apply(state& s, const event& e) {
  std::visit(overloaded{
                 [&](const placed& ev) {
                   s.user_id = ev.user_id;
                   s.items = ev.items;
                   s.total_cents = ev.total_cents;
                   s.status = order_status::pending;
                   s.step = phase::reserving;
                   s.reason.clear();
                   s.created_at = ev.at_ms;
                   s.expires_at = 0;
                 },
                 [&](const reserved& ev) {
                   s.status = order_status::reserved;
                   s.step = phase::none;
                   s.expires_at = ev.expires_at;
                 },
                 [&](const reservation_failed& ev) {
                   s.step = phase::rejecting;
                   s.reason = ev.reason;
                 },
                 [&](const rejected&) {
                   s.status = order_status::rejected;
                   s.step = phase::none;
                   s.expires_at = 0;
                 },
                 [&](const payment_started&) {
                   // expires_at stays: a refused payment returns to the same reservation.
                   s.status = order_status::pending;
                   s.step = phase::debiting;
                 },
                 [&](const payment_refused&) {
                   // The refusal is the pay reply's error, not a reason of the order.
                   s.status = order_status::reserved;
                   s.step = phase::none;
                 },
                 [&](const debited&) { s.step = phase::committing; },
                 [&](const paid&) {
                   s.status = order_status::paid;
                   s.step = phase::none;
                   s.expires_at = 0;
                 },
                 [&](const cancel_started& ev) {
                   s.step = s.status == order_status::paid ? phase::refunding : phase::releasing;
                   s.status = order_status::pending;
                   s.reason = ev.reason;
                 },
                 [&](const refunded&) { s.step = phase::returning; },
                 [&](const cancelled&) {
                   s.status = order_status::cancelled;
                   s.step = phase::none;
                   s.expires_at = 0;
                 },
             },
             e);
  // Every event carries its time; all of them are the order's last update.
  s.updated_at = std::visit([](const auto& ev) { return ev.at_ms; }, e);
}

failure check_items(const std::vector<order_item>& items) {
  if (items.empty()) {
    return {errc::bad_request, "an order needs at least one item"};
  }
  if (items.size() > limits::max_items) {
    return {errc::bad_request, "at most 100 items per order"};
  }
  std::set<std::string_view> seen;
  for (const order_item& item : items) {
    if (!valid_id(item.product_id)) {
      return {errc::bad_request, "invalid product_id"};
    }
    if (item.quantity < 1 || item.quantity > limits::max_quantity) {
      return {errc::bad_request, item.product_id + ": quantity must be 1..100000"};
    }
    if (!seen.insert(item.product_id).second) {
      return {errc::bad_request, item.product_id + ": listed twice"};
    }
  }
  return {};
}

failure check_place(const state& s, const principal& who, std::string_view user_id,
                    const std::vector<order_item>& items) {
  if (!valid_id(user_id)) {
    return {errc::bad_request, "invalid user_id"};
  }
  if (failure f = check_items(items); f.code != errc::none) {
    return f;
  }
  if (!who.may_act_for(user_id)) {
    return {errc::forbidden, "may not act for another user"};
  }
  if (s.status == order_status::none) {
    return {};
  }
  // A retried place: same owner and the same lines in the same order (prices were ours).
  bool same = s.user_id == user_id && s.items.size() == items.size();
  for (size_t i = 0; same && i < items.size(); ++i) {
    same = s.items[i].product_id == items[i].product_id && s.items[i].quantity == items[i].quantity;
  }
  if (!same) {
    return {errc::conflict, "order " + s.order_id + " exists with other content"};
  }
  return {};
}

decision_t place(const state& s, std::string_view user_id, std::vector<order_item> priced,
                 int64_t now_ms) {
  if (s.status != order_status::none) {
    return decision_t::refuse(errc::conflict, "order " + s.order_id + " already exists");
  }
  if (!valid_id(user_id)) {
    return decision_t::refuse(errc::bad_request, "invalid user_id");
  }
  if (failure f = check_items(priced); f.code != errc::none) {
    return decision_t::refuse(f.code, std::move(f.message));
  }
  int64_t total = 0;
  for (const order_item& item : priced) {
    if (item.unit_price_cents < 0 || item.unit_price_cents > limits::max_money_cents) {
      return decision_t::refuse(errc::bad_request, item.product_id + ": price out of range");
    }
    // quantity <= 10^5 and price <= 10^12: the product is <= 10^17, and total stays <= 10^12
    // before each addition, so neither step can overflow int64.
    const int64_t line = item.quantity * item.unit_price_cents;
    if (total + line > limits::max_money_cents) {
      return decision_t::refuse(errc::bad_request, "order total exceeds 10^12 cents");
    }
    total += line;
  }
  return decision_t::accept({placed{std::string(user_id), std::move(priced), total, now_ms}});
}

decision_t pay(const state& s, const principal& who, int64_t now_ms) {
  if (!visible_to(s, who)) {
    failure f = not_found(s);
    return decision_t::refuse(f.code, std::move(f.message));
  }
  switch (s.status) {
    case order_status::paid:
      return decision_t::accept();  // a retried pay
    case order_status::pending:
      return decision_t::refuse(errc::conflict, "order " + s.order_id + " has a step in flight");
    case order_status::cancelled:
    case order_status::rejected:
      return decision_t::refuse(errc::invalid_state,
                                "order " + s.order_id + " is " + std::string(to_string(s.status)));
    case order_status::reserved:
      if (now_ms >= s.expires_at) {
        // The actor expires it on its wakeup; paying now would race that.
        return decision_t::refuse(errc::invalid_state, "reservation expired");
      }
      return decision_t::accept({payment_started{now_ms}});
    case order_status::none:
      break;
  }
  failure f = not_found(s);
  return decision_t::refuse(f.code, std::move(f.message));
}

decision_t cancel(const state& s, const principal& who, std::string reason, int64_t now_ms) {
  if (!visible_to(s, who)) {
    failure f = not_found(s);
    return decision_t::refuse(f.code, std::move(f.message));
  }
  switch (s.status) {
    case order_status::reserved:
    case order_status::paid:
      if (reason.empty()) {
        reason = default_cancel_reason;
      }
      return decision_t::accept({cancel_started{std::move(reason), now_ms}});
    case order_status::cancelled:
      return decision_t::accept();  // a retried cancel
    case order_status::rejected:
      return decision_t::refuse(errc::invalid_state, "order " + s.order_id + " is REJECTED");
    case order_status::pending:
      return decision_t::refuse(errc::conflict, "order " + s.order_id + " has a step in flight");
    case order_status::none:
      break;
  }
  failure f = not_found(s);
  return decision_t::refuse(f.code, std::move(f.message));
}

decision_t expire(const state& s, int64_t now_ms) {
  if (s.status == order_status::reserved && now_ms >= s.expires_at) {
    return decision_t::accept({cancel_started{expired_reason, now_ms}});
  }
  return decision_t::accept();
}

failure check_read(const state& s, const principal& who) {
  if (!visible_to(s, who)) {
    return not_found(s);
  }
  return {};
}

phase next_step(const state& s) {
  return s.step;
}

event step_succeeded(const state& s, int64_t now_ms, int64_t reservation_ttl_ms) {
  switch (s.step) {
    case phase::reserving:
      return reserved{now_ms, now_ms + reservation_ttl_ms};
    case phase::rejecting:
      return rejected{now_ms};
    case phase::debiting:
      return debited{now_ms};
    case phase::committing:
      return paid{now_ms};
    case phase::releasing:
      return cancelled{now_ms};
    case phase::refunding:
      return refunded{now_ms};
    case phase::returning:
      return cancelled{now_ms};
    case phase::none:
      break;
  }
  no_step("step_succeeded: the order has no step in flight");
}

event step_refused(const state& s, const failure& why, int64_t now_ms) {
  std::string reason = std::string(to_string(why.code)) + ": " + why.message;
  switch (s.step) {
    case phase::reserving:
      return reservation_failed{std::move(reason), now_ms};
    case phase::debiting:
      return payment_refused{std::move(reason), now_ms};
    default:
      break;
  }
  no_step("step_refused: only reserving and debiting can be refused");
}

int64_t wakeup_at(const state& s, int64_t now_ms) {
  switch (s.status) {
    case order_status::pending:
      return now_ms;
    case order_status::reserved:
      return s.expires_at;
    default:
      return 0;
  }
}

bool is_terminal(const state& s) {
  return s.status == order_status::cancelled || s.status == order_status::rejected;
}

order_view view(const state& s) {
  order_view v;
  v.order_id = s.order_id;
  v.user_id = s.user_id;
  v.status = static_cast<uint8_t>(s.status);
  v.items = s.items;
  v.total_cents = s.total_cents;
  v.reason = s.reason;
  v.created_at = s.created_at;
  v.updated_at = s.updated_at;
  // Kept internally while a payment is in flight (a refusal returns to it), shown only when
  // the order is RESERVED.
  v.expires_at = s.status == order_status::reserved ? s.expires_at : 0;
  return v;
}

const step_trace& trace_of(const event& e) {
  return std::visit([](const auto& ev) -> const step_trace& { return ev.trace; }, e);
}

void set_trace(event& e, const step_trace& t) {
  std::visit([&t](auto& ev) { ev.trace = t; }, e);
}

}  // namespace ordermesh::domain::order
