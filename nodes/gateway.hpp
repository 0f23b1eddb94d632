#pragma once
// The gateway turns client requests into entity messages and entity answers into reply lines.
// One gateway actor per client connection: it authenticates the token, checks what the
// protocol layer cannot (who may call what), routes to the entity, and answers within the
// request deadline. Slow work (password hashing) runs on the hasher's threads, after the
// password limits admitted it.
#include <atomic>
#include <chrono>
#include <memory>
#include <string>

#include <caf/actor.hpp>
#include <caf/fwd.hpp>

#include "actors/node_context.hpp"
#include "domain/request_id.hpp"
#include "nodes/client_listener.hpp"
#include "nodes/online_backup.hpp"
#include "nodes/password_hasher.hpp"
#include "nodes/password_limits.hpp"
#include "nodes/session_tokens.hpp"

namespace ordermesh::node {

/// What every gateway of a node shares.
struct gateway_shared {
  gateway_shared(actors::context_ptr c, std::string admin, password_hasher& h, password_limits& l,
                 std::chrono::milliseconds timeout, std::chrono::milliseconds session)
      : ctx(std::move(c)),
        admin_token(std::move(admin)),
        tokens(admin_token),
        hasher(h),
        limits(l),
        request_timeout(timeout),
        session_ttl(session),
        request_ids(ctx->node_id(), ctx->now_ms()) {}

  actors::context_ptr ctx;
  std::string admin_token;
  session_tokens tokens;
  password_hasher& hasher;
  password_limits& limits;  // who may start password work now (per address, per user id)
  std::chrono::milliseconds request_timeout;
  std::chrono::milliseconds session_ttl;
  std::string client_address;         // host:port clients use, for cluster.status
  caf::actor agent;                   // the member agent: cluster.status, cluster.leave
  bool alone = false;                 // no --etcd: nobody to hand shards to on cluster.leave
  std::atomic<bool> draining{false};  // SIGTERM: refuse new requests
  /// Set while the member agent finds this node cut off from its peers (agent_hooks::on_cut_off);
  /// null for a node alone.
  std::shared_ptr<const std::atomic<bool>> cut_off;
  std::atomic<int64_t> in_flight{0};  // requests accepted and not yet answered
  std::atomic<uint64_t> requests{0};  // requests answered since start

  /// admin.backup (docs/OPERATIONS.md, "Backup and restore"); runs on a detached actor.
  std::shared_ptr<online_backup> backup;
  /// Request ids for requests that come without one (docs/PROTOCOL.md, "Request ids").
  domain::request_id_source request_ids;
};

/// The connection handler factory for client_listener: one gateway actor per connection.
handler_factory make_gateway_factory(caf::actor_system& sys,
                                     std::shared_ptr<gateway_shared> shared);

}  // namespace ordermesh::node
