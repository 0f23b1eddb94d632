// Storage encoding of order events and snapshots. Tags are part of the stored format.
#include "domain/codec.hpp"
#include "domain/order.hpp"
#include "domain/overloaded.hpp"

namespace ordermesh::domain::order {

namespace {
enum tag : uint8_t {
  tag_placed = 1,
  tag_reserved = 2,
  tag_reservation_failed = 3,
  tag_rejected = 4,
  tag_payment_started = 5,
  tag_payment_refused = 6,
  tag_debited = 7,
  tag_paid = 8,
  tag_cancel_started = 9,
  tag_refunded = 10,
  tag_cancelled = 11,
};

void write_items(codec::writer& w, const std::vector<order_item>& items) {
  w.u64(items.size());
  for (const order_item& item : items) {
    w.str(item.product_id);
    w.i64(item.quantity);
    w.i64(item.unit_price_cents);
  }
}

bool read_items(codec::reader& r, std::vector<order_item>& items) {
  size_t n = 0;
  if (!r.count(n)) {
    return false;
  }
  items.clear();
  items.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    order_item item;
    if (!r.str(item.product_id) || !r.i64(item.quantity) || !r.i64(item.unit_price_cents)) {
      return false;
    }
    items.push_back(std::move(item));
  }
  return true;
}

// The events that carry nothing but their time.
std::string time_only(uint8_t t, int64_t at_ms) {
  codec::writer w(t);
  w.i64(at_ms);
  return w.take();
}

std::string reason_and_time(uint8_t t, const std::string& reason, int64_t at_ms) {
  codec::writer w(t);
  w.str(reason);
  w.i64(at_ms);
  return w.take();
}

std::string encode_fields(const event& e) {
  return std::visit(
      overloaded{
          [](const placed& ev) {
            codec::writer w(tag_placed);
            w.str(ev.user_id);
            write_items(w, ev.items);
            w.i64(ev.total_cents);
            w.i64(ev.at_ms);
            return w.take();
          },
          [](const reserved& ev) {
            codec::writer w(tag_reserved);
            w.i64(ev.at_ms);
            w.i64(ev.expires_at);
            return w.take();
          },
          [](const reservation_failed& ev) {
            return reason_and_time(tag_reservation_failed, ev.reason, ev.at_ms);
          },
          [](const rejected& ev) { return time_only(tag_rejected, ev.at_ms); },
          [](const payment_started& ev) { return time_only(tag_payment_started, ev.at_ms); },
          [](const payment_refused& ev) {
            return reason_and_time(tag_payment_refused, ev.reason, ev.at_ms);
          },
          [](const debited& ev) { return time_only(tag_debited, ev.at_ms); },
          [](const paid& ev) { return time_only(tag_paid, ev.at_ms); },
          [](const cancel_started& ev) {
            return reason_and_time(tag_cancel_started, ev.reason, ev.at_ms);
          },
          [](const refunded& ev) { return time_only(tag_refunded, ev.at_ms); },
          [](const cancelled& ev) { return time_only(tag_cancelled, ev.at_ms); },
      },
      e);
}

/// Appends the event's trace (node, request id) after its own fields. Absent when empty, so an
/// event without one is stored byte for byte as before the trace existed.
std::string with_trace(std::string bytes, const step_trace& t) {
  if (t.node.empty() && t.request_id.empty())
    return bytes;
  codec::writer w(0);
  w.str(t.node);
  w.str(t.request_id);
  return bytes + w.take().substr(2);  // without the writer's version and tag bytes
}
}  // namespace

std::string encode(const event& e) {
  return with_trace(encode_fields(e), trace_of(e));
}

bool decode(std::string_view bytes, event& out) {
  codec::reader r(bytes);
  uint8_t t = 0;
  if (!r.header(t)) {
    return false;
  }
  auto finish = [&](auto&& ev) {
    // The trace, when present, follows the fields (older events end before it).
    if (!r.done()) {
      r.str(ev.trace.node);
      r.str(ev.trace.request_id);
      // The encoder writes no trace rather than an empty one: one spelling per event (found by
      // fuzz/order_codec_fuzz).
      if (ev.trace.node.empty() && ev.trace.request_id.empty())
        return false;
    }
    if (!r.done()) {
      return false;
    }
    out = std::forward<decltype(ev)>(ev);
    return true;
  };
  // Events of the same shape decode the same way; only the type differs.
  auto timed = [&](auto ev) {
    r.i64(ev.at_ms);
    return finish(std::move(ev));
  };
  auto with_reason = [&](auto ev) {
    r.str(ev.reason);
    r.i64(ev.at_ms);
    return finish(std::move(ev));
  };
  switch (t) {
    case tag_placed: {
      placed ev;
      r.str(ev.user_id);
      read_items(r, ev.items);
      r.i64(ev.total_cents);
      r.i64(ev.at_ms);
      return finish(std::move(ev));
    }
    case tag_reserved: {
      reserved ev;
      r.i64(ev.at_ms);
      r.i64(ev.expires_at);
      return finish(std::move(ev));
    }
    case tag_reservation_failed:
      return with_reason(reservation_failed{});
    case tag_rejected:
      return timed(rejected{});
    case tag_payment_started:
      return timed(payment_started{});
    case tag_payment_refused:
      return with_reason(payment_refused{});
    case tag_debited:
      return timed(debited{});
    case tag_paid:
      return timed(paid{});
    case tag_cancel_started:
      return with_reason(cancel_started{});
    case tag_refunded:
      return timed(refunded{});
    case tag_cancelled:
      return timed(cancelled{});
    default:
      return false;
  }
}

std::string encode_snapshot(const state& s) {
  codec::writer w(codec::snapshot_tag(entity_kind::order));
  w.str(s.order_id);
  w.str(s.user_id);
  w.u8(static_cast<uint8_t>(s.status));
  w.u8(static_cast<uint8_t>(s.step));
  write_items(w, s.items);
  w.i64(s.total_cents);
  w.str(s.reason);
  w.i64(s.created_at);
  w.i64(s.updated_at);
  w.i64(s.expires_at);
  return w.take();
}

bool decode_snapshot(std::string_view bytes, state& out) {
  codec::reader r(bytes);
  uint8_t t = 0;
  if (!r.header(t) || t != codec::snapshot_tag(entity_kind::order)) {
    return false;
  }
  state s;
  uint8_t status = 0;
  uint8_t step = 0;
  r.str(s.order_id);
  r.str(s.user_id);
  if (!r.u8(status) || !r.u8(step) || status > static_cast<uint8_t>(order_status::rejected) ||
      step > static_cast<uint8_t>(phase::returning)) {
    return false;
  }
  s.status = static_cast<order_status>(status);
  s.step = static_cast<phase>(step);
  read_items(r, s.items);
  r.i64(s.total_cents);
  r.str(s.reason);
  r.i64(s.created_at);
  r.i64(s.updated_at);
  r.i64(s.expires_at);
  if (!r.done()) {
    return false;
  }
  out = std::move(s);
  return true;
}

}  // namespace ordermesh::domain::order
