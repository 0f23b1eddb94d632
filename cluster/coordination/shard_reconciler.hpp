#pragma once
// The node's side of shard ownership, as a pure function: given what the store says (who leads
// each shard, at which epoch, and where it is moving) and what this node holds (the epoch its
// storage owns the shard at, and any handoff in progress), what this node must do next. The
// agent runs it after every change of either and carries the steps out; running it again
// before a step finishes yields the same step, so the agent keeps one in flight per shard.
//
// The handoff protocol it encodes (docs/COORDINATION.md):
//   1. the controller writes a move intent: `target = B` (primary A and epoch E unchanged);
//   2. A freezes the shard, releases it in storage (synced: A writes it no more) and copies it
//      to B in chunks;
//   3. B, once every chunk of the copy made for this intent (named by the intent's revision) is
//      durable, writes the flip: primary B at epoch E + 1, no target, guarded by the intent's
//      revision; only then does B own the shard in storage and serve;
//   4. A sees the flip and drops its copy. If the copy fails, A writes the abort instead
//      (target cleared, same guard) and owns the shard again at E.
// The flip and the abort are compare-and-sets on the same revision: exactly one lands, so the
// shard has one owner whatever crashes when. A node that restarts mid-move finds the intent in
// the store and simply runs its part again from the start.
#include <cstdint>
#include <string>
#include <vector>

#include "cluster/coordination/coordination.hpp"

namespace ordermesh::cluster::coordination {

/// What this node holds of one shard.
struct local_shard {
  /// The epoch this node's storage owns the shard at (it writes the shard's journal only under
  /// it); 0 when it does not own the shard.
  uint64_t owned_epoch = 0;
  enum class handoff : uint8_t {
    none,
    sending,    // this node is copying the shard to `peer`
    sent,       // every chunk was acknowledged by `peer`: waiting for its flip
    failed,     // the copy failed or the flip never came: the move must be aborted
    receiving,  // `peer` is copying the shard to this node
    received,   // every chunk is durable here: this node may flip
  };
  handoff progress = handoff::none;
  /// The move this handoff serves: the store revision of the intent (the assignment's
  /// mod_revision when its target was set). Not the epoch: an aborted move and a later one to
  /// the same node have the same epoch, and a copy made for the first must never flip the
  /// second (the primary may have written more in between).
  int64_t move_revision = 0;
  std::string peer;
  /// This node changed the shard's key (a flip, an abort) from this revision: until a state
  /// newer than it arrives, the state it holds predates its own write and must not be acted on
  /// (a target that just flipped would otherwise read "target = me, owned" and drop its copy).
  int64_t written_over = 0;
};

/// One thing to do for one shard.
enum class step : uint8_t {
  serve,           // in order: owned at the assigned epoch (primary), or none of ours
  own,             // own the shard in storage at `epoch`, then serve it
  send,            // hand the shard to `peer` for `epoch`: freeze, release, copy
  abort_move,      // clear the move in the store; once that lands, own again at `epoch`
  flip,            // write this node as primary at `epoch` (its copy is complete and durable)
  drop,            // delete this node's copy and ownership: the shard is someone else's
  cancel_receive,  // a copy arriving for a move that no longer exists: discard it
  wait,            // something is in flight, or the state predates our own write: nothing now
  refuse,          // the disk holds a newer epoch than the store: only an operator can settle
  demote,          // a replica, not the primary, that still owns the shard: release it, keep
                   // its data (it follows the primary from now on)
};
std::string_view to_string(step s);

struct shard_step {
  uint16_t shard = 0;
  step what = step::serve;
  uint64_t epoch = 0;
  std::string peer;
  int64_t move_revision = 0;  // send, flip, abort_move: the intent's revision (the guard)
};

/// The next step for every shard of `state` (index = shard), for node `me`. `local` holds this
/// node's view of each shard (index = shard; missing entries count as not owned, no handoff).
/// A move whose target is not a member any more is aborted by the primary.
std::vector<shard_step> reconcile(const cluster_state& state, const std::string& me,
                                  const std::vector<local_shard>& local);

/// The assignment that ends a move with the target as primary (the flip): epoch + 1, the
/// target alone as replica and in-sync, no target. `current` is the assignment with the intent.
shard_assignment flipped(const shard_assignment& current);

/// The assignment that ends a move without it (the abort): `current` with no target.
shard_assignment aborted(const shard_assignment& current);

}  // namespace ordermesh::cluster::coordination
