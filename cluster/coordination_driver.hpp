#pragma once
// The coordination driver: the one actor that talks to the consensus store (etcd, or the local
// in-process store) for its node. It runs detached, because every store call blocks (bounded by
// the session's deadline). It keeps the node a member (join, renew the lease every TTL/3, join
// again with a new incarnation once the lease is lost), follows every change of the store, and
// tells the agent:
//   (coord_state_atom, state_ptr)        after every change it read;
//   (coord_lease_atom, int64_t until_ns, int64_t incarnation)
//       after each renewal: until when, on this node's monotonic clock, the lease is surely
//       valid (send time of the last successful renewal + TTL - margin; 0: no lease).
// It carries out the agent's writes and answers with their outcome:
//   (coord_write_atom, shard_assignment next, int64_t expected) -> bool (false: shard changed)
//   (coord_campaign_atom) -> std::string (the controller's node id)
//   (coord_depose_atom, std::string node, int64_t incarnation) -> bool (true: key deleted)
//   (coord_bootstrap_atom, cluster_config, assignments_ptr) -> bool (false: config existed)
//   (coord_update_atom, bool leaving) -> bool
//   (coord_drain_atom) -> bool (this member's record now says draining)
//   (coord_leave_atom) -> bool
//   (coord_depart_atom, departure_kind, departure_record) -> bool (false: a member, or exists)
//   (coord_forget_atom, departure_kind, std::string node, int64_t expected) -> bool
// A failed call answers a caf::error whose context names the coordination error (unavailable,
// fenced, lease_lost, invalid); nothing is retried here: the agent decides.
#include <chrono>
#include <memory>
#include <vector>

#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/atom.hpp>
#include <caf/fwd.hpp>

#include "cluster/coordination/coordination.hpp"

namespace spdlog {
class logger;
}

namespace ordermesh::cluster {

using state_ptr = std::shared_ptr<const coordination::cluster_state>;
using assignments_ptr = std::shared_ptr<const std::vector<coordination::shard_assignment>>;

}  // namespace ordermesh::cluster

// Messages between the agent and its driver stay inside the node: never serialized.
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(ordermesh::cluster::state_ptr)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(ordermesh::cluster::assignments_ptr)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(ordermesh::cluster::coordination::shard_assignment)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(ordermesh::cluster::coordination::cluster_config)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(ordermesh::cluster::coordination::departure_kind)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(ordermesh::cluster::coordination::departure_record)

namespace ordermesh::cluster {

using coord_state_atom = caf::atom_constant<caf::atom("k_state")>;
using coord_lease_atom = caf::atom_constant<caf::atom("k_lease")>;
using coord_write_atom = caf::atom_constant<caf::atom("k_write")>;
using coord_campaign_atom = caf::atom_constant<caf::atom("k_campaign")>;
using coord_depose_atom = caf::atom_constant<caf::atom("k_depose")>;
using coord_bootstrap_atom = caf::atom_constant<caf::atom("k_boot")>;
using coord_update_atom = caf::atom_constant<caf::atom("k_update")>;
using coord_leave_atom = caf::atom_constant<caf::atom("k_leave")>;
using coord_drain_atom = caf::atom_constant<caf::atom("k_drain")>;
using coord_depart_atom = caf::atom_constant<caf::atom("k_depart")>;
using coord_forget_atom = caf::atom_constant<caf::atom("k_forget")>;

struct driver_config {
  coordination::member_info me;
  std::chrono::milliseconds lease_ttl{3000};
  /// The longest the driver waits for a change before it looks at its lease and its mailbox
  /// again: a write (a failover, an ISR change) that arrives meanwhile waits up to this long,
  /// since the detached driver blocks on the watch. An idle wait costs no etcd call.
  std::chrono::milliseconds poll{50};
};

/// Spawns the driver (detached) for `session`, reporting to `agent`. It ends when `agent` does.
caf::actor spawn_coordination_driver(caf::actor_system& sys,
                                     std::unique_ptr<coordination::session> session,
                                     driver_config cfg, caf::actor agent,
                                     std::shared_ptr<spdlog::logger> log);

/// The lease margin for `ttl`: the node stops counting on its lease this long before the store
/// could expire it (a sixth of the TTL, at least 250 ms), which covers clock rate drift and the
/// time a renewal takes to reach the store.
std::chrono::milliseconds lease_margin(std::chrono::milliseconds ttl);

}  // namespace ordermesh::cluster
