#include "actors/errors.hpp"

#include <caf/atom.hpp>
#include <caf/make_message.hpp>
#include <caf/message.hpp>
#include <caf/sec.hpp>

namespace ordermesh::actors {

caf::atom_value error_category() {
  return caf::atom("ordermesh");
}

caf::error make_error(domain::errc code, std::string message) {
  return caf::error(static_cast<uint8_t>(code), error_category(),
                    caf::make_message(std::move(message)));
}

caf::error make_error(const domain::failure& f) {
  return make_error(f.code, f.message);
}

domain::failure to_failure(const caf::error& err) {
  using domain::errc;
  if (!err)
    return {};
  if (err.category() == error_category()) {
    std::string text;
    if (err.context().match_elements<std::string>())
      text = err.context().get_as<std::string>(0);
    auto code = static_cast<errc>(err.code());
    if (code == errc::none || code > domain::last_errc)
      code = errc::internal;
    return {code, std::move(text)};
  }
  if (err.category() == caf::atom("system")) {
    switch (static_cast<caf::sec>(err.code())) {
      case caf::sec::request_timeout:
        return {errc::timeout, "the entity did not answer in time"};
      case caf::sec::feature_disabled: {
        // A refusal by rule (e.g. cluster.leave with too few members left): its text says why.
        std::string text = "not possible in this cluster's configuration";
        if (err.context().match_elements<std::string>())
          text = err.context().get_as<std::string>(0);
        return {errc::invalid_state, std::move(text)};
      }
      case caf::sec::request_receiver_down:
      case caf::sec::remote_linking_failed:
      case caf::sec::no_route_to_receiving_node:
      case caf::sec::cannot_connect_to_node:
        return {errc::unavailable, "the entity is not reachable right now"};
      default:
        return {errc::internal, "internal error: " + caf::to_string(err)};
    }
  }
  return {errc::internal, "internal error"};
}

}  // namespace ordermesh::actors
