#pragma once
// Typed errors across actor boundaries: a domain::failure travels as a caf::error in the
// "ordermesh" category (code = domain::errc, context = the message for people).
#include <string>

#include <caf/error.hpp>

#include "domain/errors.hpp"

namespace ordermesh::actors {

/// The category atom of ordermesh errors.
caf::atom_value error_category();

caf::error make_error(domain::errc code, std::string message);
caf::error make_error(const domain::failure& f);

/// Any caf::error as a domain::failure. CAF's own errors map to what a client can act on:
/// request_timeout -> timeout; a dead or unreachable receiver -> unavailable; others -> internal.
domain::failure to_failure(const caf::error& err);

}  // namespace ordermesh::actors
