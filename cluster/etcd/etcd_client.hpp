#pragma once
// A blocking client of etcd's v3 JSON gateway (etcd 3.4). Every call takes a deadline and
// returns by it with the answer or an error; nothing throws. Built for the coordination layer:
//   - membership: lease_grant, then put a member key with that lease (the key's create revision
//     is the member's incarnation), lease_keepalive to renew, lease_revoke to leave;
//   - controller: a txn putting the controller key only if compare::absent(key);
//   - shard keys: txns guarded by compare::mod(shard key) and compare::create(own member key);
//   - watch() on a prefix to learn of every change (a lease expiry shows up as DELETE events).
// No CAF here: call it from a dedicated thread or a detached actor.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "cluster/etcd/etcd_config.hpp"
#include "cluster/etcd/etcd_error.hpp"
#include "cluster/etcd/etcd_types.hpp"
#include "cluster/etcd/etcd_watch.hpp"

namespace ordermesh::etcd {

class http_transport;
struct tls_context;

/// Thread-safe, but calls are serialized over one connection: a thread that must not wait behind
/// another (e.g. lease renewal) gets its own client.
///
/// Every call may fail with:
/// - unavailable: no endpoint answered, the connection broke, or etcd had no leader;
/// - timeout: the deadline passed;
/// - too_large, bad_response: the answer was too big or not what etcd sends;
/// - http_error: etcd refused the request (e.g. an empty key);
/// - internal: out of memory or a bug.
/// A write (put, delete_range, txn, lease_grant, lease_revoke, compact) that failed with
/// unavailable or timeout after it was sent may still have been applied: read before deciding.
/// Reads (range, lease_keepalive, lease_time_to_live) are retried on the next endpoint.
class client {
 public:
  /// A client of the etcd members at `endpoints`, tried in order from the one that answered
  /// last; https endpoints are reached over TLS with options.tls. Connects on first use:
  /// constructing never blocks or fails. It reads the TLS files, though, and when they or the
  /// endpoints are unusable (check_client_config) every call fails with invalid_argument.
  explicit client(std::vector<endpoint> endpoints, client_options options = {});
  ~client();
  client(const client&) = delete;
  client& operator=(const client&) = delete;

  /// The keys in the range (see range_request), the store revision and the count. Fails also
  /// with compacted when `revision` was compacted.
  result<range_response> range(const range_request& r, deadline by);

  /// Writes one key; returns the new revision (and the previous value with prev_kv). Fails also
  /// with not_found when `r.lease` does not exist (expired or revoked).
  result<put_response> put(const put_request& r, deadline by);

  /// Deletes the range; returns the revision and how many keys were deleted (0 is not an error).
  result<delete_response> delete_range(const delete_request& r, deadline by);

  /// Runs the txn; `succeeded` says which branch ran (a failed compare is not an error).
  /// Fails also with not_found when a put in the branch names a lease that does not exist.
  result<txn_response> txn(const txn_request& r, deadline by);

  /// Grants a lease of `ttl_seconds` (etcd raises it to its minimum, about 2 s by default);
  /// `id` 0 lets etcd choose the id. Fails with http_error when `id` is already in use.
  result<lease_grant_response> lease_grant(int64_t ttl_seconds, int64_t id, deadline by);

  /// Renews the lease once; returns the TTL left in seconds, 0 when the lease has expired or
  /// does not exist (then its keys are gone: grant a new lease).
  result<int64_t> lease_keepalive(int64_t id, deadline by);

  /// Revokes the lease, deleting its keys; returns the revision. Fails with not_found when the
  /// lease does not exist.
  result<int64_t> lease_revoke(int64_t id, deadline by);

  /// The TTL left (0 when expired or absent), the granted TTL and, with `keys`, the keys bound.
  result<lease_ttl_response> lease_time_to_live(int64_t id, bool keys, deadline by);

  /// Compacts history up to `revision`; returns the header revision. Fails with compacted when
  /// `revision` is already compacted and http_error when it is in the future.
  result<int64_t> compact(int64_t revision, deadline by);

  /// Opens a watch on its own connection. Returns the stream once etcd accepted the request
  /// (its first next() then yields `created`), or unavailable / timeout / http_error. The stream
  /// is independent of this client and may outlive it.
  result<std::unique_ptr<watch_stream>> watch(const watch_request& r, deadline by);

  /// The endpoints, in configuration order.
  const std::vector<endpoint>& endpoints() const { return endpoints_; }

 private:
  template <class T, class Encode, class Decode>
  result<T> call(const char* target, Encode&& encode, deadline by, bool idempotent,
                 Decode&& decode);

  const std::vector<endpoint> endpoints_;
  const client_options options_;
  error config_error_;                // errc::none unless the configuration is unusable
  std::shared_ptr<tls_context> tls_;  // null for http endpoints
  std::mutex mutex_;                  // serializes calls on transport_
  std::unique_ptr<http_transport> transport_;
};

}  // namespace ordermesh::etcd
