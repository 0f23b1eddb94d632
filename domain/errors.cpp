#include "domain/errors.hpp"

namespace ordermesh::domain {

namespace {
// Every code, so that `from_string` stays in step with `to_string` without a second table.
constexpr errc all_codes[] = {
    errc::none,          errc::bad_request, errc::unauthorized,   errc::forbidden,
    errc::not_found,     errc::conflict,    errc::out_of_stock,   errc::insufficient_funds,
    errc::invalid_state, errc::unavailable, errc::timeout,        errc::overloaded,
    errc::too_large,     errc::internal,    errc::limit_exceeded, errc::corrupted,
};
}  // namespace

std::string_view to_string(errc code) {
  switch (code) {
    case errc::none:
      return "none";
    case errc::bad_request:
      return "bad_request";
    case errc::unauthorized:
      return "unauthorized";
    case errc::forbidden:
      return "forbidden";
    case errc::not_found:
      return "not_found";
    case errc::conflict:
      return "conflict";
    case errc::out_of_stock:
      return "out_of_stock";
    case errc::insufficient_funds:
      return "insufficient_funds";
    case errc::invalid_state:
      return "invalid_state";
    case errc::unavailable:
      return "unavailable";
    case errc::timeout:
      return "timeout";
    case errc::overloaded:
      return "overloaded";
    case errc::too_large:
      return "too_large";
    case errc::internal:
      return "internal";
    case errc::limit_exceeded:
      return "limit_exceeded";
    case errc::corrupted:
      return "corrupted";
  }
  // A value outside the enum (e.g. a corrupt byte) still needs a non-empty spelling.
  return "internal";
}

bool from_string(std::string_view text, errc& out) {
  for (errc code : all_codes) {
    if (to_string(code) == text) {
      out = code;
      return true;
    }
  }
  return false;
}

}  // namespace ordermesh::domain
