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

#include "cluster/identity/identity_prover.hpp"

namespace ordermesh::cluster {

/// What a node tells a peer about itself when they connect.
struct peer_info {
  std::string node_id;
  std::vector<caf::actor> supervisors;  // index = shard
  caf::actor replica;                   // its replica follower (null: it replicates nothing)
};
template <class Inspector>
auto inspect(Inspector& f, peer_info& x) {
  return f(x.node_id, x.supervisors, x.replica);
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

/// One committed batch of one shard on the wire (persistence::shard_delta): records as three
/// parallel arrays, `ops` holding 'p' (put) or 'e' (erase) per record.
struct replica_delta {
  uint16_t shard = 0;
  uint64_t epoch = 0;
  uint64_t position = 0;
  uint64_t prev_epoch = 0;
  std::string ops;
  std::vector<std::string> keys;
  std::vector<std::string> values;
};
template <class Inspector>
auto inspect(Inspector& f, replica_delta& x) {
  return f(x.shard, x.epoch, x.position, x.prev_epoch, x.ops, x.keys, x.values);
}

/// A replica follower's answer to an append or a copy chunk.
enum class replica_reply : uint8_t {
  ok = 0,        // applied (or held already): `position` is its log's end, synced
  behind = 1,    // a gap: its log ends at `position`, send from position + 1
  diverged = 2,  // it holds batches the primary does not: re-seed it by a full copy
  stale = 3,     // it has seen a newer epoch (`position` holds it): the sender is deposed
  owned = 4,     // it still owns the shard (a deposed primary not yet demoted): retry later
  failed = 5,    // anything else (a bad message, a storage error): retry later
};

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
// The hello proves each side's id (cluster/identity/peer_proof.hpp, docs/SECURITY.md):
/// (caller node id, dialer challenge) -> (node id, dialed challenge, identity_proof): the dialer
/// says who it claims to be; the dialed node proves its id over the dialer's challenge and
/// issues its own.
using hello_atom = caf::atom_constant<caf::atom("c_hello")>;
/// (caller node id, identity_proof, peer_info) -> peer_info: the dialer, having checked the
/// dialed node's proof, proves its own id and hands over its actors; the dialed node answers
/// with its actors once the proof holds, and with an error otherwise (and registers nothing).
using hello_proof_atom = caf::atom_constant<caf::atom("c_proof")>;
using leave_atom = caf::atom_constant<caf::atom("c_leave")>;  // (node_id) -> bool
/// () -> bool: the controller's probe of a connected member (suspects, controller_duties.cpp):
/// a member that stops answering (paused, cut off) is suspected like one whose connection dropped.
using ping_atom = caf::atom_constant<caf::atom("c_ping")>;
// ---- replica leader -> a peer's replica follower (BASP) ----
/// (shard, epoch, std::vector<replica_delta>) -> (uint8_t replica_reply, uint64_t position,
/// uint64_t last_epoch, int64_t incarnation): apply these batches, in order (none: a probe,
/// answered with the replica's log end and the epoch of its last batch).
using replica_append_atom = caf::atom_constant<caf::atom("r_append")>;
/// (shard, epoch, bool first, std::vector<shard_record>, bool done, uint64_t position,
/// uint64_t position_epoch) -> (uint8_t, uint64_t, uint64_t, int64_t): one chunk of a full copy of
/// the shard as of `position`; `first` wipes the replica's range, `done` sets its position.
using replica_copy_atom = caf::atom_constant<caf::atom("r_copy")>;
/// (shard, epoch, uint64_t from) -> (uint8_t, uint64_t position, uint64_t last_epoch,
/// int64_t incarnation, std::vector<replica_delta> tail): the new primary of `epoch`, before it
/// serves, asks each in-sync replica for the batches it holds from position `from` on (from its
/// ring), so that it starts from the longest log among them and nobody holds a tail it lacks.
using replica_tail_atom = caf::atom_constant<caf::atom("r_tail")>;
/// (shard, epoch) -> (uint8_t replica_reply, uint64_t position, uint64_t last_epoch,
/// int64_t incarnation): a heartbeat. `ok` says "I have not seen a newer epoch, and I do not own
/// the shard": what the read barrier needs from every in-sync replica, and what keeps a silent
/// replica from staying in the ISR. Nothing is written; the position is only informative.
using replica_beat_atom = caf::atom_constant<caf::atom("r_beat")>;
// ---- an entity -> its node's replica leader (this node only) ----
/// (shard) -> bool: the read barrier (docs/REPLICATION.md, "Reads"). Answered true once what
/// this node's storage holds of the shard now is committed and every in-sync replica has
/// answered a heartbeat sent after the request arrived; an error (`unavailable`) when this node
/// does not lead the shard, or not in time.
using read_barrier_atom = caf::atom_constant<caf::atom("r_read")>;
// ---- agent -> a connector actor of its own ----
using connect_atom = caf::atom_constant<caf::atom("c_connect")>;  // (host, port) -> actor
// ---- agent -> its own shard supervisors / wakeup scheduler ----
using freeze_atom = caf::atom_constant<caf::atom("s_freeze")>;  // () -> bool, all entities stopped
using thaw_atom = caf::atom_constant<caf::atom("s_thaw")>;      // () async: route what waited
using scan_atom = caf::atom_constant<caf::atom("w_scan")>;      // (shard) async: wake its entities

/// Registers the types above with CAF.
void add_message_types(caf::actor_system_config& cfg);

}  // namespace ordermesh::cluster
