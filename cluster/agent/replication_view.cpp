// What the replica leader (replication_roles.hpp) needs from the member agent, sent after every
// change: the shard map, where each connected peer's replica follower is, this node's
// incarnation; and, for the storage engine's sink, which shards have replicas elsewhere (a
// batch that wrote only others is answered at once).
#include <caf/all.hpp>

#include "cluster/agent/agent_state.hpp"

namespace ordermesh::cluster::agent {

void publish_replication(self_ptr self) {
  auto& s = self->state;
  if (!s.repl || !s.state)
    return;
  // What this node's acks and ISR entries name: its disk, not its membership's life (a restart
  // with the disk intact keeps every ack it gave; a wiped disk is a new one).
  s.repl->incarnation.store(s.cfg.disk);
  auto view = std::make_shared<replication_view>();
  view->state = s.state;
  view->incarnation = s.cfg.disk;
  view->cut_off = s.cut_off;
  for (const auto& [id, p] : s.peers) {
    if (p.agent && p.replica)
      view->followers.emplace(id, p.replica);
    else if (!p.agent && p.down_since)
      view->unreachable.insert(id);
  }
  // Suspected while still connected (silent: paused or cut off, its link not dropped yet):
  // unreachable too, so a promotion does not wait for its tail (refresh_cut_off republishes
  // when the suspects change).
  view->unreachable.insert(s.suspected.begin(), s.suspected.end());
  auto replicated = std::make_shared<std::vector<bool>>(s.cfg.shard_count, false);
  for (const auto& a : s.state->shards)
    if (a.shard < replicated->size())
      for (const auto& r : a.replicas)
        if (r != me(self))
          (*replicated)[a.shard] = true;
  // The table first: a batch of a newly replicated shard must not be answered at once.
  s.repl->sink->set_replicated(std::move(replicated));
  replication_view_ptr shared{std::move(view)};
  self->send(s.replica_leader, replica_view_atom::value, shared);
  // What this node no longer replicates is deleted beside (replica_forget.cpp).
  if (s.replica_forgetter)
    self->send(s.replica_forgetter, replica_view_atom::value, shared);
}

}  // namespace ordermesh::cluster::agent
