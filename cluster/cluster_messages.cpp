#include "cluster/cluster_messages.hpp"

#include <caf/actor_system_config.hpp>

namespace ordermesh::cluster {

void add_message_types(caf::actor_system_config& cfg) {
  // Names are part of the wire format between nodes: never rename one.
  cfg.add_message_type<member>("ordermesh.member");
  cfg.add_message_type<shard_owner>("ordermesh.shard_owner");
  cfg.add_message_type<cluster_view>("ordermesh.cluster_view");
  cfg.add_message_type<join_request>("ordermesh.join_request");
  cfg.add_message_type<peer_info>("ordermesh.peer_info");
  cfg.add_message_type<shard_record>("ordermesh.shard_record");
}

}  // namespace ordermesh::cluster
