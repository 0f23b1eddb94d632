// Deletes the copy of every shard this node no longer replicates (issue 12: a replica that a
// move dropped would otherwise keep the shard's journal and snapshots on its disk for good).
//
// When it is safe: a replica dropped at epoch E may be added again at the same E (replica
// moves keep the epoch), and the primary of E may still hold acks it gave before the drop: its
// copy must then still hold what those acks said, or the primary could let it into the ISR on
// their strength with an empty disk. No primary of a later epoch can hold such an ack: a
// primary's acks are per epoch, and the follower raises its fence to a sender's epoch before it
// answers anything (replica_follower.cpp, see_epoch). So a copy goes once the store shows the
// shard at an epoch this node is no replica of and has never seen (its fence is below it),
// checked by the storage engine on its writer thread in order with every replica operation
// (storage_engine::forget_replica): either the delete lands first and every later answer says
// position 0, or a primary of that epoch reached this node first and the copy stays.
// Until the shard's epoch moves on (a primary move, a failover), a dropped copy stays.
//
// A crash in the middle is harmless: the delete is one synced batch (the range with its replica
// position), and the next start checks again. Detached: each delete is a synced write, and it
// waits for the batches held before it, which must not stall the follower's acks.
#include <algorithm>
#include <map>

#include <spdlog/logger.h>
#include <caf/all.hpp>

#include "cluster/agent/replication_roles.hpp"
#include "persistence/storage_engine.hpp"

namespace ordermesh::cluster::agent {

namespace {

struct forget_state {
  replication_context_ptr ctx;
  /// Per shard, the epoch whose "not a replica" is settled (deleted, nothing held, or a primary
  /// of it heard from this node): each epoch is checked once.
  std::map<uint16_t, uint64_t> settled;
  static inline const char* name = "ordermesh.replica_forget";
};
using forget_ptr = caf::stateful_actor<forget_state>*;

bool replica_of(const coordination::shard_assignment& a, const std::string& id) {
  return a.primary == id || a.target == id ||
         std::find(a.replicas.begin(), a.replicas.end(), id) != a.replicas.end();
}

void forget_dropped(forget_ptr self, const replication_view& view) {
  auto& st = self->state;
  auto& ctx = *st.ctx;
  auto& storage = *ctx.storage;
  if (!view.state || !view.state->config || view.state->config->replication_factor < 2)
    return;  // a cluster of replication factor 1 drops handed-off shards (shard_steps.cpp)
  for (const auto& a : view.state->shards) {
    if (a.shard >= ctx.rings.size() || replica_of(a, ctx.node_id) ||
        storage.owned_epoch(a.shard) != 0)
      continue;
    auto& settled = st.settled[a.shard];
    if (settled == a.epoch)
      continue;
    settled = a.epoch;
    if (storage.replica(a.shard).fence >= a.epoch)
      continue;  // heard of this epoch: a primary of it may count on this copy
    persistence::shard_chunk any;
    if (storage.replica_position(a.shard) == 0 &&
        storage.export_shard(a.shard, std::string{}, 1, any).is_ok() && any.records.empty())
      continue;  // nothing held
    auto done = storage.forget_replica(a.shard, a.epoch);
    if (done) {
      {
        std::lock_guard<std::mutex> lock(ctx.rings_mu);
        ctx.rings[a.shard].clear();  // its deltas describe what is gone
      }
      ctx.log->info("node={} shard {}: deleted its copy (no replica at epoch {})", ctx.node_id,
                    a.shard, a.epoch);
    } else {
      ctx.log->info("node={} shard {}: keeps its copy ({})", ctx.node_id, a.shard,
                    done.to_string());
    }
  }
}

caf::behavior replica_forget(forget_ptr self, replication_context_ptr ctx) {
  self->state.ctx = std::move(ctx);
  return {
      [self](replica_view_atom, const replication_view_ptr& view) {
        if (view)
          forget_dropped(self, *view);
      },
  };
}

}  // namespace

caf::actor spawn_replica_forgetter(caf::actor_system& sys, replication_context_ptr ctx) {
  return sys.spawn<caf::detached>(replica_forget, std::move(ctx));
}

}  // namespace ordermesh::cluster::agent
