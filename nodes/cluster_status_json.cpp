#include "nodes/cluster_status_json.hpp"

#include <map>
#include <string>

#include "nodes/version.hpp"
#include "persistence/storage_engine.hpp"

namespace ordermesh::node {

using json = nlohmann::json;

namespace {

/// This node's counters, part of every cluster.status.
json node_counters(const actors::node_context& ctx, uint64_t requests) {
  auto st = ctx.storage().stats();
  return json{{"storage",
               {{"healthy", ctx.storage().health().is_ok()},
                {"writes", st.writes},
                {"synced_batches", st.batches},
                {"events", st.events},
                {"bytes", st.bytes},
                {"max_batch", st.max_batch}}},
              {"entity_restarts", ctx.entity_restarts.load()},
              {"requests", requests}};
}

}  // namespace

json cluster_status_json(const cluster::member_status& ms, const actors::node_context& ctx,
                         uint64_t requests) {
  std::map<std::string, size_t> led;
  for (auto& a : ms.shards)
    ++led[a.primary];
  json members = json::array();
  for (auto& m : ms.members) {
    json jm = {{"node_id", m.node_id},
               {"cluster_address", m.cluster_address},
               {"client_address", m.client_address},
               {"state", m.leaving    ? "leaving"
                         : m.draining ? "draining"
                                      : "up"},
               {"incarnation", m.incarnation},
               {"disk", m.disk},
               {"shards_owned", led[m.node_id]}};
    if (m.node_id == ctx.node_id()) {
      jm["active_entities"] = ctx.active_entities.load();
      jm["version"] = node_version();
      jm["uptime_ms"] = process_uptime().count();
      // Whether this node reaches a majority of its peers (its /readyz check `peers`).
      jm["cut_off"] = ms.cut_off;
    }
    members.push_back(std::move(jm));
  }
  json shards = json::array();
  for (auto& a : ms.shards) {
    json shard_json = {{"shard", a.shard},         {"primary", a.primary},   {"owner", a.primary},
                       {"epoch", a.epoch},         {"replicas", a.replicas}, {"isr", a.isr},
                       {"isr_disks", a.isr_disks}, {"target", a.target}};
    // Only the shard's primary knows how far its followers are.
    if (auto lag = ms.follower_lag.find(a.shard); lag != ms.follower_lag.end())
      shard_json["lag"] = lag->second;
    shards.push_back(std::move(shard_json));
  }
  // Dead nodes still named by shards: gone (the timeout's clock runs) or being replaced.
  json departed = json::array();
  for (const auto* list : {&ms.absent, &ms.removed})
    for (const auto& d : *list)
      departed.push_back({{"node_id", d.node_id},
                          {"state", list == &ms.absent ? "absent" : "removing"},
                          {"since_ms", d.since_ms},
                          {"by", d.by}});
  json out = {{"node_id", ctx.node_id()},
              {"coordination", ms.coordination},
              {"cluster_id", ms.cluster_id},
              {"controller", ms.controller},
              {"incarnation", ms.incarnation},
              {"lease_valid", ms.lease_valid},
              {"shard_count", ms.shards.size()},
              {"unreachable_from_here", ms.unreachable},
              {"members", members},
              {"departed", departed},
              {"shards", shards}};
  out.update(node_counters(ctx, requests));
  return out;
}

}  // namespace ordermesh::node
