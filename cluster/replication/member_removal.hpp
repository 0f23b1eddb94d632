#pragma once
// A member that dies for good (issue 12, "Failover and rejoin"; docs/REPLICATION.md, "A member
// that dies for good"), as pure functions over what etcd holds: whether the operator may remove
// a node (cluster.remove-member), and what the controller writes about nodes that shard keys
// still name while they have no member key: the absence clock of --dead-member-timeout, the
// removal once it runs out, and the end of both. The removal itself is a leave without the node:
// desired_replicas (replica_moves.hpp) replaces a removed node's replicas like a leaving member's,
// by the same safe steps (add, catch up, drop; never below min_insync).
//
// Record lifetime: an `absent` record lives while the node is named and has no member key (it
// goes when the node joins again, or once nothing names it); a `removed` record lives until no
// shard names the node, then goes, so that the id can join again as a new member with whatever
// disk it has (it is then a replica of nothing and is given replicas like any newcomer: added
// outside the ISR, it enters only once the primary has brought it up to date).
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "cluster/coordination/coordination.hpp"

namespace ordermesh::cluster::replication {

/// Whether a shard key names `node` (a replica, an ISR entry or the primary).
bool named_by_shards(const ::ordermesh::cluster::coordination::cluster_state& state,
                     const std::string& node);

/// Whether a `removed` record names `node`: its replicas are being replaced.
bool is_removed(const ::ordermesh::cluster::coordination::cluster_state& state,
                const std::string& node);

/// Why the operator may not remove a node (each a separate client error code).
enum class removal_refusal : uint8_t {
  none,             // it may go (or is going already: `already` says so)
  live_member,      // it has a member key: cluster.leave on it instead (invalid_state)
  unknown,          // no shard names it and it is no member (not_found)
  too_few_members,  // the live members could not hold replication_factor replicas (invalid_state)
  not_replicated,   // no shard map yet, or replication factor 1: no copy to replace it from
};
std::string_view to_string(removal_refusal r);

struct removal_check {
  removal_refusal refusal = removal_refusal::none;
  bool already = false;  // a removal of it is under way: nothing more to write
  std::string reason;    // for the client and the log, when refused
};

/// Whether `node` may be removed now: replicated cluster, not a member, named by a shard (or
/// already being removed), and at least replication_factor live members that do not leave.
removal_check check_removal(const ::ordermesh::cluster::coordination::cluster_state& state,
                            const std::string& node);

/// The most departure writes one controller round asks for (each one txn).
inline constexpr size_t max_departure_steps = 16;

enum class departure_step_kind : uint8_t {
  note_absent,  // write an `absent` record (since_ms = now): the timeout's clock starts
  remove,       // write a `removed` record (by "timeout"): its replicas get replaced
  forget,       // delete the `kind` record (guarded by expected_revision)
};
std::string_view to_string(departure_step_kind k);

struct departure_step {
  departure_step_kind what = departure_step_kind::note_absent;
  ::ordermesh::cluster::coordination::departure_kind kind =
      ::ordermesh::cluster::coordination::departure_kind::absent;
  ::ordermesh::cluster::coordination::departure_record record;  // note_absent, remove
  int64_t expected_revision = 0;                                // forget
};

/// What the controller writes this round, at most max_departure_steps, in node id order:
///  - a node named by a shard, with no member key and no record yet: note_absent (now_ms);
///  - an absent node whose record is at least `dead_member_timeout` old (0: never): remove, if
///    check_removal lets it (otherwise it waits, absent, until enough members are live);
///  - an `absent` record of a node that is a member again or that nothing names: forget;
///  - a `removed` record of a node that nothing names any more: forget (the removal is over).
/// Only in a replicated cluster (replication factor > 1); nothing otherwise.
std::vector<departure_step> plan_departures(
    const ::ordermesh::cluster::coordination::cluster_state& state, int64_t now_ms,
    std::chrono::milliseconds dead_member_timeout);

}  // namespace ordermesh::cluster::replication
