#pragma once
// Value types shared by all entity kinds: identities, limits, the caller, views.
// Plain C++: no CAF, no sockets, no storage. The `inspect` overloads let the actor layer
// serialize these types without this folder depending on CAF.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace ordermesh::domain {

enum class entity_kind : uint8_t { user = 1, product = 2, inventory = 3, order = 4 };
std::string_view to_string(entity_kind kind);
bool from_string(std::string_view text, entity_kind& out);

/// Limits from the protocol contract.
namespace limits {
constexpr size_t max_id_length = 64;
constexpr int64_t max_quantity = 100000;
constexpr size_t max_items = 100;
constexpr int64_t max_money_cents = 1000000000000;       // 10^12, one amount
constexpr int64_t max_balance_cents = 1000000000000000;  // 10^15, a wallet
constexpr int64_t max_stock = 1000000000000;             // 10^12 units of a product
constexpr size_t max_name_length = 200;
constexpr size_t max_password_length = 1024;
constexpr size_t max_orders_listed = 1000;
}  // namespace limits

/// True when `id` matches [A-Za-z0-9._-]{1,64}.
bool valid_id(std::string_view id);

/// Who is asking. The node authenticates the token; rules only read this.
struct principal {
  std::string user_id;  // empty: anonymous (or admin)
  bool admin = false;
  /// Admin, or the user `uid` themself.
  bool may_act_for(std::string_view uid) const {
    return admin || (!user_id.empty() && user_id == uid);
  }
};
template <class Inspector>
auto inspect(Inspector& f, principal& x) {
  return f(x.user_id, x.admin);
}

struct order_item {
  std::string product_id;
  int64_t quantity = 0;
  int64_t unit_price_cents = 0;  // 0 until the order priced it
  friend bool operator==(const order_item& a, const order_item& b) {
    return a.product_id == b.product_id && a.quantity == b.quantity &&
           a.unit_price_cents == b.unit_price_cents;
  }
};
template <class Inspector>
auto inspect(Inspector& f, order_item& x) {
  return f(x.product_id, x.quantity, x.unit_price_cents);
}

// ---- views: what entities answer; the node renders them as JSON ----

struct user_view {
  std::string user_id;
  std::string name;
  int64_t balance_cents = 0;
};
template <class Inspector>
auto inspect(Inspector& f, user_view& x) {
  return f(x.user_id, x.name, x.balance_cents);
}

struct product_view {
  std::string product_id;
  std::string name;
  int64_t price_cents = 0;
};
template <class Inspector>
auto inspect(Inspector& f, product_view& x) {
  return f(x.product_id, x.name, x.price_cents);
}

struct inventory_view {
  std::string product_id;
  int64_t available = 0;
  int64_t reserved = 0;
  int64_t sold = 0;
};
template <class Inspector>
auto inspect(Inspector& f, inventory_view& x) {
  return f(x.product_id, x.available, x.reserved, x.sold);
}

enum class order_status : uint8_t { none = 0, pending, reserved, paid, cancelled, rejected };
/// "PENDING", "RESERVED", ...; "NONE" for an order that does not exist.
std::string_view to_string(order_status s);

struct order_view {
  std::string order_id;
  std::string user_id;
  uint8_t status = 0;  // order_status; a byte so every inspector can carry it
  std::vector<order_item> items;
  int64_t total_cents = 0;
  std::string reason;      // why REJECTED or CANCELLED; empty otherwise
  int64_t created_at = 0;  // ms since the Unix epoch
  int64_t updated_at = 0;
  int64_t expires_at = 0;  // RESERVED only: when the reservation lapses; 0 otherwise
};
template <class Inspector>
auto inspect(Inspector& f, order_view& x) {
  return f(x.order_id, x.user_id, x.status, x.items, x.total_cents, x.reason, x.created_at,
           x.updated_at, x.expires_at);
}

struct order_list_view {
  std::vector<order_view> orders;
};
template <class Inspector>
auto inspect(Inspector& f, order_list_view& x) {
  return f(x.orders);
}

}  // namespace ordermesh::domain
