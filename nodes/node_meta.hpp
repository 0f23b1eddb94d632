#pragma once
#include <string>

#include "nodes/config.hpp"

namespace ordermesh::persistence {
class storage_engine;
}

namespace ordermesh::node {

/// Records this node's identity and shard count on first start and refuses to run with other
/// values later (the shard of every key on disk depends on the shard count).
bool check_node_meta(persistence::storage_engine& storage, const node_config& cfg,
                     std::string* why);

/// This data dir's identity: a random positive number made (and synced) the first time, the
/// same ever after; 0 (with `why`) if it cannot be read or made. A wiped data dir gets a new
/// one. In a replicated cluster an ISR entry names it (docs/REPLICATION.md), so a data dir must
/// never be copied or restored under a node that kept its old one: restore into an empty
/// directory and delete the copied `disk_id` (the node makes a new one and catches up).
int64_t disk_identity(persistence::storage_engine& storage, std::string* why);

/// Gives the data dir a new disk identity (a restore: the copy is another disk than the one the
/// backup was taken of). False with `why` when it cannot be written.
bool renew_disk_identity(persistence::storage_engine& storage, std::string* why);

}  // namespace ordermesh::node
