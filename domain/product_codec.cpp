// Storage encoding of product events and snapshots. Tags are part of the stored format.
#include "domain/codec.hpp"
#include "domain/product.hpp"

namespace ordermesh::domain::product {

namespace {
constexpr uint8_t tag_created = 1;
}  // namespace

std::string encode(const event& e) {
  const created& ev = std::get<created>(e);
  codec::writer w(tag_created);
  w.str(ev.name);
  w.i64(ev.price_cents);
  w.i64(ev.at_ms);
  return w.take();
}

bool decode(std::string_view bytes, event& out) {
  codec::reader r(bytes);
  uint8_t t = 0;
  if (!r.header(t) || t != tag_created) {
    return false;
  }
  created ev;
  r.str(ev.name);
  r.i64(ev.price_cents);
  r.i64(ev.at_ms);
  if (!r.done()) {
    return false;
  }
  out = std::move(ev);
  return true;
}

std::string encode_snapshot(const state& s) {
  codec::writer w(codec::snapshot_tag(entity_kind::product));
  w.str(s.product_id);
  w.boolean(s.exists);
  w.str(s.name);
  w.i64(s.price_cents);
  w.i64(s.created_at);
  return w.take();
}

bool decode_snapshot(std::string_view bytes, state& out) {
  codec::reader r(bytes);
  uint8_t t = 0;
  if (!r.header(t) || t != codec::snapshot_tag(entity_kind::product)) {
    return false;
  }
  state s;
  r.str(s.product_id);
  r.boolean(s.exists);
  r.str(s.name);
  r.i64(s.price_cents);
  r.i64(s.created_at);
  if (!r.done()) {
    return false;
  }
  out = std::move(s);
  return true;
}

}  // namespace ordermesh::domain::product
