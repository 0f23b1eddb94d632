// Whether this node is cut off from the cluster: it reaches no majority of the members that may
// be alive (co::is_cut_off over the suspicion signals). A node cut off from its peers but not
// from etcd keeps its lease; if it also removed its silent followers from its ISRs and won the
// controller's election again, the members that reach each other would find the shards it led
// with a single in-sync replica left (writes paused until a full copy) and its controller key
// back, and its shards would stay unserved for the whole partition. So a cut-off node leaves
// both to the majority (docs/REPLICATION.md, "A node cut off").
#include <set>
#include <string>

#include <spdlog/logger.h>
#include <caf/all.hpp>

#include "cluster/agent/agent_state.hpp"

namespace ordermesh::cluster::agent {

void refresh_cut_off(self_ptr self) {
  auto& s = self->state;
  bool cut = false;
  size_t members = 0, silent = 0, gone = 0;
  std::set<std::string> suspected;
  if (s.state && s.state->config && s.state->config->replication_factor > 1 &&
      s.cfg.suspect_after.count() > 0) {
    auto now = clock_type::now();
    members = s.state->members.size();
    for (const auto& m : s.state->members) {
      auto p = s.peers.find(m.node_id);
      if (m.node_id == me(self) || p == s.peers.end())
        continue;
      auto signals = signals_of(p->second);
      if (!co::is_suspected(signals, now, s.cfg.suspect_after))
        continue;
      suspected.insert(m.node_id);
      if (signals.refused_since)
        ++gone;  // its process died: not alive beyond a partition
      else
        ++silent;
    }
    cut = co::is_cut_off(members, silent, gone);
  }
  if (cut == s.cut_off && suspected == s.suspected)
    return;
  bool cut_changed = cut != s.cut_off;
  s.cut_off = cut;
  s.suspected = std::move(suspected);
  if (cut_changed && cut)
    s.log->warn(
        "node={} is cut off: it reaches {} of the {} members that may be alive; its shards "
        "keep their followers in the ISR and it does not campaign at once, so that the others "
        "take over",
        me(self), members - gone - silent, members - gone);
  else if (cut_changed)
    s.log->info("node={} is no longer cut off", me(self));
  if (cut_changed && s.hooks.on_cut_off)
    s.hooks.on_cut_off(cut);
  publish_replication(self);
  publish_routes(self);  // no forwards to a suspected primary (shard_routes.cpp)
}

}  // namespace ordermesh::cluster::agent
