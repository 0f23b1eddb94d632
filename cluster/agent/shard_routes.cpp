// Where each shard's messages go on this node: its own supervisor (ours at the store's epoch),
// a peer's supervisor (the primary is a member, connected and not suspected), or the
// `unavailable` responder.
#include <algorithm>

#include <caf/actor.hpp>
#include <caf/stateful_actor.hpp>

#include "cluster/agent/agent_state.hpp"
#include "persistence/storage_engine.hpp"

namespace ordermesh::cluster::agent {

bool is_member(self_ptr self, const std::string& node_id) {
  auto& st = self->state.state;
  if (!st)
    return false;
  return std::any_of(st->members.begin(), st->members.end(),
                     [&](const co::member_record& m) { return m.node_id == node_id; });
}

void publish_routes(self_ptr self) {
  auto& s = self->state;
  if (!s.state || s.state->shards.size() != s.cfg.shard_count)
    return;
  auto table = std::make_shared<routing_table>();
  auto n = s.cfg.shard_count;
  table->view_version = static_cast<uint64_t>(s.state->revision);
  table->route.resize(n);
  table->owner.resize(n);
  table->epoch.resize(n);
  for (uint16_t i = 0; i < n; ++i) {
    const auto& a = s.state->shards[i];
    table->owner[i] = a.primary;
    table->epoch[i] = a.epoch;
    if (s.outgoing.count(i)) {
      table->route[i] = s.hooks.supervisors[i];  // frozen: it holds requests until the end
    } else if (a.primary == me(self)) {
      // Ours at the store's epoch. (The lease is checked by the supervisor, for every request
      // including those other nodes forward: a node cut off from the store serves nothing.)
      bool serving = s.storage->owned_epoch(i) == a.epoch && !s.refused_shards.count(i);
      table->route[i] = serving ? s.hooks.supervisors[i] : s.hooks.unavailable;
    } else {
      // A primary this node suspects (silent or disconnected for --suspect-after: paused, cut
      // off from here, or this node is the one cut off) gets no forwards: they would wait for the
      // client's timeout in a queue it does not read. `unavailable` at once sends the client to
      // retry, and the shard's failover (or the heal) publishes a route again.
      auto p = s.peers.find(a.primary);
      bool reachable = p != s.peers.end() && p->second.agent && p->second.supervisors.size() == n &&
                       is_member(self, a.primary) && !s.suspected.count(a.primary);
      table->route[i] = reachable ? p->second.supervisors[i] : s.hooks.unavailable;
    }
  }
  s.hooks.publish_routes(std::move(table));
}

}  // namespace ordermesh::cluster::agent
