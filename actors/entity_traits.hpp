#pragma once
// Binds each domain entity kind to the generic entity machinery (entity_core.hpp).
#include <functional>
#include <utility>

#include <caf/response_promise.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "domain/inventory.hpp"
#include "domain/order.hpp"
#include "domain/product.hpp"
#include "domain/user.hpp"

namespace ordermesh::actors {

/// Forwards the storage and event functions of the domain namespace `NS` for kind `K`.
#define ORDERMESH_ENTITY_TRAITS(NS)                           \
  using state = domain::NS::state;                            \
  using event = domain::NS::event;                            \
  static void apply(state& s, const event& e) {               \
    domain::NS::apply(s, e);                                  \
  }                                                           \
  static std::string encode(const event& e) {                 \
    return domain::NS::encode(e);                             \
  }                                                           \
  static bool decode(std::string_view b, event& e) {          \
    return domain::NS::decode(b, e);                          \
  }                                                           \
  static std::string encode_snapshot(const state& s) {        \
    return domain::NS::encode_snapshot(s);                    \
  }                                                           \
  static bool decode_snapshot(std::string_view b, state& s) { \
    return domain::NS::decode_snapshot(b, s);                 \
  }

struct user_traits {
  ORDERMESH_ENTITY_TRAITS(user)
  static constexpr const char* name = "user";
  struct extra {};
  static void init(state& s, const std::string& id) { s.user_id = id; }
  static int64_t wakeup_at(const state&, int64_t) { return 0; }
  static bool may_passivate(const state&) { return true; }
};

struct product_traits {
  ORDERMESH_ENTITY_TRAITS(product)
  static constexpr const char* name = "product";
  struct extra {};
  static void init(state& s, const std::string& id) { s.product_id = id; }
  static int64_t wakeup_at(const state&, int64_t) { return 0; }
  static bool may_passivate(const state&) { return true; }
};

struct inventory_traits {
  ORDERMESH_ENTITY_TRAITS(inventory)
  static constexpr const char* name = "inventory";
  /// An inventory exists once its product does (docs/PROTOCOL.md): until it has an event of its
  /// own, its product is asked once per incarnation, and the answer is remembered here.
  struct extra {
    bool product_known = false;
  };
  static void init(state& s, const std::string& id) { s.product_id = id; }
  static int64_t wakeup_at(const state&, int64_t) { return 0; }
  static bool may_passivate(const state&) { return true; }
};

struct order_traits {
  ORDERMESH_ENTITY_TRAITS(order)
  static constexpr const char* name = "order";
  /// The coordinator's bookkeeping; none of it is persisted (the events are).
  struct extra {
    /// Run when the saga reaches phase none; the promise is the request it answers, so that
    /// it can be failed instead if the order stops first (eviction, a failed write).
    std::vector<std::pair<caf::response_promise, std::function<void()>>> on_settled;
    uint32_t retries = 0;          // consecutive failed attempts of this step
    domain::failure last_refusal;  // why the last step was refused
    bool expiry_armed = false;
    uint64_t attempt = 0;  // bumped when a step ends: answers and retries of older ones are ignored
    bool step_in_flight = false;
    /// The request whose saga runs now: every step carries it to its participants, every event
    /// records it (order.timeline), every log line names it. Empty after a restart resumed a
    /// saga from disk.
    std::string req;
  };
  static void init(state& s, const std::string& id) { s.order_id = id; }
  static int64_t wakeup_at(const state& s, int64_t now) { return domain::order::wakeup_at(s, now); }
  /// An order with a saga in flight or a reservation to expire stays in memory (it holds the
  /// timer); any other (PAID, CANCELLED, REJECTED) may leave: nothing happens to it by itself.
  static bool may_passivate(const state& s) {
    return s.status != domain::order_status::pending && s.status != domain::order_status::reserved;
  }
};

#undef ORDERMESH_ENTITY_TRAITS

}  // namespace ordermesh::actors
