// The member agent's actor: its messages, its membership (the cluster id its disk remembers, a
// leave) and what cluster.status shows. Everything else is one role per file (agent_state.hpp).
#include "cluster/member_agent.hpp"

#include <algorithm>

#include <spdlog/logger.h>
#include <caf/all.hpp>

#include "cluster/agent/agent_state.hpp"
#include "cluster/agent/shard_metrics.hpp"
#include "cluster/coordination/local_seed.hpp"
#include "cluster/replica_sink.hpp"
#include "cluster/replication/failover.hpp"
#include "persistence/storage_engine.hpp"

namespace ordermesh::cluster {

namespace agent {
namespace {

/// A disk with no cluster id that the store already names as a shard's primary: it was wiped
/// (or the node id is a dead member's). It holds none of those shards' data, so owning them
/// would serve empty entities in place of acknowledged ones: they are refused (unavailable,
/// never written) until an operator settles them. Returns how many were refused.
size_t refuse_lost_shards(self_ptr self) {
  auto& s = self->state;
  std::vector<uint16_t> lost;
  for (const auto& a : s.state->shards)
    if (a.primary == me(self) && s.storage->owned_epoch(a.shard) == 0 &&
        !s.refused_shards.count(a.shard))
      lost.push_back(a.shard);
  if (lost.empty())
    return 0;
  for (auto shard : lost)
    s.refused_shards.insert(shard);
  s.log->critical(
      "node={} the store says this node leads {} shard(s) (first: {}) since before it joined, "
      "but this data dir has never been part of the cluster (wiped, or another node's id): "
      "not serving them; their acknowledged data is not here",
      me(self), lost.size(), lost.front());
  publish_routes(self);
  return lost.size();
}

/// The store's cluster is the one this disk belongs to; a disk never used remembers it.
/// Nothing is reconciled before this passed once (disk_checked).
bool check_cluster_id(self_ptr self) {
  auto& s = self->state;
  if (!s.state->config)
    return true;
  std::string mine;
  if (!s.storage->get_meta(co::cluster_id_meta, &mine)) {
    if (s.store_kind != "local") {
      if (s.incarnation == 0)
        return true;  // wait for the lease: the check needs this life's incarnation
      // A cluster bootstrapped before this node joined, that already counts on this node for
      // a shard: this disk lost it. The id stays unrecorded, so every restart checks again.
      if (s.state->config_revision < s.incarnation && refuse_lost_shards(self) > 0) {
        s.disk_checked = true;
        return true;
      }
    }
    auto st = s.storage->put_meta(co::cluster_id_meta, s.state->config->cluster_id);
    if (!st) {
      s.log->error("node={} cannot record the cluster id: {}", me(self), st.to_string());
      return true;  // try again with the next state
    }
    s.disk_checked = true;
    return true;
  }
  if (mine == s.state->config->cluster_id) {
    s.disk_checked = true;
    return true;
  }
  if (mine == s.state->config->cluster_id)
    return true;
  std::string kind;
  bool lone =
      s.store_kind != "local" && s.storage->get_meta(co::store_kind_meta, &kind) && kind == "local";
  auto why = lone ? "this data dir is a node alone's (cluster " + mine +
                        ", started without --etcd): it cannot join the cluster in " + s.store_kind
                  : "this data dir belongs to cluster " + mine + ", the store holds cluster " +
                        s.state->config->cluster_id + " (a wiped or different store?)";
  s.log->critical("node={} {}", me(self), why);
  s.refused = true;
  if (s.hooks.on_refused)
    s.hooks.on_refused(why);
  return false;
}

/// A draining member (drain_atom) that leads nothing any more says so, once.
void maybe_drained(self_ptr self) {
  auto& s = self->state;
  if (!s.draining || s.drained_said || !s.state)
    return;
  for (const auto& a : s.state->shards)
    if (a.primary == me(self))
      return;
  s.drained_said = true;
  s.log->info("node={} leads no shard any more (drained)", me(self));
  if (s.hooks.on_drained)
    s.hooks.on_drained();
}

/// A leaving member that leads nothing and receives nothing is done.
void maybe_left(self_ptr self) {
  auto& s = self->state;
  if (!s.leaving || s.leave_sent || !s.state || !s.state->config)
    return;
  // In a replicated cluster it stays until no shard names it as a replica any more (its replicas
  // moved to the others: controller_duties' move_replicas).
  for (const auto& a : s.state->shards)
    if (a.primary == me(self) || a.target == me(self) ||
        std::find(a.replicas.begin(), a.replicas.end(), me(self)) != a.replicas.end())
      return;
  if (!s.outgoing.empty())
    return;
  s.leave_sent = true;
  self->request(s.driver, s.cfg.request_timeout, coord_leave_atom::value)
      .then(
          [self](bool) {
            self->state.log->info("node={} left the cluster", me(self));
            if (self->state.hooks.on_left)
              self->state.hooks.on_left();
          },
          [self](caf::error& err) {
            self->state.leave_sent = false;
            self->state.log->warn("node={} leave: {}", me(self), caf::to_string(err));
          });
}

void on_state(self_ptr self, state_ptr st) {
  auto& s = self->state;
  if (s.state && st->revision < s.state->revision)
    return;  // an older read overtaken by a newer one
  s.state = std::move(st);
  if (!check_cluster_id(self))
    return;
  connect_members(self);
  refresh_cut_off(self);
  // Before any step: a shard this node is about to own must be known replicated to the sink.
  publish_replication(self);
  reconcile(self);
  publish_routes(self);
  publish_shard_metrics(*s.state, me(self), s.cfg.min_insync);
  controller_round(self);
  maybe_left(self);
  maybe_drained(self);
}

void tick(self_ptr self) {
  auto& s = self->state;
  if (s.state && !s.disk_checked && !s.refused && !check_cluster_id(self))
    return;
  connect_members(self);
  refresh_cut_off(self);
  reconcile(self);
  controller_round(self);
  maybe_left(self);
  self->delayed_send(self, tick_interval, tick_atom::value);
}

/// Between rounds, every watch_interval: pings and what suspicion triggers (a failover, the
/// deposing of the controller, being cut off). With them only on the 500 ms round, a paused or
/// cut-off member was noticed at suspect_after plus up to two rounds (the first unanswered ping
/// goes out on a round, the suspicion is acted on at a later one): 1.0-2.0 s instead of
/// 1.0-1.2 s. The round is safe at any rate: it already runs on every state etcd sends, and
/// each write it asks for is asked once per state of its key.
void watch(self_ptr self) {
  auto& s = self->state;
  if (s.refused)
    return;
  if (s.state && s.state->config && s.state->config->replication_factor > 1) {
    refresh_cut_off(self);
    controller_round(self);
  }
  self->delayed_send(self, watch_interval, watch_atom::value);
}

using force_result = caf::result<bool, uint64_t, std::string>;

force_result refused_force(std::string why) {
  return force_result(false, uint64_t{0}, std::move(why));
}

/// The operator's unclean promotion: checked by replication::force_primary (a member, a shard
/// that exists), written by one guarded txn. Refused while the shard's primary is alive at the
/// incarnation its ISR entry names: a healthy shard never needs it.
force_result force_primary(self_ptr self, uint16_t shard, const std::string& node) {
  auto& s = self->state;
  if (!s.state || !s.state->config || shard >= s.state->shards.size())
    return refused_force("no shard map yet, or no shard " + std::to_string(shard));
  auto check = replication::choose_failover(*s.state, shard);
  if (check.outcome == replication::failover_outcome::none ||
      check.outcome == replication::failover_outcome::promote)
    return refused_force("shard " + std::to_string(shard) +
                         " has a live primary or an in-sync replica to fail over to; "
                         "force-primary is only for a shard that is unavailable for good");
  auto d = replication::force_primary(*s.state, shard, node);
  if (d.outcome != replication::failover_outcome::promote)
    return refused_force(d.reason);
  s.log->critical(
      "node={} shard {}: the operator forces {} as primary at epoch {} (acknowledged writes "
      "not on it are lost)",
      me(self), shard, node, d.next.epoch);
  auto rp = self->make_response_promise<bool, uint64_t, std::string>();
  auto epoch = d.next.epoch;
  self->request(s.driver, s.cfg.request_timeout, coord_write_atom::value, d.next,
                s.state->shards[shard].mod_revision)
      .then(
          [rp, epoch, shard](bool written) mutable {
            if (written) {
              failovers_counter("forced").inc();
              rp.deliver(true, epoch, std::string{});
            } else {
              rp.deliver(false, uint64_t{0},
                         "shard " + std::to_string(shard) +
                             " changed meanwhile; read cluster.status and ask again");
            }
          },
          [rp](caf::error& err) mutable {
            rp.deliver(false, uint64_t{0}, "the store did not take it: " + caf::to_string(err));
          });
  return rp;
}

member_status status_of(self_ptr self) {
  auto& s = self->state;
  member_status r;
  r.coordination = s.store_kind;
  if (s.state && s.state->config)
    r.cluster_id = s.state->config->cluster_id;
  r.incarnation = s.incarnation;
  r.lease_valid = lease_ok(self);
  r.cut_off = s.cut_off;
  if (s.state) {
    if (s.state->controller)
      r.controller = s.state->controller->node_id;
    r.members = s.state->members;
    r.shards = s.state->shards;
    r.absent = s.state->absent;
    r.removed = s.state->removed;
    for (const auto& m : s.state->members) {
      auto p = s.peers.find(m.node_id);
      if (m.node_id != me(self) && (p == s.peers.end() || !p->second.agent))
        r.unreachable.push_back(m.node_id);
    }
  }
  if (s.repl) {
    std::lock_guard<std::mutex> lock(s.repl->lag_mu);
    r.follower_lag = s.repl->lag;
  }
  return r;
}

caf::behavior member_agent(self_ptr self, member_agent_config cfg,
                           persistence::storage_engine* storage, agent_hooks hooks,
                           std::unique_ptr<co::session>* session,
                           std::shared_ptr<spdlog::logger> log,
                           std::shared_ptr<replica_sink> sink) {
  auto& s = self->state;
  s.cfg = std::move(cfg);
  s.storage = storage;
  s.hooks = std::move(hooks);
  s.log = std::move(log);
  s.local.resize(s.cfg.shard_count);
  s.busy.assign(s.cfg.shard_count, false);
  s.last_step.assign(s.cfg.shard_count, co::step::serve);
  s.store_kind = std::string((*session)->kind());
  s.prover = s.hooks.prover ? s.hooks.prover : identity::make_insecure_prover();
  driver_config dcfg;
  dcfg.me = co::member_info{s.cfg.node_id, s.cfg.cluster_address, s.cfg.client_address, false,
                            s.cfg.disk};
  dcfg.lease_ttl = s.cfg.lease_ttl;
  s.driver = spawn_coordination_driver(self->system(), std::move(*session), dcfg,
                                       caf::actor_cast<caf::actor>(self), s.log);
  delete session;
  self->link_to(s.driver);
  if (sink) {
    auto ctx = std::make_shared<replication_context>();
    ctx->node_id = s.cfg.node_id;
    ctx->storage = storage;
    ctx->log = s.log;
    ctx->sink = sink;
    ctx->driver = s.driver;
    ctx->request_timeout = s.cfg.request_timeout;
    ctx->lag_timeout = s.cfg.replica_lag_timeout;
    ctx->commit_timeout = s.cfg.commit_timeout;
    ctx->rings.assign(s.cfg.shard_count, replication::delta_ring(4096, 4u << 20));
    ctx->proven = s.proven;
    s.repl = ctx;
    collect_replication_lag(ctx);
    s.replica_leader = spawn_replica_leader(self->system(), ctx);
    s.replica_follower = spawn_replica_follower(self->system(), ctx);
    self->link_to(s.replica_leader);
    s.replica_forgetter = spawn_replica_forgetter(self->system(), ctx);
    self->link_to(s.replica_follower);
    self->link_to(s.replica_forgetter);
    sink->attach(s.replica_leader);
  }
  self->set_down_handler([self](caf::down_msg& dm) { peer_down(self, dm.source); });
  self->send(self, tick_atom::value);
  if (s.cfg.suspect_after.count() > 0)
    self->delayed_send(self, watch_interval, watch_atom::value);
  // Messages only this node's own actors send (its driver, its writer's completions, its
  // gateway and main) are refused from anywhere else: CAF lets any connected node address an
  // actor whose handle it has seen, and the agent's is every peer's.
  auto local = [self] {
    std::string ignored;
    return sender_of(self, &ignored) == sender_kind::this_node;
  };
  return {
      [self](coord_state_atom, state_ptr& st) { on_state(self, std::move(st)); },
      [self, local](coord_lease_atom, int64_t until_ns, int64_t incarnation) {
        if (!local())
          return;
        auto& st = self->state;
        st.lease_until = clock_type::time_point(std::chrono::nanoseconds(until_ns));
        if (st.hooks.set_lease_until)
          st.hooks.set_lease_until(until_ns);
        bool changed = incarnation != st.incarnation;
        if (changed) {
          st.intents.clear();
          st.failovers.clear();
        }
        st.incarnation = incarnation;
        publish_routes(self);
        if (changed)
          publish_replication(self);
      },
      [self, local](tick_atom) {
        if (local())
          tick(self);
      },
      [self, local](watch_atom) {
        if (local())
          watch(self);
      },
      [self, local](probe_again_atom, const std::string& node_id, int tries_left) {
        if (local())
          probe_lost_peer(self, node_id, tries_left);
      },
      [self](hello_atom, const std::string& from, const std::string& challenge) {
        return answer_hello(self, from, challenge);
      },
      [self](hello_proof_atom, const std::string& from, const identity::identity_proof& proof,
             peer_info& info) { return answer_proof(self, from, proof, info); },
      [self](ping_atom) -> caf::result<bool> {
        std::string peer_id;
        if (sender_of(self, &peer_id) == sender_kind::unknown)
          return caf::make_error(caf::sec::invalid_argument, "not a proven member");
        return true;
      },
      [self](copy_atom, uint16_t shard, int64_t revision, bool first,
             std::vector<shard_record>& records, bool done) -> caf::result<bool> {
        // Only the shard's primary sends its copy: the proven id of the sending node must be it.
        std::string peer_id;
        auto kind = sender_of(self, &peer_id);
        auto& st = self->state;
        bool primary = kind == sender_kind::proven && st.state && shard < st.state->shards.size() &&
                       st.state->shards[shard].primary == peer_id;
        if (!primary) {
          uint64_t suppressed = 0;  // rate-limited like a refused proof (a key no id can take)
          if (st.refusal_log.allow("\ncopy", clock_type::now(), &suppressed))
            st.log->warn("node={} refused a copy of shard {} from {}: not its proven primary",
                         me(self), shard,
                         kind == sender_kind::proven ? peer_id : "an unproven node");
          return false;
        }
        return receive_copy(self, shard, revision, first, records, done);
      },
      [self, local](next_chunk_atom, uint16_t shard, const std::string& after_key) {
        if (local())
          send_chunk(self, shard, after_key);
      },
      [self, local](imported_atom, uint64_t id, bool ok) {
        if (local())
          imported(self, id, ok);
      },
      [self](leave_atom, const std::string& node_id) -> caf::result<bool> {
        auto& st = self->state;
        // This node's gateway or main asks; a peer may pass on its operator's request for this
        // node only (the gateway there delegates it here), and only once its id is proven.
        std::string peer_id;
        auto kind = sender_of(self, &peer_id);
        if (kind == sender_kind::unknown || (kind == sender_kind::proven && node_id != me(self)))
          return caf::make_error(caf::sec::invalid_argument,
                                 "leave is asked by this node's operator or a proven member");
        if (node_id != me(self)) {
          auto p = st.peers.find(node_id);
          if (p == st.peers.end() || !p->second.agent)
            return caf::make_error(caf::sec::request_receiver_down,
                                   "no connection to " + node_id + "; ask it directly");
          auto rp = self->make_response_promise();
          rp.delegate(p->second.agent, leave_atom::value, node_id);
          return rp;
        }
        if (st.state && st.state->config && st.state->config->replication_factor > 1) {
          // Its replicas move to the others: there must be enough others to hold them.
          size_t staying = 0;
          for (const auto& m : st.state->members)
            if (m.node_id != me(self) && !m.leaving)
              ++staying;
          if (staying < st.state->config->replication_factor)
            return caf::make_error(
                caf::sec::feature_disabled,
                "leaving would leave " + std::to_string(staying) +
                    " members for replication factor " +
                    std::to_string(st.state->config->replication_factor) +
                    ": start another node first (its replicas move there), or stop this one "
                    "(its shards fail over to their in-sync replicas)");
        }
        st.leaving = true;
        auto rp = self->make_response_promise();
        self->request(st.driver, st.cfg.request_timeout, coord_update_atom::value, true)
            .then(
                [self, rp](bool) mutable {
                  self->state.log->info("node={} is leaving", me(self));
                  rp.deliver(true);
                },
                [rp](caf::error& err) mutable { rp.deliver(std::move(err)); });
        return rp;
      },
      [self, local](drain_atom) -> caf::result<bool> {
        if (!local())
          return caf::make_error(caf::sec::invalid_argument, "asked by this node only");
        auto& st = self->state;
        if (!st.state || !st.state->config || st.state->config->replication_factor <= 1)
          return false;  // not replicated: the caller hands its shards off by leave_atom
        st.draining = true;
        auto rp = self->make_response_promise();
        self->request(st.driver, st.cfg.request_timeout, coord_drain_atom::value)
            .then(
                [self, rp](bool) mutable {
                  self->state.log->info(
                      "node={} is draining: its shards' leadership moves to in-sync replicas",
                      me(self));
                  rp.deliver(true);
                  maybe_drained(self);
                },
                [rp](caf::error& err) mutable { rp.deliver(std::move(err)); });
        return rp;
      },
      [self, local](member_status_atom) -> caf::result<member_status> {
        if (!local())
          return caf::make_error(caf::sec::invalid_argument, "asked by this node only");
        return status_of(self);
      },
      [self, local](force_primary_atom, uint16_t shard, const std::string& node) {
        if (!local())
          return refused_force("asked by this node's gateway only");
        return force_primary(self, shard, node);
      },
      [self](remove_member_atom, const std::string& node) { return remove_member(self, node); },
  };
}

}  // namespace
}  // namespace agent

caf::actor spawn_member_agent(caf::actor_system& sys, member_agent_config cfg,
                              persistence::storage_engine& storage, agent_hooks hooks,
                              std::unique_ptr<coordination::session> session,
                              std::shared_ptr<spdlog::logger> log,
                              std::shared_ptr<replica_sink> sink) {
  // CAF copies spawn arguments: the session travels as a raw pointer the agent takes over.
  auto* owned = new std::unique_ptr<coordination::session>(std::move(session));
  return sys.spawn<caf::detached>(agent::member_agent, std::move(cfg), &storage, std::move(hooks),
                                  owned, std::move(log), std::move(sink));
}

}  // namespace ordermesh::cluster
