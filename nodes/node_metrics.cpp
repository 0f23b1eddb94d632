#include "nodes/node_metrics.hpp"

#include <vector>

#include "observability/registry.hpp"

#include "observability/request_meter.hpp"
#include "persistence/storage_engine.hpp"

namespace ordermesh::node {

namespace {

using om::obs::metric_type;
using om::obs::sample;

/// A collector of one unlabeled value.
template <class Read>
om::obs::collector_handle one(const char* name, const char* help, metric_type type, Read read) {
  return om::obs::registry::global().collect(name, help, type, {},
                                             [read](std::vector<sample>& out) {
                                               out.push_back({{}, static_cast<double>(read())});
                                             });
}

}  // namespace

struct node_metrics::collectors {
  std::vector<om::obs::collector_handle> handles;
};

node_metrics::~node_metrics() = default;

node_metrics::node_metrics(const gateway_shared& shared, const client_listener& listener)
    : collectors_(std::make_unique<collectors>()) {
  const auto* ctx = shared.ctx.get();
  const auto* l = &listener;
  const auto* g = &shared;
  auto storage = [ctx] { return ctx->storage().stats(); };
  auto& h = collectors_->handles;
  auto& r = om::obs::registry::global();
  // Storage: the group commit's own counters (persistence/group_commit.hpp).
  h.push_back(one("ordermesh_storage_writes_total", "Write requests committed to the journal.",
                  metric_type::counter, [storage] { return storage().writes; }));
  h.push_back(one("ordermesh_storage_batches_total",
                  "Group-commit batches written (one synced RocksDB write each).",
                  metric_type::counter, [storage] { return storage().batches; }));
  h.push_back(one("ordermesh_storage_events_total", "Entity events committed.",
                  metric_type::counter, [storage] { return storage().events; }));
  h.push_back(one("ordermesh_storage_written_bytes_total", "Payload bytes committed.",
                  metric_type::counter, [storage] { return storage().bytes; }));
  h.push_back(one("ordermesh_storage_queued_writes", "Write requests waiting for the writer now.",
                  metric_type::gauge, [storage] { return storage().queued; }));
  h.push_back(one("ordermesh_storage_refused_writes_total",
                  "Writes refused (queue full, storage failed, shard not owned).",
                  metric_type::counter,
                  [storage] { return storage().refused + storage().refused_at_commit; }));
  h.push_back(one("ordermesh_storage_unacked_batches",
                  "Committed batches waiting for their replicas' acknowledgement.",
                  metric_type::gauge, [storage] { return storage().unacked; }));
  h.push_back(one("ordermesh_storage_healthy",
                  "1 while the storage engine has had no write error, else 0 (the node exits).",
                  metric_type::gauge, [ctx] { return ctx->storage().health().is_ok() ? 1 : 0; }));
  // Entities.
  h.push_back(
      one("ordermesh_entity_restarts_total",
          "Entity actors restarted by their shard supervisor after they stopped abnormally.",
          metric_type::counter, [ctx] { return ctx->entity_restarts.load(); }));
  // Client plane.
  h.push_back(one("ordermesh_client_connections_open", "Client connections open now.",
                  metric_type::gauge, [l] { return l->connections(); }));
  h.push_back(one("ordermesh_client_connections_accepted_total", "Client connections accepted.",
                  metric_type::counter, [l] { return l->stats().accepted; }));
  h.push_back(one("ordermesh_client_requests_in_flight", "Client requests not answered yet.",
                  metric_type::gauge, [g] { return g->in_flight.load(); }));
  h.push_back(r.collect(om::obs::overloaded_replies_name, om::obs::overloaded_replies_help,
                        metric_type::counter, {"stage"}, [l](std::vector<sample>& out) {
                          auto s = l->stats();
                          out.push_back(
                              {{"connection"},
                               static_cast<double>(s.refused_total + s.refused_per_address)});
                        }));
}

}  // namespace ordermesh::node
