#include "actors/node_context.hpp"

#include <spdlog/logger.h>

#include "cluster/sharding.hpp"

namespace ordermesh::actors {

node_context::node_context(std::string node_id, persistence::storage_engine* storage,
                           entity_settings settings, uint16_t shard_count,
                           std::shared_ptr<spdlog::logger> log)
    : node_id_(std::move(node_id)),
      storage_(storage),
      settings_(settings),
      shard_count_(shard_count),
      log_(std::move(log)) {}

uint16_t node_context::shard_of(const entity_ref& e) const {
  return cluster::shard_of(e.kind, e.id, shard_count_);
}

caf::actor node_context::route(const entity_ref& e) const {
  auto shard = shard_of(e);
  auto table = std::atomic_load(&routes_);
  if (table && shard < table->route.size() && table->route[shard])
    return table->route[shard];
  return supervisors_[shard];
}

void node_context::set_routes(cluster::routing_ptr routes) {
  std::atomic_store(&routes_, std::move(routes));
}

cluster::routing_ptr node_context::routes() const {
  return std::atomic_load(&routes_);
}

int64_t node_context::now_ms() const {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

bool node_context::lease_valid() const {
  auto now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                 std::chrono::steady_clock::now().time_since_epoch())
                 .count();
  return now < lease_until_ns_.load(std::memory_order_relaxed);
}

}  // namespace ordermesh::actors
