#pragma once
// The shard map and its changes in the node's metrics: ISR size per shard, shards led here,
// failovers and moves written, replication lag. Internal to ordermesh_cluster (orderd_main.cpp,
// which names `ordermesh` `om`, must not see the observability headers).
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "cluster/coordination/coordination.hpp"
#include "observability/registry.hpp"

namespace ordermesh::cluster::agent {

struct replication_context;

/// Sets the per-shard gauges from the shard map just read from the store.
void publish_shard_metrics(const coordination::cluster_state& st, const std::string& me,
                           uint16_t min_insync);

/// ordermesh_shard_failovers_total{cause}: "primary_lost" (the controller promoted an in-sync
/// replica) or "forced" (cluster.force-primary), counted by the node that wrote it.
om::obs::counter& failovers_counter(std::string_view cause);
/// ordermesh_shard_moves_total{kind}: a handoff or a replica step the controller wrote.
om::obs::counter& moves_counter(std::string_view kind);

/// ordermesh_replication_lag_batches{shard,follower}: read at render time from what the replica
/// leader records (replication_context::lag). One node runs one agent: a later call replaces the
/// earlier one's collector; once `repl` is gone the collector reports nothing.
void collect_replication_lag(const std::weak_ptr<replication_context>& repl);

}  // namespace ordermesh::cluster::agent
