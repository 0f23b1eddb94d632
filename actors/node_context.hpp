#pragma once
// What every actor of a node shares: storage, settings, the routing table and the clock.
// Built once at start-up; read-only afterwards except for the counters.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include <caf/actor.hpp>

#include "actors/messages.hpp"
#include "cluster/cluster_messages.hpp"

namespace spdlog {
class logger;
}
namespace ordermesh::persistence {
class storage_engine;
}

namespace ordermesh::actors {

struct entity_settings {
  int64_t reservation_ttl_ms = 15 * 60 * 1000;
  /// A snapshot is due once an entity has this many events since its last one *and* those
  /// events' bytes reach the last snapshot's size: a large state (an inventory's holds) is then
  /// rewritten in proportion to what changed, never 100 times over per 100 events.
  uint32_t snapshot_every = 100;
  std::chrono::milliseconds passivate_after{5 * 60 * 1000};
  /// Settled orders (PAID, CANCELLED, REJECTED) are read rarely and never act by themselves:
  /// they leave memory sooner, so memory follows the live orders, not the order rate.
  std::chrono::milliseconds passivate_settled_after{30 * 1000};
  std::chrono::milliseconds step_timeout{2000};       // one saga step's request to a participant
  std::chrono::milliseconds max_retry_backoff{5000};  // saga retries back off up to this
  uint32_t restart_limit = 5;                         // crashes within restart_window ...
  std::chrono::milliseconds restart_window{10000};
  std::chrono::milliseconds quarantine_for{30000};  // ... quarantine the entity this long
  bool fault_injection = false;
  /// Fault injection only, to prove the chaos checker catches lost writes: wallet deposits are
  /// acknowledged without ever being written (lost at the next restart).
  bool fault_ack_without_write = false;
  /// Caps on one user's open (reserved, unpaid, unexpired) orders, enforced by the user entity
  /// (domain/user_slots.cpp); 0: unlimited. Off here, so that tests of other things are not
  /// limited; orderd's flags default to 20 orders and 1000 units (nodes/config.cpp).
  int64_t max_open_orders_per_user = 0;
  int64_t max_reserved_units_per_user = 0;
  /// A claimed slot counts this long before its order's reservation starts, and this long past
  /// the reservation's lapse: the margin for a slow saga step. A slot whose order was never
  /// written (a crash right after the claim) stops counting after it.
  std::chrono::milliseconds slot_grace{60 * 1000};
  size_t max_deferred = 256;   // commands an entity holds while a saga step is in flight
  size_t max_buffered = 1024;  // messages a supervisor holds for an entity being (re)started
};

class node_context {
 public:
  node_context(std::string node_id, persistence::storage_engine* storage, entity_settings settings,
               uint16_t shard_count, std::shared_ptr<spdlog::logger> log);

  const std::string& node_id() const { return node_id_; }
  persistence::storage_engine& storage() const { return *storage_; }
  const entity_settings& settings() const { return settings_; }
  uint16_t shard_count() const { return shard_count_; }
  spdlog::logger& log() const { return *log_; }

  uint16_t shard_of(const entity_ref& e) const;
  /// The actor that accepts messages for `e`: its shard's supervisor here or on the owner node,
  /// or a responder that answers `unavailable` while the owner cannot be reached.
  caf::actor route(const entity_ref& e) const;
  /// Installs the cluster's routing (from the node agent); until then everything is local.
  void set_routes(cluster::routing_ptr routes);
  cluster::routing_ptr routes() const;
  void set_supervisors(std::vector<caf::actor> supervisors) {
    supervisors_ = std::move(supervisors);
  }
  const std::vector<caf::actor>& supervisors() const { return supervisors_; }

  /// Wall clock, ms since the Unix epoch (order timestamps and reservation expiry).
  int64_t now_ms() const;

  /// Until when (steady clock, ns since its epoch) this node's membership lease is surely valid;
  /// 0: no lease. A node coordinated through a store (etcd) serves no entity past it: it may
  /// have lost its shards without knowing. Without a store the lease never ends (the default).
  void set_lease_until(int64_t steady_ns) { lease_until_ns_.store(steady_ns); }
  bool lease_valid() const;

  /// In a replicated cluster: the actor that answers the read barrier (read_barrier_atom) for
  /// `shard`, or null when the shard has no replica on another node (nothing to wait for).
  /// Installed once at start-up, before the first entity runs; unset on a node alone.
  void set_read_barrier(std::function<caf::actor(uint16_t)> lookup) {
    read_barrier_ = std::move(lookup);
  }
  caf::actor read_barrier(uint16_t shard) const {
    return read_barrier_ ? read_barrier_(shard) : caf::actor{};
  }
  /// Whether `shard` has replicas on other nodes: its writes commit independently of other
  /// shards' (each through its own followers), so the one-journal shortcuts (answering a saga
  /// step before it is durable, `exposed` writes) do not hold for it.
  bool replicated(uint16_t shard) const { return static_cast<bool>(read_barrier(shard)); }

  std::atomic<int64_t> active_entities{0};
  std::atomic<uint64_t> entity_restarts{0};

 private:
  std::string node_id_;
  persistence::storage_engine* storage_;
  entity_settings settings_;
  uint16_t shard_count_;
  std::shared_ptr<spdlog::logger> log_;
  std::vector<caf::actor> supervisors_;
  cluster::routing_ptr routes_;  // read with std::atomic_load: the agent swaps it at any time
  std::atomic<int64_t> lease_until_ns_{std::numeric_limits<int64_t>::max()};
  std::function<caf::actor(uint16_t)> read_barrier_;
};

using context_ptr = std::shared_ptr<node_context>;

}  // namespace ordermesh::actors
