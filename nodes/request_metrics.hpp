#pragma once
// Client requests in the node's metrics (observability/request_meter.hpp): by op and reply code,
// latency per op from the request's arrival on the I/O thread to its reply.
#include "domain/errors.hpp"
#include "nodes/protocol.hpp"

namespace ordermesh::node {

/// One answered request; `code` none means ok.
void meter_reply(const protocol::request& req, domain::errc code) noexcept;

/// A line that never became a request (malformed, too large): counted under op "invalid".
void meter_unparsed(domain::errc code) noexcept;

}  // namespace ordermesh::node
