#include "cluster/coordination/shard_reconciler.hpp"

#include <algorithm>
#include <set>

namespace ordermesh::cluster::coordination {

std::string_view to_string(step s) {
  switch (s) {
    case step::serve:
      return "serve";
    case step::own:
      return "own";
    case step::send:
      return "send";
    case step::abort_move:
      return "abort_move";
    case step::flip:
      return "flip";
    case step::drop:
      return "drop";
    case step::cancel_receive:
      return "cancel_receive";
    case step::wait:
      return "wait";
    case step::refuse:
      return "refuse";
    case step::demote:
      return "demote";
  }
  return "unknown";
}

namespace {

using handoff = local_shard::handoff;

bool outgoing(handoff h) {
  return h == handoff::sending || h == handoff::sent || h == handoff::failed;
}
bool incoming(handoff h) {
  return h == handoff::receiving || h == handoff::received;
}

/// This node leads the shard.
shard_step as_primary(const shard_assignment& a, const local_shard& l, bool target_alive) {
  shard_step s{a.shard, step::serve, a.epoch, {}};
  if (l.owned_epoch > a.epoch) {
    s.what = step::refuse;  // the disk is ahead of the store: a reset store, or a bug
    return s;
  }
  if (a.target.empty()) {
    // No move pending. A copy we were sending has ended without a flip (aborted), or we
    // restarted: own the shard at the store's epoch. Our data is intact: only a flip, which
    // did not happen, lets anyone else write it, and we drop our copy only after one.
    if (outgoing(l.progress) || l.owned_epoch != a.epoch)
      s.what = step::own;
    return s;
  }
  s.peer = a.target;
  s.move_revision = a.mod_revision;
  bool this_move = l.move_revision == a.mod_revision;
  if (!target_alive || (l.progress == handoff::failed && this_move)) {
    s.what = step::abort_move;
    return s;
  }
  s.epoch = a.epoch + 1;
  if ((l.progress == handoff::sending || l.progress == handoff::sent) && this_move) {
    s.what = step::wait;
  } else {
    // Nothing in flight for this move (a restart, or a handoff for an older one): the copy
    // starts again from the beginning.
    s.what = step::send;
  }
  return s;
}

/// Another node leads the shard.
shard_step as_other(const shard_assignment& a, const std::string& me, const local_shard& l) {
  shard_step s{a.shard, step::serve, a.epoch, {}};
  if (incoming(l.progress) && l.move_revision > a.mod_revision) {
    // A copy for an intent newer than what this node has read of the shard: the primary saw
    // the intent first (our watch lags). Keep it; the next state shows the intent.
    s.what = step::wait;
    return s;
  }
  if (a.target == me) {
    s.peer = a.primary;
    s.epoch = a.epoch + 1;
    s.move_revision = a.mod_revision;
    bool this_move = l.move_revision == a.mod_revision;
    if (l.owned_epoch != 0) {
      s.what = step::drop;  // a stale tenure of ours goes before a new copy comes in
    } else if (incoming(l.progress) && !this_move) {
      s.what = step::cancel_receive;  // a copy made for an earlier move: never flip with it
    } else if (l.progress == handoff::received) {
      s.what = step::flip;
    } else {
      s.what = step::wait;  // the primary sends; a receive in progress goes on
    }
    return s;
  }
  bool replica = std::find(a.replicas.begin(), a.replicas.end(), me) != a.replicas.end();
  if (incoming(l.progress)) {
    s.what = step::cancel_receive;
  } else if (replica && a.replicas.size() > 1) {
    // A follower of a replicated shard keeps its data; one that led it before (a deposed or
    // restarted primary) stops owning it first.
    if (l.owned_epoch != 0)
      s.what = step::demote;
  } else if (l.owned_epoch != 0 || outgoing(l.progress)) {
    s.what = step::drop;  // we led it before the flip (or an earlier tenure): not ours any more
  }
  return s;
}

}  // namespace

std::vector<shard_step> reconcile(const cluster_state& state, const std::string& me,
                                  const std::vector<local_shard>& local) {
  std::set<std::string> alive;
  for (const auto& m : state.members)
    alive.insert(m.node_id);
  std::vector<shard_step> steps;
  steps.reserve(state.shards.size());
  const local_shard none;
  for (const auto& a : state.shards) {
    const auto& l = a.shard < local.size() ? local[a.shard] : none;
    if (l.written_over != 0 && a.mod_revision <= l.written_over) {
      steps.push_back({a.shard, step::wait, a.epoch, {}, 0});
      continue;
    }
    if (a.primary == me) {
      steps.push_back(as_primary(a, l, alive.count(a.target) > 0));
    } else {
      steps.push_back(as_other(a, me, l));
    }
  }
  return steps;
}

shard_assignment flipped(const shard_assignment& current) {
  shard_assignment next = current;
  next.epoch = current.epoch + 1;
  next.primary = current.target;
  next.replicas = {current.target};
  next.isr = {current.target};
  next.isr_disks.clear();  // single-replica moves only: nothing to fail over to
  next.target.clear();
  return next;
}

shard_assignment aborted(const shard_assignment& current) {
  shard_assignment next = current;
  next.target.clear();
  return next;
}

}  // namespace ordermesh::cluster::coordination
