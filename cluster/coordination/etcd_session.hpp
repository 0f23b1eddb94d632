#pragma once
// The coordination interface on etcd 3.4 through its v3 JSON gateway (cluster/etcd/). Every key
// lives under /ordermesh/<cluster>/ (coordination_codec.hpp has the layout); every write that
// matters is one txn guarded by the writer's own member key still having its incarnation as
// create revision, and a shard write also by the shard key's mod revision as last read.
// docs/COORDINATION.md ("The etcd session") lists the keys and txns and why they are safe.
//
// Blocking, like the interface: every call returns within its per-call deadline (wait_change
// within its timeout plus that deadline). Not thread-safe: one thread per session. No CAF.
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "cluster/coordination/coordination.hpp"
#include "cluster/etcd/etcd_config.hpp"

namespace ordermesh::cluster::coordination {

struct etcd_session_config {
  /// The etcd members' client URLs (etcd::parse_endpoints turns "http://h:p,http://h:p" into
  /// these). Empty: every call fails with errc::unavailable.
  std::vector<etcd::endpoint> endpoints;
  /// Every key lives under /ordermesh/<cluster>/. Letters, digits, '-', '_', '.'; a bad name
  /// makes every call fail with errc::invalid.
  std::string cluster = "default";
  /// The longest one etcd request may take (a call making several requests gives each its own).
  std::chrono::milliseconds call_timeout{2000};
  /// Connect timeout and response bounds of the etcd client.
  etcd::client_options client;
};

/// A session with the etcd cluster at `cfg.endpoints`. Never blocks or fails here: it connects
/// on first use, and a bad configuration shows up as the error of every call. kind() is "etcd".
std::unique_ptr<session> make_etcd_session(etcd_session_config cfg);

}  // namespace ordermesh::cluster::coordination
