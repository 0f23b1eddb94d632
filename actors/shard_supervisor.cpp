// One supervisor per shard: activates entities on their first message, routes every message for
// an entity to its one incarnation, passivates idle ones, and restarts crashed ones in isolation.
//
// One writer per entity: a new incarnation is spawned only after the old one has exited and
// every write it submitted has been confirmed (a storage barrier: an empty write queued behind
// them). Messages that arrive meanwhile wait here, with a bound.
//
// Damaged data (issue 13): an entity whose stored events or snapshot fail their checksum (or do
// not decode) tells its supervisor at activation; the slot then stays `corrupted` for the rest
// of the node's run and every request for it is answered `corrupted` here, without a restart
// (it would read the same damage again). Every other entity of the shard is untouched.
#include "actors/shard_supervisor.hpp"

#include <algorithm>
#include <chrono>
#include <deque>
#include <list>
#include <string>
#include <unordered_map>

#include <spdlog/logger.h>
#include <caf/all.hpp>

#include "actors/entity_actors.hpp"
#include "actors/entity_metrics.hpp"
#include "actors/errors.hpp"
#include "persistence/storage_engine.hpp"

namespace ordermesh::actors {

namespace {

using clock_type = std::chrono::steady_clock;

enum class mode { running, stopping, restarting, quarantined, corrupted };

struct slot {
  entity_ref who;
  caf::actor actor;  // the running incarnation; null unless mode is running or stopping
  mode m = mode::running;
  clock_type::time_point last_routed;  // when a message for it last came through here
  // Lists, not deques: libstdc++'s std::deque allocates 576 bytes even when empty, and a slot
  // exists for every active entity, where both are almost always empty.
  std::list<std::pair<caf::message, caf::response_promise>> buffered;
  std::list<clock_type::time_point> crashes;  // within the restart window
  clock_type::time_point quarantined_until;
  std::string quarantine_reason;
};

struct supervisor_state {
  context_ptr ctx;
  uint16_t shard = 0;
  // Handoff: while frozen, every message waits here; the entities are evicted, and once they
  // are gone (and their writes confirmed) the freeze request is answered.
  bool frozen = false;
  caf::response_promise freeze_done;
  std::deque<std::pair<caf::message, caf::response_promise>> held;
  std::unordered_map<std::string, slot> slots;  // by slot_key
  std::unordered_map<caf::actor_addr, std::string> by_addr;
  static inline const char* name = "ordermesh.shard_supervisor";

  // Entities are not linked to their supervisor (see spawn_entity): when it ends, however it
  // ends (CAF destroys the state on exit), it ends them.
  ~supervisor_state() {
    for (auto& kv : slots)
      if (kv.second.actor)
        caf::anon_send_exit(kv.second.actor, caf::exit_reason::kill);
  }
};
using self_ptr = caf::stateful_actor<supervisor_state>*;

std::string slot_key(const entity_ref& e) {
  std::string k;
  k.reserve(e.id.size() + 1);
  k.push_back(static_cast<char>(e.kind));
  k += e.id;
  return k;
}

std::string describe(const entity_ref& e) {
  domain::entity_kind k = static_cast<domain::entity_kind>(e.kind);
  return std::string(domain::to_string(k)) + "/" + e.id;
}

/// Hands one message to the running incarnation. An injected crash (admin.crash) is special:
/// what comes after it must wait for the next incarnation instead of bouncing off the dying one,
/// so the slot goes to `restarting` (false: stop handing over).
bool hand_over(self_ptr self, slot& sl, caf::message msg, caf::response_promise rp) {
  if (msg.size() == 2 && msg.match_element<crash_atom>(1)) {
    if (!self->state.ctx->settings().fault_injection)
      return true;  // ignored: fault injection is off
    caf::anon_send(sl.actor, sl.who, crash_atom::value);
    sl.m = mode::restarting;
    return false;
  }
  rp.delegate(sl.actor, std::move(msg));
  return true;
}

void spawn_into(self_ptr self, const std::string& key, slot& sl) {
  sl.actor = spawn_entity(self, self->state.ctx, sl.who);
  sl.m = mode::running;
  self->state.by_addr[sl.actor.address()] = key;
  while (!sl.buffered.empty()) {
    auto [msg, rp] = std::move(sl.buffered.front());
    sl.buffered.pop_front();
    if (!hand_over(self, sl, std::move(msg), std::move(rp)))
      break;  // the rest waits for the incarnation after this crash
  }
}

/// Queues a message for an entity that is not running yet; refuses beyond the bound.
void buffer(self_ptr self, slot& sl, caf::message msg, caf::response_promise rp) {
  if (sl.buffered.size() >= self->state.ctx->settings().max_buffered) {
    rp.deliver(make_error(domain::errc::overloaded,
                          "too many requests waiting for " + describe(sl.who) + " to start"));
    return;
  }
  sl.buffered.emplace_back(std::move(msg), std::move(rp));
}

/// Starts a new incarnation once every write of the old one is confirmed.
void restart_after_barrier(self_ptr self, const std::string& key, slot& sl) {
  sl.m = mode::restarting;
  sl.actor = nullptr;
  persistence::write_request barrier;  // no events: committed only after every earlier write
  barrier.key.shard = self->state.shard;
  caf::actor me = caf::actor_cast<caf::actor>(self);
  bool queued = self->state.ctx->storage().submit(
      std::move(barrier),
      [me, key](const persistence::status&) { caf::anon_send(me, barrier_atom::value, key); });
  if (!queued)  // storage is failed or closing: nothing more can be written anyway
    self->send(self, barrier_atom::value, key);
}

/// Answers the freeze request once every entity has gone and its writes are confirmed.
void maybe_frozen(self_ptr self) {
  auto& s = self->state;
  if (!s.frozen || !s.freeze_done.pending() || !s.slots.empty())
    return;
  persistence::write_request barrier;
  barrier.key.shard = s.shard;
  caf::actor me = caf::actor_cast<caf::actor>(self);
  bool queued = s.ctx->storage().submit(std::move(barrier), [me](const persistence::status&) {
    caf::anon_send(me, barrier_atom::value, std::string{});
  });
  if (!queued)
    self->send(self, barrier_atom::value, std::string{});
}

void freeze(self_ptr self, caf::response_promise rp) {
  auto& s = self->state;
  s.frozen = true;
  s.freeze_done = std::move(rp);
  for (auto it = s.slots.begin(); it != s.slots.end();) {
    auto& sl = it->second;
    for (auto& b : sl.buffered)
      s.held.push_back(std::move(b));
    sl.buffered.clear();
    if (sl.actor && (sl.m == mode::running || sl.m == mode::stopping)) {
      self->send(sl.actor, evict_atom::value);
      sl.m = mode::stopping;
      ++it;
    } else {
      it = s.slots.erase(it);  // restarting or quarantined: nothing running
    }
  }
  maybe_frozen(self);
}

/// The shard was handed off (or the handoff failed): route everything that waited again.
void thaw(self_ptr self) {
  auto& s = self->state;
  if (!s.frozen)
    return;
  s.frozen = false;
  if (s.freeze_done.pending())
    s.freeze_done.deliver(false);
  auto held = std::move(s.held);
  s.held.clear();
  for (auto& [msg, rp] : held) {
    auto who = msg.get_as<entity_ref>(0);
    rp.delegate(s.ctx->route(who), std::move(msg));
  }
}

void on_down(self_ptr self, const caf::down_msg& dm) {
  auto& s = self->state;
  auto it = s.by_addr.find(dm.source);
  if (it == s.by_addr.end())
    return;
  auto key = std::move(it->second);
  s.by_addr.erase(it);
  auto si = s.slots.find(key);
  if (si == s.slots.end())
    return;
  auto& sl = si->second;
  sl.actor = nullptr;
  if (sl.m == mode::corrupted && !s.frozen)
    return;        // it left as agreed; the slot keeps answering for it
  if (s.frozen) {  // evicted for a handoff (or crashed meanwhile): nothing restarts here
    for (auto& b : sl.buffered)
      s.held.push_back(std::move(b));
    s.slots.erase(si);
    maybe_frozen(self);
    return;
  }
  if (!dm.reason && sl.m == mode::stopping) {  // passivated
    if (sl.buffered.empty())
      s.slots.erase(si);
    else
      spawn_into(self, key, sl);
    return;
  }
  // Crashed (or stopped itself after a failed write). One that stopped because its shard's
  // writes were paused (replication: too few in-sync replicas) restarts without counting as a
  // crash: a client retrying through a failover must not get it quarantined.
  auto now = clock_type::now();
  auto& cfg = s.ctx->settings();
  s.ctx->entity_restarts.fetch_add(1, std::memory_order_relaxed);
  bool paused = dm.reason.category() == error_category() &&
                dm.reason.code() == static_cast<uint8_t>(domain::errc::unavailable);
  if (!paused)
    sl.crashes.push_back(now);
  while (!sl.crashes.empty() && now - sl.crashes.front() > cfg.restart_window)
    sl.crashes.pop_front();
  if (sl.crashes.size() > cfg.restart_limit) {
    quarantines_counter().inc();
    sl.m = mode::quarantined;
    sl.quarantined_until = now + cfg.quarantine_for;
    sl.quarantine_reason = "quarantined: " + describe(sl.who) + " crashed " +
                           std::to_string(sl.crashes.size()) + " times within " +
                           std::to_string(cfg.restart_window.count()) + " ms; retry later";
    s.ctx->log().error("node={} entity={} {}", s.ctx->node_id(), describe(sl.who),
                       sl.quarantine_reason);
    auto buffered = std::move(sl.buffered);
    sl.buffered.clear();
    for (auto& b : buffered)
      b.second.deliver(make_error(domain::errc::unavailable, sl.quarantine_reason));
    // Come back by itself afterwards: an order may have a saga to finish.
    self->delayed_send(self, cfg.quarantine_for, barrier_atom::value, key);
    return;
  }
  s.ctx->log().warn("node={} entity={} crashed ({}), restarting", s.ctx->node_id(),
                    describe(sl.who), caf::to_string(dm.reason));
  restart_after_barrier(self, key, sl);
}

// Sweeps often (an eighth of the shortest idle time), so that each passivates few entities at
// once: rare, large sweeps made latency spikes of up to 0.8 s under load.
std::chrono::milliseconds sweep_period(const entity_settings& cfg) {
  auto shortest = std::min(cfg.passivate_after, cfg.passivate_settled_after);
  return std::max(shortest / 8, std::chrono::milliseconds(10));
}

/// Asks every running entity that nothing was routed to for its idle time whether it wants to
/// passivate (it decides: only when nothing is in flight and its kind allows it). Orders are
/// asked sooner: a settled one leaves after --passivate-settled-after.
void sweep_idle(self_ptr self) {
  auto& s = self->state;
  const auto& cfg = s.ctx->settings();
  auto now = clock_type::now();
  auto order_after = std::min(cfg.passivate_after, cfg.passivate_settled_after);
  if (!s.frozen) {
    for (auto& kv : s.slots) {
      auto& sl = kv.second;
      if (sl.m != mode::running || !sl.actor)
        continue;
      bool order = sl.who.kind == static_cast<uint8_t>(domain::entity_kind::order);
      if (now - sl.last_routed >= (order ? order_after : cfg.passivate_after))
        self->send(sl.actor, idle_atom::value);
    }
  }
  self->delayed_send(self, sweep_period(cfg), idle_atom::value);
}

/// The entity at `key` found its stored data damaged: quarantine it for good (see the header).
void mark_corrupted(self_ptr self, const entity_ref& who, const std::string& why) {
  auto& s = self->state;
  auto it = s.slots.find(slot_key(who));
  if (it == s.slots.end() || it->second.m == mode::corrupted || !it->second.actor ||
      it->second.actor.address() != caf::actor_cast<caf::actor_addr>(self->current_sender()))
    return;
  auto& sl = it->second;
  corrupted_counter().inc();
  sl.m = mode::corrupted;
  sl.quarantine_reason = describe(sl.who) + " is quarantined on node " + s.ctx->node_id() +
                         ": its stored data is damaged (" + why +
                         "); restore it from a replica or a backup (docs/OPERATIONS.md)";
  s.ctx->log().error("node={} entity={} shard={} {}", s.ctx->node_id(), describe(sl.who), s.shard,
                     sl.quarantine_reason);
  auto buffered = std::move(sl.buffered);
  sl.buffered.clear();
  for (auto& b : buffered)
    b.second.deliver(make_error(domain::errc::corrupted, sl.quarantine_reason));
  // It answers what it was handed before leaving (its mailbox is in order).
  self->send(sl.actor, passivate_atom::value);
}

/// Any message addressed to an entity (first element an entity_ref): route it.
caf::result<caf::message> route(self_ptr self, caf::message_view& xs) {
  auto& content = xs.content();
  if (content.size() == 0 || !content.match_element<entity_ref>(0))
    return caf::sec::unexpected_message;
  auto who = content.get_as<entity_ref>(0);
  auto key = slot_key(who);
  auto& s = self->state;
  // Every node a request reaches routes it here, so this line puts its id in each node's log.
  if (!who.req.empty() && s.ctx->log().should_log(spdlog::level::debug))
    s.ctx->log().debug("node={} entity={} req={} shard={} message for the entity", s.ctx->node_id(),
                       describe(who), who.req, s.shard);
  auto rp = self->make_response_promise();
  if (s.frozen) {
    if (s.held.size() >= s.ctx->settings().max_buffered * 4) {
      rp.deliver(make_error(domain::errc::overloaded, "shard is moving; too many waiting"));
      return rp;
    }
    s.held.emplace_back(xs.move_content_to_message(), rp);
    return rp;
  }
  if (!s.ctx->lease_valid()) {
    // Every request for this shard passes here, also those other nodes forward: the lease
    // gate must be here, not only in this node's routing.
    rp.deliver(make_error(domain::errc::unavailable,
                          "node " + s.ctx->node_id() +
                              " cannot renew its cluster membership right now (cut off from "
                              "etcd?), so it does not serve its shards; retry"));
    return rp;
  }
  if (s.slots.count(key) == 0 && s.ctx->storage().owned_epoch(s.shard) == 0) {
    rp.deliver(make_error(domain::errc::unavailable,
                          "shard " + std::to_string(s.shard) + " is not served by node " +
                              s.ctx->node_id() + " (it moved or is moving); retry"));
    return rp;
  }
  auto [it, fresh] = s.slots.try_emplace(key);
  auto& sl = it->second;
  sl.last_routed = clock_type::now();
  if (fresh) {
    sl.who = who;
    spawn_into(self, key, sl);
  }
  switch (sl.m) {
    case mode::running:
      hand_over(self, sl, xs.move_content_to_message(), rp);
      return rp;
    case mode::quarantined:
      if (clock_type::now() < sl.quarantined_until) {
        rp.deliver(make_error(domain::errc::unavailable, sl.quarantine_reason));
        return rp;
      }
      sl.crashes.clear();
      spawn_into(self, key, sl);
      if (sl.m == mode::running)
        hand_over(self, sl, xs.move_content_to_message(), rp);
      else
        buffer(self, sl, xs.move_content_to_message(), rp);
      return rp;
    case mode::corrupted:
      rp.deliver(make_error(domain::errc::corrupted, sl.quarantine_reason));
      return rp;
    case mode::stopping:
    case mode::restarting:
      buffer(self, sl, xs.move_content_to_message(), rp);
      return rp;
  }
  return rp;
}

caf::behavior shard_supervisor(self_ptr self, context_ptr ctx, uint16_t shard) {
  self->state.ctx = std::move(ctx);
  self->state.shard = shard;
  self->set_down_handler([self](caf::down_msg& dm) { on_down(self, dm); });
  // Exits of entities arrive as down messages (above); shutdown sends exit_reason::kill, which
  // no handler traps, and the state's destructor then ends the entities.
  self->set_exit_handler([](caf::exit_msg&) {});
  self->set_default_handler(
      [self](caf::scheduled_actor*, caf::message_view& xs) { return route(self, xs); });
  // The shards' first sweeps are spread over one period, so that they never all sweep at once.
  auto period = sweep_period(self->state.ctx->settings());
  self->delayed_send(self, period * (shard + 1) / self->state.ctx->shard_count(), idle_atom::value);
  return {
      [self](idle_atom) { sweep_idle(self); },
      [self](passivate_atom, const entity_ref& who) {
        auto& s = self->state;
        auto it = s.slots.find(slot_key(who));
        if (it == s.slots.end() || it->second.m != mode::running ||
            it->second.actor.address() != caf::actor_cast<caf::actor_addr>(self->current_sender()))
          return;
        // From now on new messages for it wait here until it has gone.
        it->second.m = mode::stopping;
        self->send(it->second.actor, passivate_atom::value);
      },
      [self](barrier_atom, const std::string& key) {
        auto& s = self->state;
        if (key.empty()) {  // the freeze barrier
          if (s.frozen && s.slots.empty() && s.freeze_done.pending())
            s.freeze_done.deliver(true);
          return;
        }
        if (s.frozen)
          return;
        auto it = s.slots.find(key);
        if (it == s.slots.end())
          return;
        auto& sl = it->second;
        if (sl.m == mode::restarting ||
            (sl.m == mode::quarantined && clock_type::now() >= sl.quarantined_until)) {
          if (sl.m == mode::quarantined)
            sl.crashes.clear();
          spawn_into(self, key, sl);
        }
      },
      [self](corrupted_atom, const entity_ref& who, const std::string& why) {
        mark_corrupted(self, who, why);
      },
      [self](stats_atom) { return static_cast<uint64_t>(self->state.slots.size()); },
      [self](cluster::freeze_atom) -> caf::result<bool> {
        auto rp = self->make_response_promise();
        freeze(self, rp);
        return rp;
      },
      [self](cluster::thaw_atom) { thaw(self); },
  };
}

}  // namespace

caf::actor spawn_shard_supervisor(caf::actor_system& sys, const context_ptr& ctx, uint16_t shard) {
  return sys.spawn(shard_supervisor, ctx, shard);
}

}  // namespace ordermesh::actors
