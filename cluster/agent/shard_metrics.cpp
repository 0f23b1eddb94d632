#include "cluster/agent/shard_metrics.hpp"

#include <mutex>

#include "cluster/agent/replication_roles.hpp"
#include "cluster/sharding.hpp"

namespace ordermesh::cluster::agent {

namespace {

// One series per shard, whatever the shard count (cluster/sharding.hpp bounds it).
constexpr size_t max_shard_series = max_shard_count;
// Followers per shard are at most a handful; bounded anyway.
constexpr size_t max_lag_series = 4096;

om::obs::registry& reg() {
  return om::obs::registry::global();
}

/// A counter of a family with one label whose values are a few fixed words.
om::obs::counter& one_label_counter(const char* name, const char* help, const char* label,
                                    std::string_view value) {
  return reg().counters(name, help, {label}, 8).with({std::string(value)});
}

}  // namespace

void publish_shard_metrics(const coordination::cluster_state& st, const std::string& me,
                           uint16_t min_insync) {
  auto& isr = reg().gauges("ordermesh_shard_isr_size",
                           "In-sync replicas of each shard (primary included), as this node last "
                           "read the shard map.",
                           {"shard"}, max_shard_series);
  auto& replicas = reg().gauges("ordermesh_shard_replicas",
                                "Replicas of each shard (primary included), as this node last "
                                "read the shard map.",
                                {"shard"}, max_shard_series);
  int64_t led = 0;
  for (const auto& a : st.shards) {
    auto shard = std::to_string(a.shard);
    isr.with({shard}).set(static_cast<int64_t>(a.isr.size()));
    replicas.with({shard}).set(static_cast<int64_t>(a.replicas.size()));
    if (a.primary == me)
      ++led;
  }
  reg().gauges("ordermesh_shards_led", "Shards whose primary is this node.").with({}).set(led);
  reg()
      .gauges("ordermesh_min_insync",
              "The in-sync copies a write needs (--min-insync): an ISR below it stops writes.")
      .with({})
      .set(min_insync);
}

om::obs::counter& failovers_counter(std::string_view cause) {
  return one_label_counter(
      "ordermesh_shard_failovers_total",
      "Failovers written to the shard map by this node, by cause (primary_lost: "
      "the controller promoted an in-sync replica; forced: "
      "cluster.force-primary).",
      "cause", cause);
}

om::obs::counter& moves_counter(std::string_view kind) {
  return one_label_counter("ordermesh_shard_moves_total",
                           "Shard moves written to the shard map by this node (the controller), by "
                           "kind: handoff, add_replica, move_primary, drop_replica.",
                           "kind", kind);
}

void collect_replication_lag(const std::weak_ptr<replication_context>& repl) {
  auto h = reg().collect(
      "ordermesh_replication_lag_batches",
      "Batches a follower has not acknowledged yet, per shard this node leads and follower.",
      om::obs::metric_type::gauge, {"shard", "follower"},
      [repl](std::vector<om::obs::sample>& out) {
        auto ctx = repl.lock();
        if (!ctx)
          return;
        std::lock_guard<std::mutex> lock(ctx->lag_mu);
        for (const auto& [shard, followers] : ctx->lag) {
          for (const auto& [node, lag] : followers) {
            if (out.size() >= max_lag_series)
              return;
            out.push_back({{std::to_string(shard), node}, static_cast<double>(lag)});
          }
        }
      },
      max_lag_series);
  // Declared after the registry exists, so destroyed before it at exit.
  static std::mutex mu;
  static om::obs::collector_handle handle;
  std::lock_guard<std::mutex> lock(mu);
  handle = std::move(h);
}

}  // namespace ordermesh::cluster::agent
