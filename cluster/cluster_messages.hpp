#pragma once
// Messages between member agents (over CAF's BASP on --cluster-port) and between the agent and its
// own node's shard supervisors. Nothing here knows what an order is: shards are numbers, their
// data is key/value records, and supervisors are actor handles.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <caf/actor.hpp>
#include <caf/atom.hpp>
#include <caf/fwd.hpp>

namespace ordermesh::cluster {

/// What a node tells a peer about itself when they connect.
struct peer_info {
  std::string node_id;
  std::vector<caf::actor> supervisors;  // index = shard
};
template <class Inspector>
auto inspect(Inspector& f, peer_info& x) {
  return f(x.node_id, x.supervisors);
}

/// One key/value record of a shard's range, for handoff.
struct shard_record {
  std::string key;
  std::string value;
};
template <class Inspector>
auto inspect(Inspector& f, shard_record& x) {
  return f(x.key, x.value);
}

/// Where each shard's messages go right now on this node: the local supervisor, a peer's
/// supervisor, or a responder that answers `unavailable` (owner unreachable). Immutable; the
/// agent publishes a new one whenever the view or a peer's reachability changes.
struct routing_table {
  std::vector<caf::actor> route;   // index = shard
  std::vector<std::string> owner;  // node id, index = shard
  std::vector<uint64_t> epoch;     // index = shard
  uint64_t view_version = 0;
};
using routing_ptr = std::shared_ptr<const routing_table>;

// ---- agent <-> agent (BASP) ----
using hello_atom = caf::atom_constant<caf::atom("c_hello")>;  // (caller node id) -> peer_info
using leave_atom = caf::atom_constant<caf::atom("c_leave")>;  // (node_id) -> bool
// ---- agent -> a connector actor of its own ----
using connect_atom = caf::atom_constant<caf::atom("c_connect")>;  // (host, port) -> actor
// ---- agent -> its own shard supervisors / wakeup scheduler ----
using freeze_atom = caf::atom_constant<caf::atom("s_freeze")>;  // () -> bool, all entities stopped
using thaw_atom = caf::atom_constant<caf::atom("s_thaw")>;      // () async: route what waited
using scan_atom = caf::atom_constant<caf::atom("w_scan")>;      // (shard) async: wake its entities

/// Registers the types above with CAF.
void add_message_types(caf::actor_system_config& cfg);

}  // namespace ordermesh::cluster
