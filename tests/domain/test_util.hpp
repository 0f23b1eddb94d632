#pragma once
// Helpers for the domain tests: equality for events and states (the domain types carry none),
// principals, and applying a decision's events.
#include <string>
#include <tuple>

#include <catch2/catch.hpp>

#include "domain/inventory.hpp"
#include "domain/order.hpp"
#include "domain/product.hpp"
#include "domain/user.hpp"

// operator== lives in each type's namespace so std::variant's == and Catch find it by ADL.
namespace ordermesh::domain::user {
inline bool operator==(const registered& a, const registered& b) {
  return std::tie(a.name, a.password_hash, a.at_ms) == std::tie(b.name, b.password_hash, b.at_ms);
}
inline bool operator==(const deposited& a, const deposited& b) {
  return std::tie(a.request_id, a.amount_cents) == std::tie(b.request_id, b.amount_cents);
}
inline bool operator==(const debited& a, const debited& b) {
  return std::tie(a.order_id, a.amount_cents) == std::tie(b.order_id, b.amount_cents);
}
inline bool operator==(const refunded& a, const refunded& b) {
  return std::tie(a.order_id, a.amount_cents) == std::tie(b.order_id, b.amount_cents);
}
inline bool operator==(const order_linked& a, const order_linked& b) {
  return a.order_id == b.order_id;
}
inline bool operator==(const slot_opened& a, const slot_opened& b) {
  return std::tie(a.order_id, a.units, a.until_ms, a.at_ms) ==
         std::tie(b.order_id, b.units, b.until_ms, b.at_ms);
}
inline bool operator==(const slot_closed& a, const slot_closed& b) {
  return a.order_id == b.order_id;
}
inline bool operator==(const open_slot& a, const open_slot& b) {
  return a.units == b.units && a.until_ms == b.until_ms;
}
inline bool operator==(const payment& a, const payment& b) {
  return a.amount_cents == b.amount_cents && a.refunded == b.refunded;
}
inline bool operator==(const state& a, const state& b) {
  return std::tie(a.user_id, a.exists, a.name, a.password_hash, a.created_at, a.balance_cents,
                  a.deposits, a.payments, a.orders, a.open_slots) ==
         std::tie(b.user_id, b.exists, b.name, b.password_hash, b.created_at, b.balance_cents,
                  b.deposits, b.payments, b.orders, b.open_slots);
}
}  // namespace ordermesh::domain::user

namespace ordermesh::domain::product {
inline bool operator==(const created& a, const created& b) {
  return std::tie(a.name, a.price_cents, a.at_ms) == std::tie(b.name, b.price_cents, b.at_ms);
}
inline bool operator==(const state& a, const state& b) {
  return std::tie(a.product_id, a.exists, a.name, a.price_cents, a.created_at) ==
         std::tie(b.product_id, b.exists, b.name, b.price_cents, b.created_at);
}
}  // namespace ordermesh::domain::product

namespace ordermesh::domain::inventory {
inline bool operator==(const stock_added& a, const stock_added& b) {
  return a.request_id == b.request_id && a.quantity == b.quantity;
}
inline bool operator==(const reserved& a, const reserved& b) {
  return a.order_id == b.order_id && a.quantity == b.quantity;
}
inline bool operator==(const released& a, const released& b) {
  return a.order_id == b.order_id;
}
inline bool operator==(const committed& a, const committed& b) {
  return a.order_id == b.order_id;
}
inline bool operator==(const returned& a, const returned& b) {
  return a.order_id == b.order_id;
}
inline bool operator==(const reservation& a, const reservation& b) {
  return a.quantity == b.quantity && a.status == b.status;
}
inline bool operator==(const state& a, const state& b) {
  return std::tie(a.product_id, a.available, a.reserved, a.sold, a.total_added, a.adds,
                  a.reservations) == std::tie(b.product_id, b.available, b.reserved, b.sold,
                                              b.total_added, b.adds, b.reservations);
}
}  // namespace ordermesh::domain::inventory

namespace ordermesh::domain::order {
inline bool operator==(const placed& a, const placed& b) {
  return std::tie(a.user_id, a.items, a.total_cents, a.at_ms) ==
         std::tie(b.user_id, b.items, b.total_cents, b.at_ms);
}
inline bool operator==(const reserved& a, const reserved& b) {
  return a.at_ms == b.at_ms && a.expires_at == b.expires_at;
}
inline bool operator==(const reservation_failed& a, const reservation_failed& b) {
  return a.reason == b.reason && a.at_ms == b.at_ms;
}
inline bool operator==(const rejected& a, const rejected& b) {
  return a.at_ms == b.at_ms;
}
inline bool operator==(const payment_started& a, const payment_started& b) {
  return a.at_ms == b.at_ms;
}
inline bool operator==(const payment_refused& a, const payment_refused& b) {
  return a.reason == b.reason && a.at_ms == b.at_ms;
}
inline bool operator==(const debited& a, const debited& b) {
  return a.at_ms == b.at_ms;
}
inline bool operator==(const paid& a, const paid& b) {
  return a.at_ms == b.at_ms;
}
inline bool operator==(const cancel_started& a, const cancel_started& b) {
  return a.reason == b.reason && a.at_ms == b.at_ms;
}
inline bool operator==(const refunded& a, const refunded& b) {
  return a.at_ms == b.at_ms;
}
inline bool operator==(const cancelled& a, const cancelled& b) {
  return a.at_ms == b.at_ms;
}
inline bool operator==(const state& a, const state& b) {
  return std::tie(a.order_id, a.user_id, a.status, a.step, a.items, a.total_cents, a.reason,
                  a.created_at, a.updated_at, a.expires_at) ==
         std::tie(b.order_id, b.user_id, b.status, b.step, b.items, b.total_cents, b.reason,
                  b.created_at, b.updated_at, b.expires_at);
}
}  // namespace ordermesh::domain::order

namespace ordermesh::domain {
inline bool operator==(const user_view& a, const user_view& b) {
  return std::tie(a.user_id, a.name, a.balance_cents) ==
         std::tie(b.user_id, b.name, b.balance_cents);
}
inline bool operator==(const product_view& a, const product_view& b) {
  return std::tie(a.product_id, a.name, a.price_cents) ==
         std::tie(b.product_id, b.name, b.price_cents);
}
inline bool operator==(const inventory_view& a, const inventory_view& b) {
  return std::tie(a.product_id, a.available, a.reserved, a.sold) ==
         std::tie(b.product_id, b.available, b.reserved, b.sold);
}
inline bool operator==(const order_view& a, const order_view& b) {
  return std::tie(a.order_id, a.user_id, a.status, a.items, a.total_cents, a.reason, a.created_at,
                  a.updated_at, a.expires_at) == std::tie(b.order_id, b.user_id, b.status, b.items,
                                                          b.total_cents, b.reason, b.created_at,
                                                          b.updated_at, b.expires_at);
}
}  // namespace ordermesh::domain

namespace ordermesh::domain::test {

inline principal admin() {
  return principal{"", true};
}
inline principal as_user(std::string id) {
  return principal{std::move(id), false};
}
inline principal anonymous() {
  return principal{};
}

/// Applies every event of an accepted decision; fails the test on a refusal.
template <class State, class Event>
void apply_all(State& s, const decision<Event>& d) {
  INFO("refused: " << to_string(d.error.code) << ": " << d.error.message);
  REQUIRE(d.ok());
  for (const Event& e : d.events) {
    apply(s, e);
  }
}

/// True for an accepted decision that changes nothing (an idempotent repeat).
template <class Event>
bool no_op(const decision<Event>& d) {
  return d.ok() && d.events.empty();
}

/// True for a refusal with `code` and no events.
template <class Event>
bool refused(const decision<Event>& d, errc code) {
  return d.error.code == code && d.events.empty();
}

}  // namespace ordermesh::domain::test
