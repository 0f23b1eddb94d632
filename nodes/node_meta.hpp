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

}  // namespace ordermesh::node
