// Storage encoding of user events and snapshots. Tags are part of the stored format: never
// renumber them, only add new ones.
#include "domain/codec.hpp"
#include "domain/overloaded.hpp"
#include "domain/user.hpp"

namespace ordermesh::domain::user {

namespace {
enum tag : uint8_t {
  tag_registered = 1,
  tag_deposited = 2,
  tag_debited = 3,
  tag_refunded = 4,
  tag_order_linked = 5,
  tag_slot_opened = 6,
  tag_slot_closed = 7,
};

// Snapshots with open reservation slots have their own tag, so that an old snapshot (without
// them) still decodes and a new one cut short after its order list is refused, not misread.
constexpr uint8_t snapshot_with_slots_tag = codec::snapshot_tag(entity_kind::user) | 0x10;
}  // namespace

std::string encode(const event& e) {
  return std::visit(overloaded{
                        [](const registered& ev) {
                          codec::writer w(tag_registered);
                          w.str(ev.name);
                          w.str(ev.password_hash);
                          w.i64(ev.at_ms);
                          return w.take();
                        },
                        [](const deposited& ev) {
                          codec::writer w(tag_deposited);
                          w.str(ev.request_id);
                          w.i64(ev.amount_cents);
                          return w.take();
                        },
                        [](const debited& ev) {
                          codec::writer w(tag_debited);
                          w.str(ev.order_id);
                          w.i64(ev.amount_cents);
                          return w.take();
                        },
                        [](const refunded& ev) {
                          codec::writer w(tag_refunded);
                          w.str(ev.order_id);
                          w.i64(ev.amount_cents);
                          return w.take();
                        },
                        [](const order_linked& ev) {
                          codec::writer w(tag_order_linked);
                          w.str(ev.order_id);
                          return w.take();
                        },
                        [](const slot_opened& ev) {
                          codec::writer w(tag_slot_opened);
                          w.str(ev.order_id);
                          w.i64(ev.units);
                          w.i64(ev.until_ms);
                          w.i64(ev.at_ms);
                          return w.take();
                        },
                        [](const slot_closed& ev) {
                          codec::writer w(tag_slot_closed);
                          w.str(ev.order_id);
                          return w.take();
                        },
                    },
                    e);
}

bool decode(std::string_view bytes, event& out) {
  codec::reader r(bytes);
  uint8_t t = 0;
  if (!r.header(t)) {
    return false;
  }
  // `out` changes only when the whole record decoded.
  auto finish = [&](auto&& ev) {
    if (!r.done()) {
      return false;
    }
    out = std::forward<decltype(ev)>(ev);
    return true;
  };
  switch (t) {
    case tag_registered: {
      registered ev;
      r.str(ev.name);
      r.str(ev.password_hash);
      r.i64(ev.at_ms);
      return finish(std::move(ev));
    }
    case tag_deposited: {
      deposited ev;
      r.str(ev.request_id);
      r.i64(ev.amount_cents);
      return finish(std::move(ev));
    }
    case tag_debited: {
      debited ev;
      r.str(ev.order_id);
      r.i64(ev.amount_cents);
      return finish(std::move(ev));
    }
    case tag_refunded: {
      refunded ev;
      r.str(ev.order_id);
      r.i64(ev.amount_cents);
      return finish(std::move(ev));
    }
    case tag_order_linked: {
      order_linked ev;
      r.str(ev.order_id);
      return finish(std::move(ev));
    }
    case tag_slot_opened: {
      slot_opened ev;
      r.str(ev.order_id);
      r.i64(ev.units);
      r.i64(ev.until_ms);
      r.i64(ev.at_ms);
      return finish(std::move(ev));
    }
    case tag_slot_closed: {
      slot_closed ev;
      r.str(ev.order_id);
      return finish(std::move(ev));
    }
    default:
      return false;
  }
}

std::string encode_snapshot(const state& s) {
  codec::writer w(snapshot_with_slots_tag);
  w.str(s.user_id);
  w.boolean(s.exists);
  w.str(s.name);
  w.str(s.password_hash);
  w.i64(s.created_at);
  w.i64(s.balance_cents);
  w.u64(s.deposits.size());
  for (const auto& [request_id, amount] : s.deposits) {
    w.str(request_id);
    w.i64(amount);
  }
  w.u64(s.payments.size());
  for (const auto& [order_id, p] : s.payments) {
    w.str(order_id);
    w.i64(p.amount_cents);
    w.boolean(p.refunded);
  }
  w.u64(s.orders.size());
  for (const std::string& order_id : s.orders) {
    w.str(order_id);
  }
  w.u64(s.open_slots.size());
  for (const auto& [order_id, slot] : s.open_slots) {
    w.str(order_id);
    w.i64(slot.units);
    w.i64(slot.until_ms);
  }
  return w.take();
}

bool decode_snapshot(std::string_view bytes, state& out) {
  codec::reader r(bytes);
  uint8_t t = 0;
  if (!r.header(t) ||
      (t != codec::snapshot_tag(entity_kind::user) && t != snapshot_with_slots_tag)) {
    return false;
  }
  state s;
  r.str(s.user_id);
  r.boolean(s.exists);
  r.str(s.name);
  r.str(s.password_hash);
  r.i64(s.created_at);
  r.i64(s.balance_cents);
  size_t n = 0;
  if (!r.count(n)) {
    return false;
  }
  for (size_t i = 0; i < n; ++i) {
    std::string key;
    int64_t amount = 0;
    // Maps are written in key order; anything else (duplicates included) is not ours.
    if (!r.str(key) || !r.i64(amount) ||
        (!s.deposits.empty() && key <= s.deposits.rbegin()->first)) {
      return false;
    }
    s.deposits.emplace_hint(s.deposits.end(), std::move(key), amount);
  }
  if (!r.count(n)) {
    return false;
  }
  for (size_t i = 0; i < n; ++i) {
    std::string key;
    payment p;
    if (!r.str(key) || !r.i64(p.amount_cents) || !r.boolean(p.refunded) ||
        (!s.payments.empty() && key <= s.payments.rbegin()->first)) {
      return false;
    }
    s.payments.emplace_hint(s.payments.end(), std::move(key), p);
  }
  if (!r.count(n)) {
    return false;
  }
  s.orders.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    std::string order_id;
    if (!r.str(order_id)) {
      return false;
    }
    s.orders.push_back(std::move(order_id));
  }
  if (t == snapshot_with_slots_tag) {
    if (!r.count(n)) {
      return false;
    }
    for (size_t i = 0; i < n; ++i) {
      std::string key;
      open_slot slot;
      if (!r.str(key) || !r.i64(slot.units) || !r.i64(slot.until_ms) ||
          (!s.open_slots.empty() && key <= s.open_slots.rbegin()->first)) {
        return false;
      }
      s.open_slots.emplace_hint(s.open_slots.end(), std::move(key), slot);
    }
  }
  if (!r.done()) {
    return false;
  }
  out = std::move(s);
  return true;
}

}  // namespace ordermesh::domain::user
