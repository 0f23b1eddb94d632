#include "actors/entity_layer.hpp"

#include <caf/actor_system.hpp>
#include <caf/exit_reason.hpp>
#include <caf/send.hpp>

#include "actors/shard_supervisor.hpp"
#include "actors/wakeup_scheduler.hpp"

namespace ordermesh::actors {

entity_layer start_entity_layer(caf::actor_system& sys, const context_ptr& ctx) {
  entity_layer layer;
  layer.supervisors.reserve(ctx->shard_count());
  for (uint16_t shard = 0; shard < ctx->shard_count(); ++shard)
    layer.supervisors.push_back(spawn_shard_supervisor(sys, ctx, shard));
  ctx->set_supervisors(layer.supervisors);
  layer.wakeups = spawn_wakeup_scheduler(sys, ctx);
  return layer;
}

void stop_entity_layer(entity_layer& layer) {
  caf::anon_send_exit(layer.wakeups, caf::exit_reason::kill);
  for (auto& s : layer.supervisors)
    caf::anon_send_exit(s, caf::exit_reason::kill);
}

}  // namespace ordermesh::actors
