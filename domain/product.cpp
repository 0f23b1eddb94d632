// Product rules: a catalog entry created once by the admin.
#include "domain/product.hpp"

#include "domain/overloaded.hpp"

namespace ordermesh::domain::product {

namespace {
using decision_t = decision<event>;
}  // namespace

void apply(state& s, const event& e) {
  std::visit(
      overloaded{
          [&](const created& ev) {
            s.exists = true;
            s.name = ev.name;
            s.price_cents = ev.price_cents;
            s.created_at = ev.at_ms;
          },
      },
      e);
}

decision_t create(const state& s, const principal& who, std::string_view name, int64_t price_cents,
                  int64_t now_ms) {
  if (!who.admin) {
    return decision_t::refuse(errc::forbidden, "only the admin creates products");
  }
  if (name.empty() || name.size() > limits::max_name_length) {
    return decision_t::refuse(errc::bad_request, "name must be 1..200 bytes");
  }
  if (price_cents < 0 || price_cents > limits::max_money_cents) {
    return decision_t::refuse(errc::bad_request, "price must be 0..10^12 cents");
  }
  if (s.exists) {
    if (s.name == name && s.price_cents == price_cents) {
      return decision_t::accept();  // a retry of the create that made it
    }
    return decision_t::refuse(errc::conflict,
                              "product " + s.product_id + " exists with other content");
  }
  return decision_t::accept({created{std::string(name), price_cents, now_ms}});
}

failure check_read(const state& s) {
  if (!s.exists) {
    return {errc::not_found, "product " + s.product_id + " not found"};
  }
  return {};
}

product_view view(const state& s) {
  return product_view{s.product_id, s.name, s.price_cents};
}

}  // namespace ordermesh::domain::product
