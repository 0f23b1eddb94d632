// The controller's work, on the one member the store elected: create the shard map once, then
// write move intents from the placement (cluster/coordination/placement.hpp). Without a
// controller, every member campaigns now and then.
#include <spdlog/logger.h>
#include <caf/all.hpp>

#include "cluster/agent/agent_state.hpp"
#include "cluster/coordination/local_seed.hpp"
#include "cluster/coordination/placement.hpp"

namespace ordermesh::cluster::agent {

void controller_round(self_ptr self) {
  auto& s = self->state;
  if (!s.state || !lease_ok(self) || s.refused)
    return;
  const auto& st = *s.state;
  if (!st.controller) {
    if (!s.campaigning && clock_type::now() - s.last_campaign >= campaign_interval) {
      s.campaigning = true;
      s.last_campaign = clock_type::now();
      self->request(s.driver, s.cfg.request_timeout, coord_campaign_atom::value)
          .then(
              [self](const std::string& controller) {
                self->state.campaigning = false;
                if (controller == me(self))
                  self->state.log->info("node={} is the controller", me(self));
              },
              [self](caf::error&) { self->state.campaigning = false; });
    }
    return;
  }
  if (st.controller->node_id != me(self) || st.controller->incarnation != s.incarnation)
    return;
  if (!st.config) {
    if (s.bootstrapping)
      return;
    std::vector<std::string> ids;
    for (const auto& m : st.members)
      if (!m.leaving)
        ids.push_back(m.node_id);
    if (ids.empty())
      return;
    co::cluster_config config{co::new_cluster_id(), s.cfg.shard_count, 1, 1};
    auto shards = std::make_shared<const std::vector<co::shard_assignment>>(
        co::initial_assignments(ids, config));
    s.bootstrapping = true;
    s.log->info("node={} creates the shard map: {} shards over {} members", me(self),
                s.cfg.shard_count, ids.size());
    self->request(s.driver, s.cfg.request_timeout * 2, coord_bootstrap_atom::value, config, shards)
        .then([self](bool) { self->state.bootstrapping = false; },
              [self](caf::error& err) {
                self->state.bootstrapping = false;
                self->state.log->warn("node={} bootstrap: {}", me(self), caf::to_string(err));
              });
    return;
  }
  for (const auto& m : co::plan_moves(st, s.cfg.max_concurrent_moves)) {
    const auto& a = st.shards[m.shard];
    auto it = s.intents.find(m.shard);
    if (it != s.intents.end() && it->second == a.mod_revision)
      continue;  // asked already from this very state
    s.intents[m.shard] = a.mod_revision;
    s.log->info("node={} moves shard {} from {} to {}", me(self), m.shard, m.from, m.to);
    auto shard = m.shard;
    auto revision = a.mod_revision;
    self->request(s.driver, s.cfg.request_timeout, coord_write_atom::value, co::with_target(st, m),
                  revision)
        .then([](bool) {},
              [self, shard, revision](caf::error&) {
                // Not written (or unknown): ask again next round. Placement is deterministic,
                // so a shard skipped for good would stall every move after it.
                auto& intents = self->state.intents;
                auto asked = intents.find(shard);
                if (asked != intents.end() && asked->second == revision)
                  intents.erase(asked);
              });
  }
}

}  // namespace ordermesh::cluster::agent
