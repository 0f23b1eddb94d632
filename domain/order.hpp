#pragma once
// The order and its saga. The order entity is the saga coordinator: every step's outcome is an
// event persisted before the next step starts, so a crash resumes exactly where it stopped.
//
//   place:  placed ─▶ PENDING/reserving ─┬▶ reserved ─▶ RESERVED
//                                        └▶ reservation_failed ─▶ PENDING/rejecting ─▶ rejected ─▶
//                                        REJECTED
//   pay:    RESERVED ─ payment_started ─▶ PENDING/debiting ─┬▶ payment_refused ─▶ RESERVED
//                                                           └▶ debited ─▶ PENDING/committing ─▶
//                                                           paid ─▶ PAID
//   cancel: RESERVED ─ cancel_started ─▶ PENDING/releasing ─▶ cancelled ─▶ CANCELLED
//           PAID ─ cancel_started ─▶ PENDING/refunding ─ refunded ─▶ PENDING/returning ─▶ cancelled
//   expiry: like cancel from RESERVED, reason "expired", once now >= expires_at.
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "domain/decision.hpp"
#include "domain/types.hpp"

namespace ordermesh::domain::order {

enum class phase : uint8_t {
  none = 0,    // not PENDING
  reserving,   // link to user + reserve every item
  rejecting,   // release every item, then REJECTED
  debiting,    // debit the wallet
  committing,  // commit every item's reservation
  releasing,   // release every item, then CANCELLED
  refunding,   // refund the wallet
  returning,   // give every item's sold stock back, then CANCELLED
};

/// Who wrote an event and for which request (docs/PROTOCOL.md, order.timeline). Stored after the
/// event's own fields; events written before it existed decode with both empty.
struct step_trace {
  std::string node;
  std::string request_id;
};

struct placed {
  std::string user_id;
  std::vector<order_item> items;  // priced
  int64_t total_cents = 0;
  int64_t at_ms = 0;
  step_trace trace{};
};
struct reserved {
  int64_t at_ms = 0;
  int64_t expires_at = 0;
  step_trace trace{};
};
struct reservation_failed {
  std::string reason;
  int64_t at_ms = 0;
  step_trace trace{};
};
struct rejected {
  int64_t at_ms = 0;
  step_trace trace{};
};
struct payment_started {
  int64_t at_ms = 0;
  step_trace trace{};
};
struct payment_refused {
  std::string reason;
  int64_t at_ms = 0;
  step_trace trace{};
};
struct debited {
  int64_t at_ms = 0;
  step_trace trace{};
};
struct paid {
  int64_t at_ms = 0;
  step_trace trace{};
};
struct cancel_started {
  std::string reason;  // "cancelled by client", "expired", ...
  int64_t at_ms = 0;
  step_trace trace{};
};
struct refunded {
  int64_t at_ms = 0;
  step_trace trace{};
};
struct cancelled {
  int64_t at_ms = 0;
  step_trace trace{};
};
using event = std::variant<placed, reserved, reservation_failed, rejected, payment_started,
                           payment_refused, debited, paid, cancel_started, refunded, cancelled>;

struct state {
  std::string order_id;
  std::string user_id;
  order_status status = order_status::none;
  phase step = phase::none;
  std::vector<order_item> items;
  int64_t total_cents = 0;
  std::string reason;
  int64_t created_at = 0;
  int64_t updated_at = 0;
  int64_t expires_at = 0;
};

void apply(state& s, const event& e);

/// The trace of any event, and a way to stamp one (the actor knows the node and request).
const step_trace& trace_of(const event& e);
void set_trace(event& e, const step_trace& t);

/// Validates items (1..100 items, distinct valid product ids, quantity 1..100000).
failure check_items(const std::vector<order_item>& items);

/// First half of `place`, before pricing: nothing exists yet -> ok; exists with the same user and
/// items (product and quantity) -> ok (the caller answers the order as it is); other content
/// `conflict`. Only the user themself or the admin may place (`forbidden`).
failure check_place(const state& s, const principal& who, std::string_view user_id,
                    const std::vector<order_item>& items);
/// Second half: items now carry unit prices. Total is checked for overflow (`bad_request`).
decision<event> place(const state& s, std::string_view user_id, std::vector<order_item> priced,
                      int64_t now_ms);

/// RESERVED -> payment_started; PAID -> no-op; PENDING -> `conflict` (a step is in flight);
/// CANCELLED/REJECTED -> `invalid_state`; missing -> `not_found`; other user's -> `not_found`.
decision<event> pay(const state& s, const principal& who, int64_t now_ms);
/// RESERVED or PAID -> cancel_started; CANCELLED -> no-op; REJECTED -> `invalid_state`;
/// PENDING -> `conflict`; missing or other user's -> `not_found`.
decision<event> cancel(const state& s, const principal& who, std::string reason, int64_t now_ms);
/// RESERVED and now >= expires_at -> cancel_started("expired"); otherwise no events.
decision<event> expire(const state& s, int64_t now_ms);
/// `order.get`: missing or other user's -> `not_found`.
failure check_read(const state& s, const principal& who);

// ---- saga: the step to run now, and the event that records its outcome ----

/// What the coordinator must do next (phase none: nothing).
phase next_step(const state& s);
/// All participants of the current step succeeded: the event that ends the step.
event step_succeeded(const state& s, int64_t now_ms, int64_t reservation_ttl_ms);
/// A participant refused the step for good (out_of_stock, insufficient_funds, not_found): the
/// event that compensates. Only `reserving` and `debiting` can fail for good; other steps retry.
event step_refused(const state& s, const failure& why, int64_t now_ms);

/// When the node must wake this order: PENDING -> now (resume), RESERVED -> expires_at,
/// terminal -> 0 (never).
int64_t wakeup_at(const state& s, int64_t now_ms);
bool is_terminal(const state& s);

order_view view(const state& s);

std::string encode(const event& e);
bool decode(std::string_view bytes, event& out);
std::string encode_snapshot(const state& s);
bool decode_snapshot(std::string_view bytes, state& out);

}  // namespace ordermesh::domain::order
