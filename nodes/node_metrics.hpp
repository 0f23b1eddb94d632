#pragma once
// The node's existing counters in its metrics: collectors that read them at render time (the
// storage engine's stats, the entity restarts, the client listener's connections), so that
// cluster.status and GET /metrics show the same numbers, counted once.
//
// No observability header here: orderd_main.cpp, which holds this, names `ordermesh` `om`.
#include <memory>

#include "nodes/client_listener.hpp"
#include "nodes/gateway.hpp"

namespace ordermesh::node {

/// Registers the collectors for its life; they read `shared` (its context and storage) and
/// `listener`: destroy it before those.
class node_metrics {
 public:
  node_metrics(const gateway_shared& shared, const client_listener& listener);
  ~node_metrics();
  node_metrics(const node_metrics&) = delete;
  node_metrics& operator=(const node_metrics&) = delete;

 private:
  struct collectors;
  std::unique_ptr<collectors> collectors_;
};

}  // namespace ordermesh::node
