// The controller's work, on the one member the store elected: create the shard map once, then
// write move intents from the placement (cluster/coordination/placement.hpp). Without a
// controller, every member campaigns now and then.
#include <algorithm>
#include <chrono>
#include <optional>
#include <set>

#include <spdlog/logger.h>
#include <caf/all.hpp>

#include "cluster/agent/agent_state.hpp"
#include "cluster/agent/shard_metrics.hpp"
#include "cluster/coordination/bootstrap_rule.hpp"
#include "cluster/coordination/local_seed.hpp"
#include "cluster/coordination/placement.hpp"
#include "cluster/replication/failover.hpp"
#include "cluster/replication/leadership_rebalance.hpp"
#include "cluster/replication/member_removal.hpp"
#include "cluster/replication/replica_moves.hpp"

namespace ordermesh::cluster::agent {

namespace {

/// What the controller asked, per shard, and from which state of its key (its mod revision).
using asked_map = std::map<uint16_t, int64_t> agent_state::*;

/// Whether `shard` was asked already (in `asked`) from the key's state at `revision`.
bool asked_from(self_ptr self, asked_map asked, uint16_t shard, int64_t revision) {
  const auto& m = self->state.*asked;
  auto it = m.find(shard);
  return it != m.end() && it->second == revision;
}

/// Writes `next` guarded by `revision` and remembers (in `asked`) that it was asked from that
/// state, so the next rounds do not ask again from the same one. A write that fails, or whose
/// outcome is unknown, is forgotten: the next round decides again (the decisions are
/// deterministic, so a shard skipped for good would stall every step after it).
void write_guarded(self_ptr self, asked_map asked, uint16_t shard, const co::shard_assignment& next,
                   int64_t revision, om::obs::counter& written) {
  auto& s = self->state;
  (s.*asked)[shard] = revision;
  self->request(s.driver, s.cfg.request_timeout, coord_write_atom::value, next, revision)
      .then(
          [&written](bool ok) {
            if (ok)
              written.inc();  // a metric: counted once the store took it
          },
          [self, asked, shard, revision](caf::error&) {
            auto& m = self->state.*asked;
            auto it = m.find(shard);
            if (it != m.end() && it->second == revision)
              m.erase(it);
          });
}

/// Members suspected of being down (co::is_suspected: silent or disconnected for
/// suspect_after, or their reconnect was refused at once): the controller treats them as failed
/// for failover. Safe whatever the truth (a live primary that is replaced cannot
/// commit a write or answer a read without its successor: docs/REPLICATION.md, "Failover");
/// it only trades a needless failover for not waiting out the lease of a dead one.
std::set<std::string> suspects(self_ptr self) {
  auto& s = self->state;
  std::set<std::string> out;
  if (s.cfg.suspect_after.count() <= 0)
    return out;
  auto now = clock_type::now();
  size_t connected = 0;
  for (const auto& m : s.state->members) {
    auto p = s.peers.find(m.node_id);
    if (m.node_id == me(self) || p == s.peers.end())
      continue;
    const auto& peer = p->second;
    if (co::is_suspected(signals_of(peer), now, s.cfg.suspect_after))
      out.insert(m.node_id);  // silent, refused, or its connection stays down
    else if (peer.agent &&
             (!peer.silent_since || now - *peer.silent_since < s.cfg.suspect_after / 2))
      ++connected;  // and heard from lately: one going silent too does not count as reached
  }
  // Only a controller that still reaches a majority of the members (itself included) acts on
  // its suspicions: one cut off from the others would otherwise take every shard for itself.
  // Reached means answering now: a controller cut off sees its peers fall silent a few hundred
  // ms apart, and counting the one not suspected yet moved the other's shards away from it.
  // (Unanswered for half the suspicion delay is far beyond a healthy ping's milliseconds.)
  bool held = !out.empty() && (connected + 1) * 2 <= s.state->members.size();
  if (held != s.suspicions_held) {
    s.suspicions_held = held;
    if (held)
      s.log->warn(
          "node={} suspects {} but reaches only {} of {} members: not acting on it until it "
          "reaches a majority",
          me(self), fmt::join(out, ","), connected + 1, s.state->members.size());
    else
      s.log->info("node={} reaches a majority of the members again", me(self));
  }
  if (held)
    out.clear();
  return out;
}

/// Pings every connected member (one ping in flight each): a paused or cut-off member keeps
/// its connection, so only its silence shows (peer::heard_at).
void ping_members(self_ptr self) {
  auto& s = self->state;
  for (auto& [id, p] : s.peers) {
    if (!p.agent || p.ping_in_flight)
      continue;
    p.ping_in_flight = true;
    if (!p.silent_since)
      p.silent_since = clock_type::now();  // until it answers
    auto agent = p.agent;
    self->request(agent, s.cfg.suspect_after, ping_atom::value)
        .then(
            [self, id = id, agent](bool) {
              auto& peer = self->state.peers[id];
              peer.ping_in_flight = false;
              if (peer.agent == agent)
                peer.silent_since.reset();
            },
            [self, id = id](caf::error&) { self->state.peers[id].ping_in_flight = false; });
  }
}

/// What a member that is not the controller does each round in a replicated cluster: it pings
/// the others as the controller does (so it knows who is silent the moment it becomes the
/// controller), and it deposes a controller it suspects (suspects(): silent or disconnected for
/// suspect_after while this member reaches a majority), so that a dead, paused or cut-off
/// controller is replaced in about suspect_after instead of its lease, and its shards fail over
/// at once under the next one. At most one depose per suspect_after.
void watch_controller(self_ptr self) {
  auto& s = self->state;
  const auto& st = *s.state;
  if (!st.config || st.config->replication_factor <= 1 || s.cfg.suspect_after.count() <= 0)
    return;
  ping_members(self);
  const auto& c = *st.controller;
  auto now = clock_type::now();
  if (s.deposing || now - s.last_depose < s.cfg.suspect_after || !suspects(self).count(c.node_id))
    return;
  s.deposing = true;
  s.last_depose = now;
  s.log->warn(
      "node={} the controller {} (incarnation {}) is suspected (its connection is down, or it "
      "does not answer); deposing it",
      me(self), c.node_id, c.incarnation);
  self->request(s.driver, s.cfg.request_timeout, coord_depose_atom::value, c.node_id, c.incarnation)
      .then([self](bool) { self->state.deposing = false; },
            [self](caf::error& err) {
              self->state.deposing = false;
              self->state.log->warn("node={} depose controller: {}", me(self), caf::to_string(err));
            });
}

/// Each shard whose primary is gone (its lease expired, it came back as a new life, or its
/// connection stays down: suspects) gets an in-sync replica as primary at epoch + 1
/// (replication::choose_failover), one txn per shard, guarded by the key's revision.
void fail_over(self_ptr self) {
  auto& s = self->state;
  auto suspected = suspects(self);
  std::optional<co::cluster_state> without;
  if (!suspected.empty()) {
    // The shard map as it would be if the suspects' leases had expired.
    without = *s.state;
    auto& ms = without->members;
    ms.erase(std::remove_if(ms.begin(), ms.end(),
                            [&](const co::member_record& m) {
                              return suspected.count(m.node_id) > 0 && m.node_id != me(self);
                            }),
             ms.end());
  }
  const auto& st = without ? *without : *s.state;
  for (uint16_t shard = 0; shard < st.shards.size(); ++shard) {
    const auto& a = st.shards[shard];
    auto d = replication::choose_failover(st, shard);
    if (d.outcome == replication::failover_outcome::unavailable) {
      if (s.failovers[shard] != -a.mod_revision)
        s.log->error(
            "node={} shard {}: primary {} is gone and no in-sync replica may take over "
            "({}); it stays unavailable",
            me(self), shard, a.primary, d.reason);
      s.failovers[shard] = -a.mod_revision;  // said once per state of the key
      continue;
    }
    if (d.outcome != replication::failover_outcome::promote)
      continue;
    if (asked_from(self, &agent_state::failovers, shard, a.mod_revision))
      continue;
    s.log->info("node={} shard {}: primary {} is {}; {} takes over at epoch {} (ISR {})", me(self),
                shard, a.primary,
                suspected.count(a.primary)
                    ? "suspected (its connection is down, or it does not answer)"
                    : "gone",
                d.next.primary, d.next.epoch, d.next.isr.size());
    write_guarded(self, &agent_state::failovers, shard, d.next, a.mod_revision,
                  failovers_counter("primary_lost"));
  }
}

/// Replica moves (a replicated cluster's join and leave, and the replacement of removed
/// nodes): replication::plan_replica_writes picks, for each shard, one step of
/// next_replica_step towards desired_replicas, at most max_concurrent_moves shards catching up
/// at once, nothing added or made primary that is suspected of being down; each is written as a
/// txn guarded by the key's revision. A shard whose failover (or step) was just asked from this
/// very state waits for the next round.
void move_replicas(self_ptr self) {
  auto& s = self->state;
  const auto& st = *s.state;
  auto want = replication::desired_replicas(st);
  auto asked = [self, &st](uint16_t shard) {
    auto rev = st.shards[shard].mod_revision;
    return asked_from(self, &agent_state::failovers, shard, rev) ||
           asked_from(self, &agent_state::replica_steps, shard, rev);
  };
  auto suspected = suspects(self);
  auto steps =
      replication::plan_replica_writes(st, want, suspected, s.cfg.max_concurrent_moves, asked);
  // Leadership moves only to balance it once the cluster has stayed settled a while
  // (leadership_rebalance.hpp).
  auto now = clock_type::now();
  if (!replication::is_settled(st, suspected))
    s.settled_since.reset();
  else if (!s.settled_since)
    s.settled_since = now;
  bool may_rebalance = s.settled_since && now - *s.settled_since >= leadership_rebalance_delay;
  for (const auto& step : steps) {
    const auto& a = st.shards[step.shard];
    if (!may_rebalance && replication::is_leadership_rebalance(step, a, want[step.shard]))
      continue;
    s.log->info("node={} shard {}: {} {} (replicas {} -> {})", me(self), step.shard,
                replication::to_string(step.what), step.node, fmt::join(a.replicas, ","),
                fmt::join(want[step.shard], ","));
    write_guarded(self, &agent_state::replica_steps, step.shard, step.next, a.mod_revision,
                  moves_counter(replication::to_string(step.what)));
  }
}

/// Nodes that shard keys name but that have no member key (replication/member_removal.hpp):
/// the controller starts their absence clock in the store (so that a new controller goes on
/// counting from the same moment), removes them once --dead-member-timeout has passed, and
/// deletes the records that are over. One write per record in flight at a time; a write that
/// loses a race (the node joined, another controller wrote first) changes nothing and the next
/// round decides again from what the store holds.
void record_departures(self_ptr self) {
  auto& s = self->state;
  const auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  for (const auto& step :
       replication::plan_departures(*s.state, now_ms, s.cfg.dead_member_timeout)) {
    const auto& node = step.record.node_id;
    auto key = std::string(co::to_string(step.kind)) + "/" + node;
    if (!s.departures_asked.insert(key).second)
      continue;  // asked already; its answer comes first
    using k = replication::departure_step_kind;
    if (step.what == k::remove)
      s.log->warn(
          "node={} {} has had no lease for --dead-member-timeout ({} s): removing it, its "
          "replicas are replaced on live members",
          me(self), node, s.cfg.dead_member_timeout.count() / 1000);
    else
      s.log->info("node={} {} {} record of {}", me(self), replication::to_string(step.what),
                  co::to_string(step.kind), node);
    auto done = [self, key](bool) { self->state.departures_asked.erase(key); };
    auto failed = [self, key](caf::error& err) {
      self->state.departures_asked.erase(key);
      self->state.log->warn("node={} departure record {}: {}", me(self), key, caf::to_string(err));
    };
    if (step.what == k::forget)
      self->request(s.driver, s.cfg.request_timeout, coord_forget_atom::value, step.kind, node,
                    step.expected_revision)
          .then(done, failed);
    else
      self->request(s.driver, s.cfg.request_timeout, coord_depart_atom::value, step.kind,
                    step.record)
          .then(done, failed);
  }
}

}  // namespace

void controller_round(self_ptr self) {
  auto& s = self->state;
  if (!s.state || !lease_ok(self) || s.refused)
    return;
  const auto& st = *s.state;
  auto now = clock_type::now();
  if (!st.controller) {
    if (!s.no_controller_since)
      s.no_controller_since = now;
    // Cut off, it gives the members that reach each other suspect_after to elect one of them:
    // re-elected, it would hold the controller's key while reaching nobody (they would have to
    // depose it again, a round trip of suspect_after more). Alone it still campaigns after that.
    if (s.cut_off && now - *s.no_controller_since < s.cfg.suspect_after)
      return;
    if (!s.campaigning && now - s.last_campaign >= campaign_interval) {
      s.campaigning = true;
      s.last_campaign = now;
      self->request(s.driver, s.cfg.request_timeout, coord_campaign_atom::value)
          .then(
              [self](const std::string& controller) {
                self->state.campaigning = false;
                if (controller == me(self))
                  self->state.log->info("node={} is the controller", me(self));
              },
              [self](caf::error&) { self->state.campaigning = false; });
    }
    return;
  }
  s.no_controller_since.reset();
  if (st.controller->node_id != me(self) || st.controller->incarnation != s.incarnation) {
    watch_controller(self);
    return;
  }
  if (!st.config) {
    if (s.bootstrapping)
      return;
    std::vector<std::string> ids;
    for (const auto& m : st.members)
      if (!m.leaving)
        ids.push_back(m.node_id);
    if (ids.empty())
      return;
    auto rf = std::max<uint16_t>(s.cfg.replication_factor, 1);
    if (ids.size() < rf && !s.bootstrap_wait_since)
      s.bootstrap_wait_since = now;
    auto waited =
        ids.size() < rf
            ? std::chrono::duration_cast<std::chrono::milliseconds>(now - *s.bootstrap_wait_since)
            : std::chrono::milliseconds{0};
    if (!co::should_create_map(ids.size(), rf, s.cfg.min_insync, waited, s.cfg.bootstrap_grace)) {
      if (!s.waiting_logged)
        s.log->info(
            "node={} waits for {} members to create a cluster of replication factor {} "
            "({} so far; {})",
            me(self), rf, rf, ids.size(),
            s.cfg.bootstrap_grace.count() > 0
                ? "after --bootstrap-grace, on at least --min-insync of them"
                : "--bootstrap-grace 0s: no start with fewer");
      s.waiting_logged = true;
      return;
    }
    if (ids.size() < rf)
      s.log->warn(
          "node={} creates the cluster with {} of {} replicas per shard: --bootstrap-grace "
          "({} ms) passed without {} members; replicas are added as members join",
          me(self), ids.size(), rf, s.cfg.bootstrap_grace.count(), rf);
    co::cluster_config config{co::new_cluster_id(), s.cfg.shard_count, rf,
                              rf > 1 ? std::max<uint16_t>(s.cfg.min_insync, 1) : uint16_t{1}};
    auto first = co::initial_assignments(ids, config);
    if (rf > 1) {
      // Each ISR entry names the life of its member (failover promotes only a member still in
      // it: a restarted one may have lost its disk).
      std::map<std::string, int64_t> life;
      for (const auto& m : st.members)
        life[m.node_id] = m.disk;
      for (auto& a : first) {
        a.isr_disks.clear();
        for (const auto& r : a.isr)
          a.isr_disks.push_back(life[r]);
      }
    }
    auto shards = std::make_shared<const std::vector<co::shard_assignment>>(std::move(first));
    s.bootstrapping = true;
    s.log->info(
        "node={} creates the shard map: {} shards over {} members, replication factor "
        "{}, min in-sync {}",
        me(self), s.cfg.shard_count, ids.size(), config.replication_factor, config.min_insync);
    self->request(s.driver, s.cfg.request_timeout * 2, coord_bootstrap_atom::value, config, shards)
        .then([self](bool) { self->state.bootstrapping = false; },
              [self](caf::error& err) {
                self->state.bootstrapping = false;
                self->state.log->warn("node={} bootstrap: {}", me(self), caf::to_string(err));
              });
    return;
  }
  if (st.config->replication_factor > 1) {
    if (s.cfg.suspect_after.count() > 0)
      ping_members(self);
    fail_over(self);
    record_departures(self);
    move_replicas(self);  // a replicated cluster moves replicas, not whole shards (handoffs)
    return;
  }
  for (const auto& m : co::plan_moves(st, s.cfg.max_concurrent_moves)) {
    const auto& a = st.shards[m.shard];
    if (asked_from(self, &agent_state::intents, m.shard, a.mod_revision))
      continue;  // asked already from this very state
    s.log->info("node={} moves shard {} from {} to {}", me(self), m.shard, m.from, m.to);
    write_guarded(self, &agent_state::intents, m.shard, co::with_target(st, m), a.mod_revision,
                  moves_counter("handoff"));
  }
}

}  // namespace ordermesh::cluster::agent
