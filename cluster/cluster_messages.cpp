#include "cluster/cluster_messages.hpp"

#include <caf/actor_system_config.hpp>

namespace ordermesh::cluster {

void add_message_types(caf::actor_system_config& cfg) {
  // Names are part of the wire format between nodes: never rename one.
  cfg.add_message_type<peer_info>("ordermesh.peer_info");
  cfg.add_message_type<shard_record>("ordermesh.shard_record");
  // add_message_type<T> registers std::vector<T> too.
  cfg.add_message_type<replica_delta>("ordermesh.replica_delta");
  cfg.add_message_type<identity::identity_proof>("ordermesh.identity_proof");
}

}  // namespace ordermesh::cluster
