#pragma once
// Which consensus store this node follows, opened from its flags: etcd (--etcd), or, for a node
// alone, the local store seeded from its disk (cluster/coordination/local_seed.hpp).
#include <memory>
#include <string>

#include "cluster/coordination/coordination.hpp"
#include "nodes/config.hpp"

namespace ordermesh::persistence {
class storage_engine;
}

namespace ordermesh::node {

/// The session, or nullptr and why: bad --etcd endpoints, https ones without usable --tls-cert,
/// --tls-key and --tls-ca (checked here: readable, PEM, key matching), or a disk a node alone must
/// not serve from (an etcd member's, or one node's part of a multi-node cluster). Never blocks on
/// the network (an etcd session connects on first use).
std::unique_ptr<cluster::coordination::session> open_coordination(
    persistence::storage_engine& storage, const node_config& cfg, std::string* why);

/// Before the node takes a member key: compares the fingerprint of its admin token with the one
/// the cluster holds in the store, storing it if the cluster has none (the first node sets it).
/// A store that cannot be reached is retried until cfg.join_timeout. False, with *why naming
/// the cause (never the secret), when the fingerprints differ or the store could not be asked.
/// Blocks: call it before the session is handed to the coordination driver.
bool check_admin_secret(cluster::coordination::session& session, const node_config& cfg,
                        std::string* why);

}  // namespace ordermesh::node
