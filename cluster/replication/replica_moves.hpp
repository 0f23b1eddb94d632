#pragma once
// Moving a shard's replicas (join, leave, rebalance) without any moment where an ack relies on
// fewer than min_insync disks, as a pure planner: which replicas a shard should have, in which
// order of preference for the primary (desired_replicas: leaves here, joins and returns in
// replica_balance.hpp), and from what etcd holds and that list, the one next step. The
// controller runs both again after every change, as it runs placement: the plan has no memory
// of its own, so a move in progress must come out of the next run the same (a shard between
// its add and its drop keeps the newcomer and drops the most loaded).
//
// The order, and who writes each step (every write a compare-and-set on the shard key):
//   1. add_replica    (controller, same epoch): the new node joins `replicas`, not the ISR;
//   2. wait_catch_up  (nobody writes): the primary streams the log to it; once it holds every
//                     committed position, the primary proposes its ISR entry (primary_log);
//   3. move_primary   (controller, epoch + 1): if the primary is to go, an ISR member that stays
//                     leads; the old primary stays in the ISR (it holds everything committed);
//   4. drop_replica   (controller, same epoch): a replica that is to go leaves `replicas` and
//                     the ISR, only if the ISR keeps min_insync members without it;
//   5. move_primary   (controller, epoch + 1): if the first of the desired list (the preferred
//                     primary, a rebalance of leadership) does not lead but could (an ISR member
//                     on the disk its entry names), it leads.
// A primary only ever moves to an ISR member whose entry names its member's current disk.
// Only the primary ever adds to the ISR within an epoch; others only remove from it. A removal
// the primary has not read yet only makes it wait for one more ack, never for one fewer.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "cluster/coordination/coordination.hpp"

namespace ordermesh::cluster::replication {

enum class replica_step_kind : uint8_t {
  done,           // the replicas are the desired ones
  add_replica,    // write `next`
  wait_catch_up,  // `node` is a replica, not yet in the ISR: the primary brings it in
  move_primary,   // write `next` (epoch + 1, `node` leads)
  drop_replica,   // write `next` (`node` leaves)
  blocked,        // nothing may happen now (`reason`): a failed primary, or min_insync
};
std::string_view to_string(replica_step_kind k);

struct replica_step {
  replica_step_kind what = replica_step_kind::blocked;
  uint16_t shard = 0;
  std::string node;
  ::ordermesh::cluster::coordination::shard_assignment next;
  std::string reason;
};

/// The replicas each shard should have (index = shard): its current ones, but for members that
/// are leaving, each replaced by the member (not leaving, not a replica of it yet) that holds
/// the fewest replicas (counted as desired so far, so one leaving node's shards spread over the
/// others; ties: the smaller node id); the primary first if it stays. A removed node (a `removed`
/// record: cluster.remove-member or --dead-member-timeout, member_removal.hpp) is replaced the
/// same way. A replica whose member key is gone (a dead node) but that is not removed stays: it
/// comes back and catches up, and replacing it would copy the shard for nothing. Where the
/// replication factor cannot be kept (too few members) nobody goes, but every member that is
/// not a replica yet is added (a shard below the factor gets every copy it can have). Then
/// balance_replicas (replica_balance.hpp): a member that joined or came back takes its share of
/// replicas, then of primaries, a few shards at a time (max_shards_in_motion); a balanced cluster
/// desires exactly what it holds.
std::vector<std::vector<std::string>> desired_replicas(
    const ::ordermesh::cluster::coordination::cluster_state& state);

/// The next step towards `desired` (node ids; the first is the preferred primary) for `shard`.
/// Nodes that are not members are never added; the primary moves to the first desired one
/// once every desired member is in the ISR and nothing is left to drop. The primary must be a
/// member at the incarnation its ISR entry records (otherwise failover comes first: blocked).
replica_step next_replica_step(const ::ordermesh::cluster::coordination::cluster_state& state,
                               uint16_t shard, const std::vector<std::string>& desired);

/// The steps the controller writes this round (shard order): next_replica_step for every shard
/// towards `desired` (index = shard), keeping only writes (add_replica, move_primary,
/// drop_replica) and leaving out shards `skip` names (a write asked already from this state).
/// A `suspected` node is neither added nor made primary (either would only wait on it). At
/// most `max_catching_up` shards wait for a new replica at once (each needs a full copy): those
/// already waiting count, and so do adds `skip` names (asked, not read back yet); further adds
/// wait for a later round. Drops and primary moves are
/// never held back by it.
std::vector<replica_step> plan_replica_writes(
    const ::ordermesh::cluster::coordination::cluster_state& state,
    const std::vector<std::vector<std::string>>& desired, const std::set<std::string>& suspected,
    size_t max_catching_up, const std::function<bool(uint16_t)>& skip);

}  // namespace ordermesh::cluster::replication
