// Carries out the shard reconciler's steps (cluster/coordination/shard_reconciler.hpp): own a
// shard, drop it, write a flip or an abort to the store. The copy itself is shard_copy.cpp.
#include <algorithm>

#include <spdlog/logger.h>
#include <caf/all.hpp>

#include "cluster/agent/agent_state.hpp"
#include "persistence/storage_engine.hpp"

namespace ordermesh::cluster::agent {

namespace {

/// Ours now at `epoch`: own it (synced), serve it, wake what is due.
void own(self_ptr self, uint16_t shard, uint64_t epoch) {
  auto& s = self->state;
  auto st = s.storage->own_shard(shard, epoch);
  if (!st) {
    // Refused below the fence: this node has seen a newer epoch than the shard map it acts on
    // (it woke up from a pause); the next map names the shard's current primary.
    bool stale =
        st.kind() == persistence::status::code::invalid && s.storage->replica(shard).fence > epoch;
    if (stale)
      s.log->warn(
          "node={} shard {}: not owning it at epoch {}: this node has seen epoch {} "
          "(a stale shard map)",
          me(self), shard, epoch, s.storage->replica(shard).fence);
    else
      s.log->error("node={} cannot own shard {} at epoch {}: {}", me(self), shard, epoch,
                   st.to_string());
    return;
  }
  bool was_sending = s.outgoing.erase(shard) > 0;
  // Keep what this node last wrote over: the state it holds may still predate that write.
  auto written_over = s.local[shard].written_over;
  s.local[shard] = co::local_shard{};
  s.local[shard].owned_epoch = epoch;
  s.local[shard].written_over = written_over;
  s.log->info("node={} serves shard {} at epoch {}", me(self), shard, epoch);
  publish_routes(self);
  if (was_sending)
    self->send(s.hooks.supervisors[shard], thaw_atom::value);  // the move was aborted
  self->send(s.hooks.wakeups, scan_atom::value, shard);
}

/// Not ours: forget our copy. Requests held by a frozen supervisor go to the new primary.
void drop(self_ptr self, uint16_t shard) {
  auto& s = self->state;
  bool was_sending = s.outgoing.erase(shard) > 0;
  s.local[shard] = co::local_shard{};
  if (s.storage->owned_epoch(shard) != 0) {
    auto st = s.storage->release_shard(shard);
    if (!st)
      s.log->error("node={} cannot release shard {}: {}", me(self), shard, st.to_string());
  }
  auto st = s.storage->delete_shard(shard);
  if (!st)
    s.log->warn("node={} shard {} is someone else's but its old copy stays: {}", me(self), shard,
                st.to_string());
  publish_routes(self);
  if (was_sending) {
    self->send(s.hooks.supervisors[shard], thaw_atom::value);
    s.log->info("node={} shard {} now served by {}", me(self), shard,
                s.state->shards[shard].primary);
  }
}

/// A replica that owned the shard (it led it before: deposed, or restarted as a follower):
/// stop owning it, keep the data. Its entities leave memory (freeze evicts them), so nothing
/// answers from a state the new primary may have moved past; what waited is then routed anew.
void demote(self_ptr self, uint16_t shard) {
  auto& s = self->state;
  auto st = s.storage->release_shard(shard);
  if (!st) {
    s.log->error("node={} cannot release shard {}: {}", me(self), shard, st.to_string());
    return;
  }
  s.local[shard] = co::local_shard{};
  s.log->info("node={} shard {}: now a follower of {} (epoch {})", me(self), shard,
              s.state->shards[shard].primary, s.state->shards[shard].epoch);
  publish_routes(self);
  s.busy[shard] = true;
  auto supervisor = s.hooks.supervisors[shard];
  self->request(supervisor, s.cfg.request_timeout * 2, freeze_atom::value)
      .then(
          [self, shard, supervisor](bool) {
            self->state.busy[shard] = false;
            self->send(supervisor, thaw_atom::value);
          },
          [self, shard, supervisor](caf::error&) {
            self->state.busy[shard] = false;
            self->send(supervisor, thaw_atom::value);
          });
}

template <class F>
void write_assignment(self_ptr self, uint16_t shard, co::shard_assignment next, int64_t expected,
                      const char* what, F then) {
  auto& s = self->state;
  s.busy[shard] = true;
  self->request(s.driver, s.cfg.request_timeout * 2, coord_write_atom::value, std::move(next),
                expected)
      .then(
          [self, shard, then](bool written) {
            self->state.busy[shard] = false;
            then(written);
          },
          [self, shard, what](caf::error& err) {
            // Not written, or unknown (the store may have applied it): the next state says.
            self->state.busy[shard] = false;
            self->state.log->warn("node={} {} of shard {}: {}", me(self), what, shard,
                                  caf::to_string(err));
          });
}

void run_step(self_ptr self, const co::shard_assignment& a, const co::shard_step& step) {
  auto& s = self->state;
  auto shard = step.shard;
  switch (step.what) {
    case co::step::serve:
      break;
    case co::step::own:
      if (s.repl && a.replicas.size() > 1 && s.storage->owned_epoch(shard) == 0 &&
          s.prepared[shard] != step.epoch) {
        // A promotion: first the longest tail among the in-sync replicas (replica_leader).
        s.busy[shard] = true;
        auto epoch = step.epoch;
        auto then = [self, shard, epoch] {
          self->state.busy[shard] = false;
          self->state.prepared[shard] = epoch;
          reconcile(self);
        };
        self->request(s.replica_leader, s.cfg.request_timeout, replica_prepare_atom::value, shard,
                      epoch)
            .then([then](bool) { then(); }, [then](caf::error&) { then(); });
        break;
      }
      own(self, shard, step.epoch);
      break;
    case co::step::send:
      start_copy(self, step);
      break;
    case co::step::wait: {
      auto out = s.outgoing.find(shard);
      if (out != s.outgoing.end() && s.local[shard].progress == handoff::sent &&
          clock_type::now() - out->second.since > s.cfg.flip_timeout)
        fail_copy(self, shard, "no flip from the target in time");
      break;
    }
    case co::step::abort_move:
      s.log->info("node={} aborts the move of shard {} to {}", me(self), shard, a.target);
      write_assignment(self, shard, co::aborted(a), a.mod_revision, "abort",
                       [self, shard, from = a.mod_revision](bool written) {
                         if (!written)
                           return;  // the target flipped first: the next state says so
                         // Until a state newer than `from` arrives, ours predates the abort.
                         self->state.local[shard].written_over = from;
                         reconcile(self);
                       });
      break;
    case co::step::flip: {
      auto epoch = step.epoch;
      write_assignment(self, shard, co::flipped(a), a.mod_revision, "flip",
                       [self, shard, epoch, from = a.mod_revision](bool written) {
                         if (!written)
                           return;  // the primary aborted first: the next state cancels ours
                         self->state.log->info("node={} flipped shard {} to itself (epoch {})",
                                               me(self), shard, epoch);
                         // The state we hold still shows the intent ("target = me"): acting on
                         // it would drop what we just flipped. Wait for a state newer than it.
                         self->state.local[shard].written_over = from;
                         own(self, shard, epoch);
                         // At once, not on the next tick: a regression of the guard above then
                         // loses data on every move, where the system tests see it.
                         reconcile(self);
                       });
      break;
    }
    case co::step::drop:
      drop(self, shard);
      break;
    case co::step::cancel_receive:
      cancel_receive(self, shard);
      break;
    case co::step::demote:
      demote(self, shard);
      break;
    case co::step::refuse:
      if (s.refused_shards.insert(shard).second) {
        s.log->critical(
            "node={} shard {}: this disk owns epoch {} but the store says {}; "
            "not serving it (an operator must settle this)",
            me(self), shard, s.storage->owned_epoch(shard), a.epoch);
        publish_routes(self);
      }
      break;
  }
}

/// A follower that reads a newer epoch of a shard in the store refuses the older epoch's
/// batches from then on (fence_replica, synced): a deposed primary that wakes up cannot hand it
/// a batch the new primary lacks (it would need a full copy while in the ISR). Batches of
/// older epochs still apply when the new primary sends them (storage_engine's sent_at_epoch).
void fence_followed(self_ptr self) {
  auto& s = self->state;
  if (!s.repl)
    return;
  for (const auto& a : s.state->shards) {
    if (a.primary == me(self) || a.replicas.size() < 2 || s.storage->owned_epoch(a.shard) != 0 ||
        std::find(a.replicas.begin(), a.replicas.end(), me(self)) == a.replicas.end() ||
        s.storage->replica(a.shard).fence >= a.epoch)
      continue;
    auto st = s.storage->fence_replica(a.shard, a.epoch);
    if (!st)
      s.log->warn("node={} shard {}: cannot record epoch {}: {}", me(self), a.shard, a.epoch,
                  st.to_string());
  }
}

}  // namespace

void reconcile(self_ptr self) {
  auto& s = self->state;
  if (!s.state || s.refused || !s.disk_checked || s.state->shards.size() != s.cfg.shard_count)
    return;
  for (uint16_t i = 0; i < s.cfg.shard_count; ++i)
    s.local[i].owned_epoch = s.storage->owned_epoch(i);  // the disk is the truth here
  // A shard refused because this disk lost it is settled once another node leads it (a
  // failover): from then on this node follows it like any replica.
  for (auto it = s.refused_shards.begin(); it != s.refused_shards.end();)
    if (*it < s.state->shards.size() && s.state->shards[*it].primary != me(self) &&
        s.storage->owned_epoch(*it) == 0 && s.state->shards[*it].replicas.size() > 1)
      it = s.refused_shards.erase(it);
    else
      ++it;
  fence_followed(self);
  auto steps = co::reconcile(*s.state, me(self), s.local);
  for (const auto& step : steps) {
    if (step.what != co::step::send)
      s.waiting_target.erase(step.shard);  // the wait for a target's connection is per move
    if (step.what != s.last_step[step.shard]) {
      const auto& l = s.local[step.shard];
      s.log->debug(
          "node={} shard {}: {} (epoch {}, peer '{}', move {}; state revision {}, "
          "handoff {} for move {}{})",
          me(self), step.shard, co::to_string(step.what), step.epoch, step.peer, step.move_revision,
          s.state->revision, static_cast<int>(l.progress), l.move_revision,
          s.busy[step.shard] ? ", busy" : "");
      s.last_step[step.shard] = step.what;
    }
    // A refused shard is left exactly as it is (its disk copy may be the only one, or it has
    // none): no step runs for it until an operator settles it.
    if (!s.busy[step.shard] && !s.refused_shards.count(step.shard))
      run_step(self, s.state->shards[step.shard], step);
  }
}

}  // namespace ordermesh::cluster::agent
