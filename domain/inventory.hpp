#pragma once
// Stock of one product. Invariant after every event:
//   available, reserved, sold >= 0 and available + reserved + sold == total_added.
// Every step is idempotent per request_id (add) or order_id (reserve/release/commit/return).
#include <map>
#include <string>
#include <string_view>
#include <variant>

#include "domain/decision.hpp"
#include "domain/types.hpp"

namespace ordermesh::domain::inventory {

struct stock_added {
  std::string request_id;
  int64_t quantity = 0;
};
struct reserved {
  std::string order_id;
  int64_t quantity = 0;
};
/// Also recorded for an order never reserved here (quantity 0), so that a late, retried
/// `reserve` for that order cannot take stock after the order gave up.
struct released {
  std::string order_id;
};
struct committed {
  std::string order_id;
};
struct returned {  // a paid order cancelled: sold stock goes back to available
  std::string order_id;
};
using event = std::variant<stock_added, reserved, released, committed, returned>;

enum class hold : uint8_t { reserved = 1, released, committed, returned };
struct reservation {
  int64_t quantity = 0;
  hold status = hold::reserved;
};

struct state {
  std::string product_id;
  int64_t available = 0;
  int64_t reserved = 0;
  int64_t sold = 0;
  int64_t total_added = 0;
  std::map<std::string, int64_t> adds;              // request_id -> quantity
  std::map<std::string, reservation> reservations;  // order_id -> hold
};

void apply(state& s, const event& e);

/// Admin only. Same request_id: same quantity no-op, else `conflict`. Quantity 1..100000.
decision<event> add_stock(const state& s, const principal& who, std::string_view request_id,
                          int64_t quantity);
/// Not enough available: `out_of_stock`. Repeat with same quantity while reserved/committed: no-op.
/// After release/return: `invalid_state`. Other quantity: `conflict`.
decision<event> reserve(const state& s, std::string_view order_id, int64_t quantity);
/// reserved -> released; unknown order -> tombstone; released/returned -> no-op;
/// committed -> `invalid_state`.
decision<event> release(const state& s, std::string_view order_id);
/// reserved -> committed; committed -> no-op; anything else `invalid_state`.
decision<event> commit(const state& s, std::string_view order_id);
/// committed -> returned; returned -> no-op; anything else `invalid_state`.
decision<event> give_back(const state& s, std::string_view order_id);

inventory_view view(const state& s);
/// True when the invariant above holds (tests and recovery assert it).
bool consistent(const state& s);

std::string encode(const event& e);
bool decode(std::string_view bytes, event& out);
std::string encode_snapshot(const state& s);
bool decode_snapshot(std::string_view bytes, state& out);

}  // namespace ordermesh::domain::inventory
