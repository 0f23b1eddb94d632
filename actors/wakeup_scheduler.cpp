// Wakes entities that have work due while nobody asks for them: at start-up, the node reads the
// wakeup index (orders in PENDING, to resume their saga; orders in RESERVED, to expire them, also
// when the reservation lapsed while the node was down) and sends each its wakeup when due.
// Entities that are running keep their own timers; this covers the ones not yet in memory.
#include "actors/wakeup_scheduler.hpp"

#include <algorithm>
#include <chrono>
#include <vector>

#include <spdlog/logger.h>
#include <caf/all.hpp>

#include "actors/messages.hpp"
#include "cluster/cluster_messages.hpp"
#include "persistence/storage_engine.hpp"

namespace ordermesh::actors {

namespace {

constexpr size_t wakeups_per_tick = 256;  // spreads a backlog so it cannot flood the shards

struct wakeup_state {
  context_ptr ctx;
  std::vector<persistence::wakeup_entry> due;  // sorted by due_ms
  size_t next = 0;
  static inline const char* name = "ordermesh.wakeup_scheduler";
};
using self_ptr = caf::stateful_actor<wakeup_state>*;

void schedule_next(self_ptr self) {
  auto& s = self->state;
  if (s.next >= s.due.size()) {
    s.due.clear();
    s.due.shrink_to_fit();
    s.next = 0;  // an index into the now empty list: left stale, the next scan erased past its end
    return;
  }
  auto wait = std::max<int64_t>(0, s.due[s.next].due_ms - s.ctx->now_ms());
  self->delayed_send(self, std::chrono::milliseconds(wait), fire_atom::value);
}

void fire(self_ptr self) {
  auto& s = self->state;
  auto now = s.ctx->now_ms();
  for (size_t n = 0; n < wakeups_per_tick && s.next < s.due.size() && s.due[s.next].due_ms <= now;
       ++n, ++s.next) {
    auto& w = s.due[s.next].key;
    entity_ref who{w.kind, w.id};
    caf::anon_send(s.ctx->route(who), who, wakeup_atom::value);
  }
  schedule_next(self);
}

caf::behavior wakeup_scheduler(self_ptr self, context_ptr ctx) {
  auto& s = self->state;
  s.ctx = std::move(ctx);
  auto st = s.ctx->storage().scan_wakeups(
      [&](const persistence::wakeup_entry& w) { s.due.push_back(w); });
  if (!st)
    s.ctx->log().error("node={} cannot read the wakeup index: {}", s.ctx->node_id(),
                       st.to_string());
  std::stable_sort(s.due.begin(), s.due.end(),
                   [](const auto& a, const auto& b) { return a.due_ms < b.due_ms; });
  s.ctx->log().info("node={} {} entities to wake", s.ctx->node_id(), s.due.size());
  self->send(self, fire_atom::value);
  return {
      [self](fire_atom) { fire(self); },
      [self](cluster::scan_atom, uint16_t shard) {
        // A shard just arrived by handoff: its orders with work due need waking here now.
        auto& ws = self->state;
        std::vector<persistence::wakeup_entry> found;
        ws.ctx->storage().scan_wakeups([&](const persistence::wakeup_entry& w) {
          if (w.key.shard == shard)
            found.push_back(w);
        });
        if (found.empty())
          return;
        auto fired = std::min(ws.next, ws.due.size());
        ws.due.erase(ws.due.begin(), ws.due.begin() + static_cast<std::ptrdiff_t>(fired));
        ws.next = 0;
        ws.due.insert(ws.due.end(), found.begin(), found.end());
        std::stable_sort(ws.due.begin(), ws.due.end(),
                         [](const auto& a, const auto& b) { return a.due_ms < b.due_ms; });
        fire(self);
      },
  };
}

}  // namespace

caf::actor spawn_wakeup_scheduler(caf::actor_system& sys, const context_ptr& ctx) {
  return sys.spawn(wakeup_scheduler, ctx);
}

}  // namespace ordermesh::actors
