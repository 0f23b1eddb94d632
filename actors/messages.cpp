#include "actors/messages.hpp"

#include <caf/actor_system_config.hpp>

#include "domain/order_timeline.hpp"

namespace ordermesh::actors {

void add_message_types(caf::actor_system_config& cfg) {
  // Names are part of the wire format between nodes: never rename one.
  cfg.add_message_type<entity_ref>("ordermesh.entity_ref");
  cfg.add_message_type<credentials>("ordermesh.credentials");
  cfg.add_message_type<order_ids>("ordermesh.order_ids");
  cfg.add_message_type<domain::principal>("ordermesh.principal");
  cfg.add_message_type<domain::order_item>("ordermesh.order_item");  // and its vector
  cfg.add_message_type<domain::user_view>("ordermesh.user_view");
  cfg.add_message_type<domain::product_view>("ordermesh.product_view");
  cfg.add_message_type<domain::inventory_view>("ordermesh.inventory_view");
  cfg.add_message_type<domain::order_view>("ordermesh.order_view");
  cfg.add_message_type<domain::order_list_view>("ordermesh.order_list_view");
  cfg.add_message_type<domain::timeline_step>("ordermesh.timeline_step");  // and its vector
  cfg.add_message_type<domain::order_timeline_view>("ordermesh.order_timeline_view");
}

}  // namespace ordermesh::actors
