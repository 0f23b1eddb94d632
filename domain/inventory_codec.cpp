// Storage encoding of inventory events and snapshots. Tags are part of the stored format.
#include "domain/codec.hpp"
#include "domain/inventory.hpp"
#include "domain/overloaded.hpp"

namespace ordermesh::domain::inventory {

namespace {
enum tag : uint8_t {
  tag_stock_added = 1,
  tag_reserved = 2,
  tag_released = 3,
  tag_committed = 4,
  tag_returned = 5,
};

std::string order_only(uint8_t t, const std::string& order_id) {
  codec::writer w(t);
  w.str(order_id);
  return w.take();
}
}  // namespace

std::string encode(const event& e) {
  return std::visit(overloaded{
                        [](const stock_added& ev) {
                          codec::writer w(tag_stock_added);
                          w.str(ev.request_id);
                          w.i64(ev.quantity);
                          return w.take();
                        },
                        [](const reserved& ev) {
                          codec::writer w(tag_reserved);
                          w.str(ev.order_id);
                          w.i64(ev.quantity);
                          return w.take();
                        },
                        [](const released& ev) { return order_only(tag_released, ev.order_id); },
                        [](const committed& ev) { return order_only(tag_committed, ev.order_id); },
                        [](const returned& ev) { return order_only(tag_returned, ev.order_id); },
                    },
                    e);
}

bool decode(std::string_view bytes, event& out) {
  codec::reader r(bytes);
  uint8_t t = 0;
  if (!r.header(t)) {
    return false;
  }
  auto finish = [&](auto&& ev) {
    if (!r.done()) {
      return false;
    }
    out = std::forward<decltype(ev)>(ev);
    return true;
  };
  switch (t) {
    case tag_stock_added: {
      stock_added ev;
      r.str(ev.request_id);
      r.i64(ev.quantity);
      return finish(std::move(ev));
    }
    case tag_reserved: {
      reserved ev;
      r.str(ev.order_id);
      r.i64(ev.quantity);
      return finish(std::move(ev));
    }
    case tag_released: {
      released ev;
      r.str(ev.order_id);
      return finish(std::move(ev));
    }
    case tag_committed: {
      committed ev;
      r.str(ev.order_id);
      return finish(std::move(ev));
    }
    case tag_returned: {
      returned ev;
      r.str(ev.order_id);
      return finish(std::move(ev));
    }
    default:
      return false;
  }
}

std::string encode_snapshot(const state& s) {
  codec::writer w(codec::snapshot_tag(entity_kind::inventory));
  w.str(s.product_id);
  w.i64(s.available);
  w.i64(s.reserved);
  w.i64(s.sold);
  w.i64(s.total_added);
  w.u64(s.adds.size());
  for (const auto& [request_id, quantity] : s.adds) {
    w.str(request_id);
    w.i64(quantity);
  }
  w.u64(s.reservations.size());
  for (const auto& [order_id, res] : s.reservations) {
    w.str(order_id);
    w.i64(res.quantity);
    w.u8(static_cast<uint8_t>(res.status));
  }
  return w.take();
}

bool decode_snapshot(std::string_view bytes, state& out) {
  codec::reader r(bytes);
  uint8_t t = 0;
  if (!r.header(t) || t != codec::snapshot_tag(entity_kind::inventory)) {
    return false;
  }
  state s;
  r.str(s.product_id);
  r.i64(s.available);
  r.i64(s.reserved);
  r.i64(s.sold);
  r.i64(s.total_added);
  size_t n = 0;
  if (!r.count(n)) {
    return false;
  }
  for (size_t i = 0; i < n; ++i) {
    std::string key;
    int64_t quantity = 0;
    // Maps are written in key order; anything else (duplicates included) is not ours.
    if (!r.str(key) || !r.i64(quantity) || (!s.adds.empty() && key <= s.adds.rbegin()->first)) {
      return false;
    }
    s.adds.emplace_hint(s.adds.end(), std::move(key), quantity);
  }
  if (!r.count(n)) {
    return false;
  }
  for (size_t i = 0; i < n; ++i) {
    std::string key;
    reservation res;
    uint8_t status = 0;
    if (!r.str(key) || !r.i64(res.quantity) || !r.u8(status) ||
        status < static_cast<uint8_t>(hold::reserved) ||
        status > static_cast<uint8_t>(hold::returned) ||
        (!s.reservations.empty() && key <= s.reservations.rbegin()->first)) {
      return false;
    }
    res.status = static_cast<hold>(status);
    s.reservations.emplace_hint(s.reservations.end(), std::move(key), res);
  }
  if (!r.done()) {
    return false;
  }
  out = std::move(s);
  return true;
}

}  // namespace ordermesh::domain::inventory
