#pragma once
// The wire format of etcd's v3 JSON gateway as pure functions: requests to JSON bodies, response
// bodies and watch lines to structs. No I/O, no clock, no exceptions out: malformed input gives
// bad_response. Quirks handled here:
//   - keys and values are base64 (standard alphabet, padded);
//   - int64 fields arrive as JSON strings ("42"); numbers are accepted too;
//   - fields at their default are omitted: a failed txn has no "succeeded", a keepalive on an
//     expired lease has no "TTL", a PUT event has no "type";
//   - streaming endpoints (lease keepalive, watch) wrap each answer as {"result": {...}} and
//     report errors in-band as {"error": {"grpc_code", "http_code", "message"}}.
#include <cstdint>
#include <string>
#include <string_view>

#include "cluster/etcd/etcd_base64.hpp"
#include "cluster/etcd/etcd_error.hpp"
#include "cluster/etcd/etcd_types.hpp"

namespace ordermesh::etcd {

// Request bodies. Never throw except std::bad_alloc.
std::string encode_range(const range_request& r);
std::string encode_put(const put_request& r);
std::string encode_delete(const delete_request& r);
std::string encode_txn(const txn_request& r);
/// `id` 0 lets etcd choose the lease id.
std::string encode_lease_grant(int64_t ttl_seconds, int64_t id);
/// The body of keepalive and revoke: {"ID": "<id>"}.
std::string encode_lease_id(int64_t id);
std::string encode_lease_time_to_live(int64_t id, bool keys);
std::string encode_compact(int64_t revision);
std::string encode_watch_create(const watch_request& r);

// Response bodies of HTTP 200 answers. Each returns the decoded answer, or bad_response naming
// the first malformed field; decode_lease_keepalive also returns etcd's in-band error.
result<range_response> decode_range(std::string_view body);
result<put_response> decode_put(std::string_view body);
result<delete_response> decode_delete(std::string_view body);
result<txn_response> decode_txn(std::string_view body);
result<lease_grant_response> decode_lease_grant(std::string_view body);
/// The TTL left after one renewal, in seconds; 0 when the lease expired or never existed (etcd
/// then leaves "TTL" out).
result<int64_t> decode_lease_keepalive(std::string_view body);
/// The header revision of a revoke.
result<int64_t> decode_lease_revoke(std::string_view body);
result<lease_ttl_response> decode_lease_time_to_live(std::string_view body);
/// The header revision of a compaction.
result<int64_t> decode_compact(std::string_view body);

/// The error of a non-200 answer: unavailable (503 / gRPC 14), timeout (504 / gRPC 4),
/// compacted (gRPC 11 "required revision has been compacted"), not_found (gRPC 5, e.g.
/// "requested lease not found"), otherwise http_error. The message is etcd's ("error" or
/// "message" field), or the start of the body when it is not JSON. Never fails.
error decode_error(unsigned http_status, std::string_view body);

/// One line of a watch stream (without its newline). Returns the response, an error etcd sent
/// in-band ({"error": {...}}), or bad_response.
result<watch_response> decode_watch_line(std::string_view line);

}  // namespace ordermesh::etcd
