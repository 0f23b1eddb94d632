#pragma once
// What the coordination contract cases need from a store, so that each case is written once and
// run against every implementation: the in-memory store (hand-moved clock, injected faults) and
// the etcd session against a real etcd this fixture starts (tests/etcd/etcd_process.hpp).
#include <cstdint>
#include <memory>
#include <string>

#include "cluster/coordination/coordination.hpp"

namespace ordermesh::cluster::coordination::test {

class contract_fixture {
 public:
  virtual ~contract_fixture() = default;

  /// "memory" or "etcd", for messages.
  virtual std::string name() const = 0;

  /// A new handle on the store: a node process, as far as the store can tell.
  virtual std::unique_ptr<session> connect() = 0;
  /// A handle on another, empty cluster (a second store, or another prefix in the same etcd).
  virtual std::unique_ptr<session> connect_other_cluster() = 0;
  /// A handle for `node_id` that set_reachable can cut off from the store.
  virtual std::unique_ptr<session> connect_as(const std::string& node_id) = 0;

  /// Cuts the handle made by connect_as(node_id) off from the store, or reconnects it.
  virtual void set_reachable(const std::string& node_id, bool reachable) = 0;
  /// Lets `node_id`'s lease run out (it has not renewed since it joined) while `alive` keeps
  /// renewing its own. Memory: moves the clock past the TTL. etcd: waits, bounded, for the real
  /// expiry.
  virtual void let_lease_run_out(const std::string& node_id, session& alive) = 0;
  /// Expires `node_id`'s lease now, as if its keepalives had stopped a TTL ago.
  virtual void expire_lease(const std::string& node_id) = 0;
  /// The store's current revision, asked by the test rather than through a member.
  virtual int64_t revision() = 0;
};

/// The in-memory store on a hand-moved clock.
std::unique_ptr<contract_fixture> make_memory_fixture();
/// A private etcd on 127.0.0.1 (started here; FAILs the test when /usr/bin/etcd is missing).
std::unique_ptr<contract_fixture> make_etcd_fixture();

}  // namespace ordermesh::cluster::coordination::test
