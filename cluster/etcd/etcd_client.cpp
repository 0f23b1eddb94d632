#include "cluster/etcd/etcd_client.hpp"

#include <exception>
#include <new>
#include <utility>

#include "cluster/etcd/etcd_codec.hpp"
#include "cluster/etcd/etcd_tls.hpp"
#include "cluster/etcd/etcd_transport.hpp"

namespace ordermesh::etcd {

namespace {

/// The TLS context, or null with *why set (so that the constructor itself never fails).
std::shared_ptr<tls_context> load_context(const std::vector<endpoint>& endpoints,
                                          const client_options& options, error* why) {
  auto ctx = context_for(endpoints, options);
  if (!ctx) {
    *why = ctx.err();
    return nullptr;
  }
  return std::move(ctx.value());
}

}  // namespace

client::client(std::vector<endpoint> endpoints, client_options options)
    : endpoints_(std::move(endpoints)),
      options_(std::move(options)),
      tls_(load_context(endpoints_, options_, &config_error_)),
      transport_(std::make_unique<http_transport>(endpoints_, options_, tls_)) {}

client::~client() = default;

template <class T, class Encode, class Decode>
result<T> client::call(const char* target, Encode&& encode, deadline by, bool idempotent,
                       Decode&& decode) {
  if (config_error_.code != errc::none) {
    return config_error_;
  }
  // The public API's boundary: whatever throws below (only bad_alloc is expected) stops here.
  try {
    const std::string body = encode();
    std::lock_guard<std::mutex> lock(mutex_);
    auto reply = transport_->post(target, body, by, idempotent);
    if (!reply) {
      return reply.err();
    }
    if (reply->status != 200) {
      return decode_error(reply->status, reply->body);
    }
    return decode(reply->body);
  } catch (const std::exception& e) {
    return error{errc::internal, std::string(target) + ": " + e.what()};
  }
}

result<range_response> client::range(const range_request& r, deadline by) {
  return call<range_response>(
      "/v3/kv/range", [&] { return encode_range(r); }, by, true, decode_range);
}

result<put_response> client::put(const put_request& r, deadline by) {
  return call<put_response>(
      "/v3/kv/put", [&] { return encode_put(r); }, by, false, decode_put);
}

result<delete_response> client::delete_range(const delete_request& r, deadline by) {
  return call<delete_response>(
      "/v3/kv/deleterange", [&] { return encode_delete(r); }, by, false, decode_delete);
}

result<txn_response> client::txn(const txn_request& r, deadline by) {
  return call<txn_response>(
      "/v3/kv/txn", [&] { return encode_txn(r); }, by, false, decode_txn);
}

result<lease_grant_response> client::lease_grant(int64_t ttl_seconds, int64_t id, deadline by) {
  return call<lease_grant_response>(
      "/v3/lease/grant", [&] { return encode_lease_grant(ttl_seconds, id); }, by, false,
      decode_lease_grant);
}

result<int64_t> client::lease_keepalive(int64_t id, deadline by) {
  return call<int64_t>(
      "/v3/lease/keepalive", [&] { return encode_lease_id(id); }, by, true, decode_lease_keepalive);
}

result<int64_t> client::lease_revoke(int64_t id, deadline by) {
  return call<int64_t>(
      "/v3/lease/revoke", [&] { return encode_lease_id(id); }, by, false, decode_lease_revoke);
}

result<lease_ttl_response> client::lease_time_to_live(int64_t id, bool keys, deadline by) {
  return call<lease_ttl_response>(
      "/v3/lease/timetolive", [&] { return encode_lease_time_to_live(id, keys); }, by, true,
      decode_lease_time_to_live);
}

result<int64_t> client::compact(int64_t revision, deadline by) {
  return call<int64_t>(
      "/v3/kv/compaction", [&] { return encode_compact(revision); }, by, false, decode_compact);
}

result<std::unique_ptr<watch_stream>> client::watch(const watch_request& r, deadline by) {
  if (config_error_.code != errc::none) {
    return config_error_;
  }
  std::size_t first = 0;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    first = transport_->preferred();
  }
  return watch_stream::open(endpoints_, first, r, options_, tls_, by);
}

}  // namespace ordermesh::etcd
