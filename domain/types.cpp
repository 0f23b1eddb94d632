#include "domain/types.hpp"

namespace ordermesh::domain {

std::string_view to_string(entity_kind kind) {
  switch (kind) {
    case entity_kind::user:
      return "user";
    case entity_kind::product:
      return "product";
    case entity_kind::inventory:
      return "inventory";
    case entity_kind::order:
      return "order";
  }
  return "unknown";
}

bool from_string(std::string_view text, entity_kind& out) {
  for (entity_kind kind :
       {entity_kind::user, entity_kind::product, entity_kind::inventory, entity_kind::order}) {
    if (to_string(kind) == text) {
      out = kind;
      return true;
    }
  }
  return false;
}

std::string_view to_string(order_status s) {
  switch (s) {
    case order_status::none:
      return "NONE";
    case order_status::pending:
      return "PENDING";
    case order_status::reserved:
      return "RESERVED";
    case order_status::paid:
      return "PAID";
    case order_status::cancelled:
      return "CANCELLED";
    case order_status::rejected:
      return "REJECTED";
  }
  return "NONE";
}

bool valid_id(std::string_view id) {
  if (id.empty() || id.size() > limits::max_id_length) {
    return false;
  }
  for (char c : id) {
    // Spelled out rather than isalnum(): the locale must not widen the alphabet.
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-';
    if (!ok) {
      return false;
    }
  }
  return true;
}

}  // namespace ordermesh::domain
