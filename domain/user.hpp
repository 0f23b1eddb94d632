#pragma once
// A user: registration, password hash, wallet. Rules only; the actor persists and replies.
#include <map>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "domain/decision.hpp"
#include "domain/types.hpp"

namespace ordermesh::domain::user {

struct registered {
  std::string name;
  std::string password_hash;  // libsodium crypto_pwhash_str output; never the password
  int64_t at_ms = 0;
};
struct deposited {
  std::string request_id;
  int64_t amount_cents = 0;
};
struct debited {  // an order's payment
  std::string order_id;
  int64_t amount_cents = 0;
};
struct refunded {  // an order's payment given back
  std::string order_id;
  int64_t amount_cents = 0;
};
struct order_linked {  // the user placed this order (for order.list)
  std::string order_id;
};
/// An order of this user holds (or is about to hold) reserved stock: one of the user's capped
/// open reservations (user_slots.cpp). Opens the slot or moves its deadline; slots whose
/// deadline passed by `at_ms` are dropped, so lapsed slots never pile up.
struct slot_opened {
  std::string order_id;
  int64_t units = 0;     // the order's total quantity
  int64_t until_ms = 0;  // the slot counts until then, unless closed before
  int64_t at_ms = 0;
};
/// The order was paid, cancelled, expired or rejected: its slot is free.
struct slot_closed {
  std::string order_id;
};
using event =
    std::variant<registered, deposited, debited, refunded, order_linked, slot_opened, slot_closed>;

struct payment {
  int64_t amount_cents = 0;
  bool refunded = false;
};

/// An open reservation of the user, counted against the caps until `until_ms`.
struct open_slot {
  int64_t units = 0;
  int64_t until_ms = 0;
};

/// Caps on a user's open (reserved, unpaid, unexpired) orders; 0 is unlimited.
struct reservation_caps {
  int64_t max_open_orders = 0;
  int64_t max_reserved_units = 0;
};

struct state {
  std::string user_id;
  bool exists = false;
  std::string name;
  std::string password_hash;
  int64_t created_at = 0;
  int64_t balance_cents = 0;
  std::map<std::string, int64_t> deposits;      // request_id -> amount (idempotency)
  std::map<std::string, payment> payments;      // order_id -> debit (idempotency)
  std::vector<std::string> orders;              // order ids in placement order
  std::map<std::string, open_slot> open_slots;  // order_id -> open reservation (the caps)
};

void apply(state& s, const event& e);

// ---- commands; each refuses or returns the events to persist ----
decision<event> register_user(const state& s, std::string_view name, std::string password_hash,
                              int64_t now_ms);
/// Own user or admin; same request_id again: same amount is a no-op, another amount `conflict`.
decision<event> deposit(const state& s, const principal& who, std::string_view request_id,
                        int64_t amount_cents);
/// Saga step. Same order again: no-op (another amount: `conflict`); short: `insufficient_funds`.
decision<event> debit(const state& s, std::string_view order_id, int64_t amount_cents);
/// Saga step. Refunds what the order was debited; refunding twice or never-debited is a no-op.
decision<event> refund(const state& s, std::string_view order_id);
/// Saga step at placement: user must exist (`not_found`); linking twice adds nothing to the list.
/// An order that holds a slot gets its slot's deadline moved to `slot_until_ms` (the reservation
/// starts now: it must count until it lapses); every retry of the step moves it again.
decision<event> link_order(const state& s, std::string_view order_id, int64_t now_ms,
                           int64_t slot_until_ms);

// ---- the caps on open reservations (user_slots.cpp) ----
/// Before an order is written: takes one of the user's open-reservation slots for `order_id`,
/// `units` its total quantity, counting until `until_ms` unless linked or closed first.
/// `limit_exceeded` beyond `caps` (nothing changes); `not_found` for a user never registered.
/// The same order again is a no-op (retried placements count once); an order already linked was
/// placed, so a late claim for it is a no-op too.
decision<event> claim_slot(const state& s, std::string_view order_id, int64_t units,
                           const reservation_caps& caps, int64_t now_ms, int64_t until_ms);
/// Saga step when the order leaves RESERVED for good or is paid: frees its slot. Never refused
/// (a compensation is retried until it succeeds): no slot, or no such user, is a no-op.
decision<event> close_slot(const state& s, std::string_view order_id);
/// Open slots at `now_ms` and their units (lapsed ones do not count).
struct slot_usage {
  int64_t orders = 0;
  int64_t units = 0;
};
slot_usage open_usage(const state& s, int64_t now_ms);

/// `get` / `order.list`: own user or admin, else `forbidden` whether the user exists or not (so
/// that user ids cannot be probed); `not_found` for a missing user asked by the admin.
failure check_read(const state& s, const principal& who);
user_view view(const state& s);

// ---- storage encoding: versioned binary, stable across releases ----
std::string encode(const event& e);
bool decode(std::string_view bytes, event& out);
std::string encode_snapshot(const state& s);
bool decode_snapshot(std::string_view bytes, state& out);

}  // namespace ordermesh::domain::user
