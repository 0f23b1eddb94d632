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
using event = std::variant<registered, deposited, debited, refunded, order_linked>;

struct payment {
  int64_t amount_cents = 0;
  bool refunded = false;
};

struct state {
  std::string user_id;
  bool exists = false;
  std::string name;
  std::string password_hash;
  int64_t created_at = 0;
  int64_t balance_cents = 0;
  std::map<std::string, int64_t> deposits;  // request_id -> amount (idempotency)
  std::map<std::string, payment> payments;  // order_id -> debit (idempotency)
  std::vector<std::string> orders;          // order ids in placement order
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
/// Saga step at placement: user must exist (`not_found`); linking twice is a no-op.
decision<event> link_order(const state& s, std::string_view order_id);

/// `get` / `order.list`: own user or admin; `not_found` for a missing user, `forbidden` otherwise.
failure check_read(const state& s, const principal& who);
user_view view(const state& s);

// ---- storage encoding: versioned binary, stable across releases ----
std::string encode(const event& e);
bool decode(std::string_view bytes, event& out);
std::string encode_snapshot(const state& s);
bool decode_snapshot(std::string_view bytes, state& out);

}  // namespace ordermesh::domain::user
