#pragma once
// A product of the catalog: name and price, created once by the admin.
#include <string>
#include <string_view>
#include <variant>

#include "domain/decision.hpp"
#include "domain/types.hpp"

namespace ordermesh::domain::product {

struct created {
  std::string name;
  int64_t price_cents = 0;
  int64_t at_ms = 0;
};
using event = std::variant<created>;

struct state {
  std::string product_id;
  bool exists = false;
  std::string name;
  int64_t price_cents = 0;
  int64_t created_at = 0;
};

void apply(state& s, const event& e);

/// Admin only (`forbidden`). Creating it again with the same name and price is a no-op;
/// with other content `conflict`.
decision<event> create(const state& s, const principal& who, std::string_view name,
                       int64_t price_cents, int64_t now_ms);
/// `not_found` when it does not exist.
failure check_read(const state& s);
product_view view(const state& s);

std::string encode(const event& e);
bool decode(std::string_view bytes, event& out);
std::string encode_snapshot(const state& s);
bool decode_snapshot(std::string_view bytes, state& out);

}  // namespace ordermesh::domain::product
