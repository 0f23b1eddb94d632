#include "cluster/member_agent.hpp"

#include <algorithm>
#include <map>
#include <set>

#include <sodium.h>

#include <spdlog/logger.h>
#include <caf/all.hpp>
#include <caf/io/all.hpp>

#include "cluster/coordination/placement.hpp"
#include "cluster/coordination/shard_reconciler.hpp"
#include "cluster/coordination_driver.hpp"
#include "persistence/storage_engine.hpp"

namespace ordermesh::cluster {

namespace {

namespace co = coordination;
using clock_type = std::chrono::steady_clock;
using namespace std::chrono_literals;
using handoff = co::local_shard::handoff;

// ---- agent <-> agent (BASP); names differ from the node agent's, whose peers they are not ----
/// (shard, move_revision, first, records, done) -> bool: one chunk of a shard's copy.
using copy_atom = caf::atom_constant<caf::atom("m_copy")>;
// ---- local ----
using next_chunk_atom = caf::atom_constant<caf::atom("m_next")>;
using imported_atom = caf::atom_constant<caf::atom("m_imported")>;
using tick_atom = caf::atom_constant<caf::atom("m_tick")>;

constexpr const char* cluster_id_meta_key = "coordination_cluster_id";
constexpr size_t max_peers = 1024;
constexpr auto tick_interval = 500ms;
constexpr auto campaign_interval = 1s;

struct peer {
  caf::actor agent;
  std::vector<caf::actor> supervisors;
  bool connecting = false;
  uint32_t failures = 0;  // connection attempts failed in a row; logged first and every 20th
};

/// A handoff this node runs as the shard's primary.
struct outgoing_copy {
  std::string to;
  int64_t move_revision = 0;
  clock_type::time_point since;  // sending started, or (once sent) the last chunk was acked
};

/// A chunk waiting for its synced import.
struct pending_import {
  caf::response_promise rp;
  uint16_t shard = 0;
  int64_t move_revision = 0;
  bool done = false;
};

struct agent_state {
  member_agent_config cfg;
  persistence::storage_engine* storage = nullptr;
  agent_hooks hooks;
  std::shared_ptr<spdlog::logger> log;
  std::string store_kind;
  caf::actor driver;
  state_ptr state;
  clock_type::time_point lease_until{};
  int64_t incarnation = 0;
  std::map<std::string, peer> peers;
  std::vector<co::local_shard> local;
  std::vector<bool> busy;                                     // a step in flight, per shard
  std::map<uint16_t, clock_type::time_point> waiting_target;  // send waiting for a connection
  std::map<uint16_t, outgoing_copy> outgoing;
  std::map<uint64_t, pending_import> imports;
  uint64_t next_import = 0;
  std::map<uint16_t, int64_t> intents;  // controller: shard -> revision its intent was based on
  bool campaigning = false;
  clock_type::time_point last_campaign{};
  bool bootstrapping = false;
  bool leaving = false;
  bool leave_sent = false;
  bool refused = false;
  std::set<uint16_t> refused_shards;
  std::vector<co::step> last_step;  // per shard, for the debug log of decisions
  static inline const char* name = "ordermesh.member_agent";
};
using self_ptr = caf::stateful_actor<agent_state>*;

const std::string& me(self_ptr self) {
  return self->state.cfg.node_id;
}

bool lease_ok(self_ptr self) {
  return clock_type::now() < self->state.lease_until;
}

bool split_host_port(const std::string& s, std::string& host, uint16_t& port) {
  auto colon = s.rfind(':');
  if (colon == std::string::npos)
    return false;
  host = s.substr(0, colon);
  try {
    port = static_cast<uint16_t>(std::stoul(s.substr(colon + 1)));
  } catch (...) {
    return false;
  }
  return port != 0;
}

std::string random_cluster_id() {
  unsigned char raw[8];
  randombytes_buf(raw, sizeof raw);
  char hex[sizeof raw * 2 + 1];
  sodium_bin2hex(hex, sizeof hex, raw, sizeof raw);
  return hex;
}

bool is_member(self_ptr self, const std::string& node_id) {
  auto& st = self->state.state;
  if (!st)
    return false;
  return std::any_of(st->members.begin(), st->members.end(),
                     [&](const co::member_record& m) { return m.node_id == node_id; });
}

// ---- routing ----

/// Rebuilds where each shard's messages go and hands it to the node. Nothing is published
/// before the store holds a shard map.
void publish_routes(self_ptr self) {
  auto& s = self->state;
  if (!s.state || s.state->shards.size() != s.cfg.shard_count)
    return;
  auto table = std::make_shared<routing_table>();
  auto n = s.cfg.shard_count;
  table->view_version = static_cast<uint64_t>(s.state->revision);
  table->route.resize(n);
  table->owner.resize(n);
  table->epoch.resize(n);
  for (uint16_t i = 0; i < n; ++i) {
    const auto& a = s.state->shards[i];
    table->owner[i] = a.primary;
    table->epoch[i] = a.epoch;
    if (s.outgoing.count(i)) {
      table->route[i] = s.hooks.supervisors[i];  // frozen: it holds requests until the end
    } else if (a.primary == me(self)) {
      // Ours at the store's epoch. (The lease is checked by the supervisor, for every request
      // including those other nodes forward: a node cut off from the store serves nothing.)
      bool serving = s.storage->owned_epoch(i) == a.epoch && !s.refused_shards.count(i);
      table->route[i] = serving ? s.hooks.supervisors[i] : s.hooks.unavailable;
    } else {
      auto p = s.peers.find(a.primary);
      bool reachable = p != s.peers.end() && p->second.agent && p->second.supervisors.size() == n &&
                       is_member(self, a.primary);
      table->route[i] = reachable ? p->second.supervisors[i] : s.hooks.unavailable;
    }
  }
  s.hooks.publish_routes(std::move(table));
}

// ---- peers ----

void greet(self_ptr self, const std::string& node_id, caf::actor agent) {
  auto& s = self->state;
  self->monitor(agent);
  self->request(agent, s.cfg.request_timeout, hello_atom::value, s.cfg.node_id)
      .then(
          [self, node_id, agent](const peer_info& info) {
            auto& p = self->state.peers[node_id];
            p.agent = agent;
            p.supervisors = info.supervisors;
            p.connecting = false;
            p.failures = 0;
            self->state.log->info("node={} connected to {}", me(self), node_id);
            publish_routes(self);
          },
          [self, node_id](caf::error&) { self->state.peers[node_id].connecting = false; });
}

/// remote_actor blocks until connected or failed: a short-lived detached actor does it.
caf::actor spawn_connector(self_ptr self) {
  // The unused int: CAF 0.17 dereferences a null tuple when a function actor takes no
  // arguments (UBSan reports it in init_fun_factory.hpp), so never spawn one without any.
  return self->spawn<caf::detached>(
      [](caf::event_based_actor* h, int) -> caf::behavior {
        return {
            [h](connect_atom, const std::string& host, uint16_t port) -> caf::result<caf::actor> {
              auto res = h->system().middleman().remote_actor(host, port);
              h->quit();
              if (!res)
                return res.error();
              return *res;
            }};
      },
      0);
}

void connect_peer(self_ptr self, const co::member_record& m) {
  auto& s = self->state;
  auto& p = s.peers[m.node_id];
  if (p.connecting || (p.agent && !p.supervisors.empty()))
    return;
  std::string host;
  uint16_t port;
  if (!split_host_port(m.cluster_address, host, port))
    return;
  p.connecting = true;
  auto node_id = m.node_id;
  auto address = m.cluster_address;
  self->request(spawn_connector(self), s.cfg.request_timeout * 2, connect_atom::value, host, port)
      .then([self, node_id](const caf::actor& agent) { greet(self, node_id, agent); },
            [self, node_id, address](caf::error& err) {
              auto& peer = self->state.peers[node_id];
              peer.connecting = false;
              if (peer.failures++ % 20 == 0)
                self->state.log->warn("node={} cannot connect to {} at {} ({} attempts): {}",
                                      me(self), node_id, address, peer.failures,
                                      caf::to_string(err));
            });
}

void connect_members(self_ptr self) {
  auto& s = self->state;
  if (!s.state)
    return;
  for (const auto& m : s.state->members)
    if (m.node_id != me(self) && (s.peers.count(m.node_id) || s.peers.size() < max_peers))
      connect_peer(self, m);
}

// ---- the shard steps ----

void reconcile(self_ptr self);

/// Ours now at `epoch`: own it (synced), serve it, wake what is due.
void own(self_ptr self, uint16_t shard, uint64_t epoch) {
  auto& s = self->state;
  auto st = s.storage->own_shard(shard, epoch);
  if (!st) {
    s.log->error("node={} cannot own shard {} at epoch {}: {}", me(self), shard, epoch,
                 st.to_string());
    return;
  }
  bool was_sending = s.outgoing.erase(shard) > 0;
  // Keep what this node last wrote over: the state it holds may still predate that write.
  auto written_over = s.local[shard].written_over;
  s.local[shard] = co::local_shard{};
  s.local[shard].owned_epoch = epoch;
  s.local[shard].written_over = written_over;
  s.log->info("node={} serves shard {} at epoch {}", me(self), shard, epoch);
  publish_routes(self);
  if (was_sending)
    self->send(s.hooks.supervisors[shard], thaw_atom::value);  // the move was aborted
  self->send(s.hooks.wakeups, scan_atom::value, shard);
}

/// Not ours: forget our copy. Requests held by a frozen supervisor go to the new primary.
void drop(self_ptr self, uint16_t shard) {
  auto& s = self->state;
  bool was_sending = s.outgoing.erase(shard) > 0;
  s.local[shard] = co::local_shard{};
  if (s.storage->owned_epoch(shard) != 0) {
    auto st = s.storage->release_shard(shard);
    if (!st)
      s.log->error("node={} cannot release shard {}: {}", me(self), shard, st.to_string());
  }
  auto st = s.storage->delete_shard(shard);
  if (!st)
    s.log->warn("node={} shard {} is someone else's but its old copy stays: {}", me(self), shard,
                st.to_string());
  publish_routes(self);
  if (was_sending) {
    self->send(s.hooks.supervisors[shard], thaw_atom::value);
    s.log->info("node={} shard {} now served by {}", me(self), shard,
                s.state->shards[shard].primary);
  }
}

/// A copy arriving for a move that no longer exists: discard it.
void cancel_receive(self_ptr self, uint16_t shard) {
  auto& s = self->state;
  s.local[shard] = co::local_shard{};
  if (s.storage->owned_epoch(shard) == 0)
    (void)s.storage->delete_shard(shard);
}

void fail_copy(self_ptr self, uint16_t shard, const std::string& why) {
  auto& s = self->state;
  auto it = s.outgoing.find(shard);
  if (it == s.outgoing.end())
    return;
  s.log->warn("node={} handoff of shard {} to {} failed: {}", me(self), shard, it->second.to, why);
  s.local[shard].progress = handoff::failed;
  reconcile(self);
}

/// Sends the shard's records after `after_key`, one chunk per round trip.
void send_chunk(self_ptr self, uint16_t shard, std::string after_key) {
  auto& s = self->state;
  auto it = s.outgoing.find(shard);
  if (it == s.outgoing.end() || s.local[shard].progress != handoff::sending)
    return;
  auto p = s.peers.find(it->second.to);
  if (p == s.peers.end() || !p->second.agent) {
    fail_copy(self, shard, "target not connected");
    return;
  }
  persistence::shard_chunk chunk;
  auto st = s.storage->export_shard(shard, after_key, s.cfg.chunk_bytes, chunk);
  if (!st) {
    fail_copy(self, shard, "export: " + st.to_string());
    return;
  }
  std::vector<shard_record> records;
  records.reserve(chunk.records.size());
  for (auto& [k, v] : chunk.records)
    records.push_back(shard_record{std::move(k), std::move(v)});
  auto revision = it->second.move_revision;
  bool done = chunk.done;
  auto last = chunk.last_key;
  self->request(p->second.agent, s.cfg.request_timeout, copy_atom::value, shard, revision,
                after_key.empty(), std::move(records), done)
      .then(
          [self, shard, revision, done, last](bool ok) {
            auto& ss = self->state;
            auto out = ss.outgoing.find(shard);
            if (out == ss.outgoing.end() || out->second.move_revision != revision)
              return;  // ended meanwhile (flipped, or aborted)
            if (!ok) {
              fail_copy(self, shard, "the target refused a chunk");
              return;
            }
            if (!done) {
              if (ss.cfg.chunk_delay.count() > 0)
                self->delayed_send(self, ss.cfg.chunk_delay, next_chunk_atom::value, shard, last);
              else
                send_chunk(self, shard, last);
              return;
            }
            // Everything is on the target's disk: it writes the flip. If it does not in time,
            // we abort, and the store's compare-and-set picks exactly one of the two.
            ss.local[shard].progress = handoff::sent;
            out->second.since = clock_type::now();
          },
          [self, shard, revision](caf::error& err) {
            auto out = self->state.outgoing.find(shard);
            if (out != self->state.outgoing.end() && out->second.move_revision == revision)
              fail_copy(self, shard, caf::to_string(err));
          });
}

/// Hands `shard` to `to` for the move whose intent was written at `revision`.
void send(self_ptr self, const co::shard_step& step) {
  auto& s = self->state;
  auto shard = step.shard;
  auto p = s.peers.find(step.peer);
  if (p == s.peers.end() || !p->second.agent || p->second.supervisors.empty()) {
    // Not connected yet (it may have just joined): keep trying for a while, then give up.
    auto since = s.waiting_target.emplace(shard, clock_type::now()).first->second;
    if (clock_type::now() - since > s.cfg.connect_timeout) {
      s.waiting_target.erase(shard);
      s.local[shard].progress = handoff::failed;
      s.local[shard].move_revision = step.move_revision;
      s.log->warn("node={} cannot reach {} to hand it shard {}", me(self), step.peer, shard);
    }
    return;
  }
  s.waiting_target.erase(shard);
  auto& l = s.local[shard];
  l.progress = handoff::sending;
  l.move_revision = step.move_revision;
  l.peer = step.peer;
  s.outgoing[shard] = outgoing_copy{step.peer, step.move_revision, clock_type::now()};
  s.busy[shard] = true;
  s.log->info("node={} handing shard {} to {} (epoch {})", me(self), shard, step.peer, step.epoch);
  publish_routes(self);
  auto revision = step.move_revision;
  // Stop the shard: its supervisor holds new requests and stops every entity (their writes
  // confirmed); then our release is synced (we write it no more), and only then is it copied.
  self->request(s.hooks.supervisors[shard], s.cfg.request_timeout * 4, freeze_atom::value)
      .then(
          [self, shard, revision](bool) {
            auto& st = self->state;
            st.busy[shard] = false;
            auto out = st.outgoing.find(shard);
            if (out == st.outgoing.end() || out->second.move_revision != revision)
              return;
            auto rel = st.storage->release_shard(shard);
            if (!rel) {
              fail_copy(self, shard, "release: " + rel.to_string());
              return;
            }
            st.local[shard].owned_epoch = 0;
            send_chunk(self, shard, std::string{});
          },
          [self, shard](caf::error& err) {
            self->state.busy[shard] = false;
            fail_copy(self, shard, "freeze: " + caf::to_string(err));
          });
}

/// Writes `next` over the assignment last read at `expected`; `then(true)` once it landed.
template <class F>
void write_assignment(self_ptr self, uint16_t shard, co::shard_assignment next, int64_t expected,
                      const char* what, F then) {
  auto& s = self->state;
  s.busy[shard] = true;
  self->request(s.driver, s.cfg.request_timeout * 2, coord_write_atom::value, std::move(next),
                expected)
      .then(
          [self, shard, then](bool written) {
            self->state.busy[shard] = false;
            then(written);
          },
          [self, shard, what](caf::error& err) {
            // Not written, or unknown (the store may have applied it): the next state says.
            self->state.busy[shard] = false;
            self->state.log->warn("node={} {} of shard {}: {}", me(self), what, shard,
                                  caf::to_string(err));
          });
}

void run_step(self_ptr self, const co::shard_assignment& a, const co::shard_step& step) {
  auto& s = self->state;
  auto shard = step.shard;
  switch (step.what) {
    case co::step::serve:
      break;
    case co::step::own:
      own(self, shard, step.epoch);
      break;
    case co::step::send:
      send(self, step);
      break;
    case co::step::wait: {
      auto out = s.outgoing.find(shard);
      if (out != s.outgoing.end() && s.local[shard].progress == handoff::sent &&
          clock_type::now() - out->second.since > s.cfg.flip_timeout)
        fail_copy(self, shard, "no flip from the target in time");
      break;
    }
    case co::step::abort_move:
      s.log->info("node={} aborts the move of shard {} to {}", me(self), shard, a.target);
      write_assignment(self, shard, co::aborted(a), a.mod_revision, "abort",
                       [self, shard, from = a.mod_revision](bool written) {
                         if (!written)
                           return;  // the target flipped first: the next state says so
                         // Until a state newer than `from` arrives, ours predates the abort.
                         self->state.local[shard].written_over = from;
                         reconcile(self);
                       });
      break;
    case co::step::flip: {
      auto epoch = step.epoch;
      write_assignment(self, shard, co::flipped(a), a.mod_revision, "flip",
                       [self, shard, epoch, from = a.mod_revision](bool written) {
                         if (!written)
                           return;  // the primary aborted first: the next state cancels ours
                         self->state.log->info("node={} flipped shard {} to itself (epoch {})",
                                               me(self), shard, epoch);
                         // The state we hold still shows the intent ("target = me"): acting on
                         // it would drop what we just flipped. Wait for a state newer than it.
                         self->state.local[shard].written_over = from;
                         own(self, shard, epoch);
                         // At once, not on the next tick: a regression of the guard above then
                         // loses data on every move, where the system tests see it.
                         reconcile(self);
                       });
      break;
    }
    case co::step::drop:
      drop(self, shard);
      break;
    case co::step::cancel_receive:
      cancel_receive(self, shard);
      break;
    case co::step::refuse:
      if (s.refused_shards.insert(shard).second) {
        s.log->critical(
            "node={} shard {}: this disk owns epoch {} but the store says {}; "
            "not serving it (an operator must settle this)",
            me(self), shard, s.storage->owned_epoch(shard), a.epoch);
        publish_routes(self);
      }
      break;
  }
}

/// Runs the reconciler over the latest state and carries out every step not already in flight.
void reconcile(self_ptr self) {
  auto& s = self->state;
  if (!s.state || s.refused || s.state->shards.size() != s.cfg.shard_count)
    return;
  for (uint16_t i = 0; i < s.cfg.shard_count; ++i)
    s.local[i].owned_epoch = s.storage->owned_epoch(i);  // the disk is the truth here
  auto steps = co::reconcile(*s.state, me(self), s.local);
  for (const auto& step : steps) {
    if (step.what != co::step::send)
      s.waiting_target.erase(step.shard);  // the wait for a target's connection is per move
    if (step.what != s.last_step[step.shard]) {
      const auto& l = s.local[step.shard];
      s.log->debug(
          "node={} shard {}: {} (epoch {}, peer '{}', move {}; state revision {}, "
          "handoff {} for move {}{})",
          me(self), step.shard, co::to_string(step.what), step.epoch, step.peer, step.move_revision,
          s.state->revision, static_cast<int>(l.progress), l.move_revision,
          s.busy[step.shard] ? ", busy" : "");
      s.last_step[step.shard] = step.what;
    }
    if (!s.busy[step.shard])
      run_step(self, s.state->shards[step.shard], step);
  }
}

// ---- receiving a copy ----

void finish_import(self_ptr self, pending_import p, bool ok) {
  auto& s = self->state;
  auto& l = s.local[p.shard];
  if (!ok || l.move_revision != p.move_revision || l.progress != handoff::receiving) {
    p.rp.deliver(false);
    return;
  }
  if (p.done) {
    // Everything is durable here; the flip (the reconciler's next step) makes it ours.
    l.progress = handoff::received;
    s.log->info("node={} received shard {}", me(self), p.shard);
  }
  p.rp.deliver(true);
  if (p.done)
    reconcile(self);
}

caf::result<bool> receive_copy(self_ptr self, uint16_t shard, int64_t revision, bool first,
                               std::vector<shard_record>& records, bool done) {
  auto& s = self->state;
  if (shard >= s.cfg.shard_count || s.storage->owned_epoch(shard) != 0 || s.refused)
    return false;
  auto& l = s.local[shard];
  if (first) {
    // Whatever an earlier, ended copy left of this shard here goes first. The flip, not this,
    // decides whether the move happens: a copy for an intent we have not seen yet is fine.
    auto st = s.storage->delete_shard(shard);
    if (!st) {
      s.log->error("node={} cannot clear shard {} before receiving it: {}", me(self), shard,
                   st.to_string());
      return false;
    }
    l.progress = handoff::receiving;
    l.move_revision = revision;
  } else if (l.progress != handoff::receiving || l.move_revision != revision) {
    return false;  // a chunk of a copy that has ended
  }
  pending_import p{self->make_response_promise(), shard, revision, done};
  std::vector<std::pair<std::string, std::string>> kv;
  kv.reserve(records.size());
  for (auto& r : records)
    kv.emplace_back(std::move(r.key), std::move(r.value));
  auto rp = p.rp;
  if (kv.empty()) {
    finish_import(self, std::move(p), true);
    return rp;
  }
  auto id = ++s.next_import;
  s.imports.emplace(id, std::move(p));
  caf::actor agent = caf::actor_cast<caf::actor>(self);
  persistence::status why;
  bool queued = s.storage->submit_import(
      shard, std::move(kv),
      [agent, id](const persistence::status& st) {
        caf::anon_send(agent, imported_atom::value, id, st.is_ok());
      },
      &why);
  if (!queued) {
    s.imports.erase(id);
    rp.deliver(false);
  }
  return rp;
}

// ---- the controller ----

void controller_round(self_ptr self) {
  auto& s = self->state;
  if (!s.state || !lease_ok(self) || s.refused)
    return;
  const auto& st = *s.state;
  if (!st.controller) {
    if (!s.campaigning && clock_type::now() - s.last_campaign >= campaign_interval) {
      s.campaigning = true;
      s.last_campaign = clock_type::now();
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
  if (st.controller->node_id != me(self) || st.controller->incarnation != s.incarnation)
    return;
  if (!st.config) {
    if (s.bootstrapping)
      return;
    std::vector<std::string> ids;
    for (const auto& m : st.members)
      if (!m.leaving)
        ids.push_back(m.node_id);
    if (ids.empty())
      return;
    co::cluster_config config{random_cluster_id(), s.cfg.shard_count, 1, 1};
    auto shards = std::make_shared<const std::vector<co::shard_assignment>>(
        co::initial_assignments(ids, config));
    s.bootstrapping = true;
    s.log->info("node={} creates the shard map: {} shards over {} members", me(self),
                s.cfg.shard_count, ids.size());
    self->request(s.driver, s.cfg.request_timeout * 2, coord_bootstrap_atom::value, config, shards)
        .then([self](bool) { self->state.bootstrapping = false; },
              [self](caf::error& err) {
                self->state.bootstrapping = false;
                self->state.log->warn("node={} bootstrap: {}", me(self), caf::to_string(err));
              });
    return;
  }
  for (const auto& m : co::plan_moves(st, s.cfg.max_concurrent_moves)) {
    const auto& a = st.shards[m.shard];
    auto it = s.intents.find(m.shard);
    if (it != s.intents.end() && it->second == a.mod_revision)
      continue;  // asked already from this very state
    s.intents[m.shard] = a.mod_revision;
    s.log->info("node={} moves shard {} from {} to {}", me(self), m.shard, m.from, m.to);
    auto shard = m.shard;
    auto revision = a.mod_revision;
    self->request(s.driver, s.cfg.request_timeout, coord_write_atom::value, co::with_target(st, m),
                  revision)
        .then([](bool) {},
              [self, shard, revision](caf::error&) {
                // Not written (or unknown): ask again next round. Placement is deterministic,
                // so a shard skipped for good would stall every move after it.
                auto& intents = self->state.intents;
                auto asked = intents.find(shard);
                if (asked != intents.end() && asked->second == revision)
                  intents.erase(asked);
              });
  }
}

// ---- membership ----

/// The store's cluster is the one this disk belongs to; a disk never used remembers it.
bool check_cluster_id(self_ptr self) {
  auto& s = self->state;
  if (!s.state->config)
    return true;
  std::string mine;
  if (!s.storage->get_meta(cluster_id_meta_key, &mine)) {
    auto st = s.storage->put_meta(cluster_id_meta_key, s.state->config->cluster_id);
    if (!st)
      s.log->error("node={} cannot record the cluster id: {}", me(self), st.to_string());
    return true;
  }
  if (mine == s.state->config->cluster_id)
    return true;
  auto why = "this data dir belongs to cluster " + mine + ", the store holds cluster " +
             s.state->config->cluster_id + " (a wiped or different store?)";
  s.log->critical("node={} {}", me(self), why);
  s.refused = true;
  if (s.hooks.on_refused)
    s.hooks.on_refused(why);
  return false;
}

/// A leaving member that leads nothing and receives nothing is done.
void maybe_left(self_ptr self) {
  auto& s = self->state;
  if (!s.leaving || s.leave_sent || !s.state || !s.state->config)
    return;
  for (const auto& a : s.state->shards)
    if (a.primary == me(self) || a.target == me(self))
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
  reconcile(self);
  publish_routes(self);
  controller_round(self);
  maybe_left(self);
}

void tick(self_ptr self) {
  connect_members(self);
  reconcile(self);
  controller_round(self);
  maybe_left(self);
  self->delayed_send(self, tick_interval, tick_atom::value);
}

member_status status_of(self_ptr self) {
  auto& s = self->state;
  member_status r;
  r.coordination = s.store_kind;
  r.incarnation = s.incarnation;
  r.lease_valid = lease_ok(self);
  if (s.state) {
    if (s.state->controller)
      r.controller = s.state->controller->node_id;
    r.members = s.state->members;
    r.shards = s.state->shards;
    for (const auto& m : s.state->members) {
      auto p = s.peers.find(m.node_id);
      if (m.node_id != me(self) && (p == s.peers.end() || !p->second.agent))
        r.unreachable.push_back(m.node_id);
    }
  }
  return r;
}

caf::behavior member_agent(self_ptr self, member_agent_config cfg,
                           persistence::storage_engine* storage, agent_hooks hooks,
                           std::unique_ptr<co::session>* session,
                           std::shared_ptr<spdlog::logger> log) {
  auto& s = self->state;
  s.cfg = std::move(cfg);
  s.storage = storage;
  s.hooks = std::move(hooks);
  s.log = std::move(log);
  s.local.resize(s.cfg.shard_count);
  s.busy.assign(s.cfg.shard_count, false);
  s.last_step.assign(s.cfg.shard_count, co::step::serve);
  s.store_kind = std::string((*session)->kind());
  driver_config dcfg;
  dcfg.me = co::member_info{s.cfg.node_id, s.cfg.cluster_address, s.cfg.client_address, false};
  dcfg.lease_ttl = s.cfg.lease_ttl;
  s.driver = spawn_coordination_driver(self->system(), std::move(*session), dcfg,
                                       caf::actor_cast<caf::actor>(self), s.log);
  delete session;
  self->link_to(s.driver);
  self->set_down_handler([self](caf::down_msg& dm) {
    auto& st = self->state;
    for (auto& [id, p] : st.peers)
      if (p.agent && p.agent.address() == dm.source) {
        st.log->warn("node={} lost the connection to {}", me(self), id);
        p.agent = nullptr;
        p.supervisors.clear();
        p.connecting = false;
      }
    publish_routes(self);
  });
  self->send(self, tick_atom::value);
  return {
      [self](coord_state_atom, state_ptr& st) { on_state(self, std::move(st)); },
      [self](coord_lease_atom, int64_t until_ns, int64_t incarnation) {
        auto& st = self->state;
        st.lease_until = clock_type::time_point(std::chrono::nanoseconds(until_ns));
        if (st.hooks.set_lease_until)
          st.hooks.set_lease_until(until_ns);
        if (incarnation != st.incarnation)
          st.intents.clear();
        st.incarnation = incarnation;
        publish_routes(self);
      },
      [self](tick_atom) { tick(self); },
      [self](hello_atom, const std::string& from) {
        // The caller reached us: reach it back over the same connection (see node_agent.cpp).
        auto& st = self->state;
        auto caller = caf::actor_cast<caf::actor>(self->current_sender());
        auto p = st.peers.find(from);
        bool known = p != st.peers.end() && p->second.agent && !p->second.supervisors.empty();
        if (caller && !known && !from.empty() && from.size() <= 64 && from != me(self) &&
            (p != st.peers.end() || st.peers.size() < max_peers))
          greet(self, from, caller);
        return peer_info{st.cfg.node_id, st.hooks.supervisors};
      },
      [self](copy_atom, uint16_t shard, int64_t revision, bool first,
             std::vector<shard_record>& records,
             bool done) { return receive_copy(self, shard, revision, first, records, done); },
      [self](next_chunk_atom, uint16_t shard, const std::string& after_key) {
        send_chunk(self, shard, after_key);
      },
      [self](imported_atom, uint64_t id, bool ok) {
        auto& st = self->state;
        auto it = st.imports.find(id);
        if (it == st.imports.end())
          return;
        auto p = std::move(it->second);
        st.imports.erase(it);
        finish_import(self, std::move(p), ok);
      },
      [self](leave_atom, const std::string& node_id) -> caf::result<bool> {
        auto& st = self->state;
        if (node_id != me(self)) {
          auto p = st.peers.find(node_id);
          if (p == st.peers.end() || !p->second.agent)
            return caf::make_error(caf::sec::request_receiver_down,
                                   "no connection to " + node_id + "; ask it directly");
          auto rp = self->make_response_promise();
          rp.delegate(p->second.agent, leave_atom::value, node_id);
          return rp;
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
      [self](member_status_atom) { return status_of(self); },
  };
}

}  // namespace

caf::actor spawn_member_agent(caf::actor_system& sys, member_agent_config cfg,
                              persistence::storage_engine& storage, agent_hooks hooks,
                              std::unique_ptr<coordination::session> session,
                              std::shared_ptr<spdlog::logger> log) {
  // CAF copies spawn arguments: the session travels as a raw pointer the agent takes over.
  auto* owned = new std::unique_ptr<coordination::session>(std::move(session));
  return sys.spawn<caf::detached>(member_agent, std::move(cfg), &storage, std::move(hooks), owned,
                                  std::move(log));
}

}  // namespace ordermesh::cluster
