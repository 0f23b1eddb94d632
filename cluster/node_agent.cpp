#include "cluster/node_agent.hpp"

#include <algorithm>
#include <map>
#include <set>

#include <sodium.h>

#include <spdlog/logger.h>
#include <caf/all.hpp>
#include <caf/io/all.hpp>

#include "cluster/failure_detector.hpp"
#include "persistence/storage_engine.hpp"

namespace ordermesh::cluster {

namespace {

using clock_type = std::chrono::steady_clock;

constexpr const char* view_meta_key = "cluster_view";
constexpr int resync_every_ticks = 10;  // the coordinator re-sends its view this often

struct peer {
  caf::actor agent;
  std::vector<caf::actor> supervisors;
  bool connecting = false;
  uint32_t connect_failures = 0;  // in a row; logged on the first and every 20th
};

/// A handoff this node runs as the shard's current owner.
struct outgoing_move {
  std::string to;
  uint64_t epoch = 0;  // the new owner's epoch
  uint64_t old_epoch = 0;
  caf::response_promise coordinator;
  bool sent = false;       // all data acknowledged; waiting for the view that flips the shard
  bool uncertain = false;  // the last chunk got no answer: the target may or may not own it
  bool asking = false;     // an owns_atom query about it is in flight
  clock_type::time_point since;
};

using owns_atom = caf::atom_constant<caf::atom("c_owns")>;  // (shard) -> owned epoch

using imported_atom = caf::atom_constant<caf::atom("c_imported")>;

/// An import waiting for its synced write.
struct pending_import {
  caf::response_promise rp;
  uint16_t shard = 0;
  uint64_t epoch = 0;
  bool done = false;
};

struct agent_state {
  agent_config cfg;
  persistence::storage_engine* storage = nullptr;
  agent_hooks hooks;
  std::shared_ptr<spdlog::logger> log;
  cluster_view view;
  bool joined = false;  // has a view (founded, restored or received)
  std::map<std::string, peer> peers;
  failure_detector fd{3000};
  std::set<std::string> suspects;                   // members this node cannot hear
  std::map<uint16_t, std::string> moves_in_flight;  // coordinator: shard -> target
  std::map<uint16_t, outgoing_move> outgoing;       // owner side
  int ticks = 0;
  bool leaving = false;
  std::map<uint64_t, pending_import> imports;
  uint64_t next_import = 0;
  static inline const char* name = "ordermesh.node_agent";
};
using self_ptr = caf::stateful_actor<agent_state>*;

int64_t now_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count();
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

// ---- the view on disk ----

void store_view(self_ptr self) {
  auto& s = self->state;
  std::vector<char> buf;
  caf::binary_serializer sink{self->system(), buf};
  if (auto err = sink(s.view)) {
    s.log->error("node={} cannot encode the cluster view", s.cfg.node_id);
    return;
  }
  auto st = s.storage->put_meta(view_meta_key, std::string(buf.begin(), buf.end()));
  if (!st)
    s.log->error("node={} cannot store the cluster view: {}", s.cfg.node_id, st.to_string());
}

bool load_view(self_ptr self) {
  auto& s = self->state;
  std::string bytes;
  if (!s.storage->get_meta(view_meta_key, &bytes))
    return false;
  caf::binary_deserializer source{self->system(), bytes.data(), bytes.size()};
  cluster_view v;
  if (auto err = source(v)) {
    s.log->error("node={} the stored cluster view does not decode", s.cfg.node_id);
    return false;
  }
  s.view = std::move(v);
  return true;
}

std::string random_cluster_id() {
  unsigned char raw[8];
  randombytes_buf(raw, sizeof raw);
  char hex[sizeof raw * 2 + 1];
  sodium_bin2hex(hex, sizeof hex, raw, sizeof raw);
  return hex;
}

// ---- routing ----

bool is_me(self_ptr self, const std::string& node_id) {
  return node_id == self->state.cfg.node_id;
}

/// Rebuilds where each shard's messages go and hands it to the node.
void publish_routes(self_ptr self) {
  auto& s = self->state;
  auto table = std::make_shared<routing_table>();
  table->view_version = s.view.version;
  auto n = s.cfg.shard_count;
  table->route.resize(n);
  table->owner.resize(n);
  table->epoch.resize(n);
  for (uint16_t i = 0; i < n; ++i) {
    auto owner = i < s.view.shards.size() ? s.view.shards[i] : shard_owner{};
    table->owner[i] = owner.node_id;
    table->epoch[i] = owner.epoch;
    if (owner.node_id.empty() || is_me(self, owner.node_id) || s.outgoing.count(i) > 0) {
      // Ours (or being handed off by us: our frozen supervisor holds its requests).
      table->route[i] = s.hooks.supervisors[i];
      continue;
    }
    auto p = s.peers.find(owner.node_id);
    bool reachable = p != s.peers.end() && p->second.supervisors.size() == n &&
                     s.suspects.count(owner.node_id) == 0;
    table->route[i] = reachable ? p->second.supervisors[i] : s.hooks.unavailable;
  }
  s.hooks.publish_routes(std::move(table));
}

// ---- peers ----

void connect_peer(self_ptr self, const member& m);

/// Peers a node keeps an entry for (members it connects to, and callers it greets back).
constexpr size_t max_peers = 1024;

/// Learns a peer's supervisors once connected.
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
            p.connect_failures = 0;
            self->state.fd.heard(node_id, now_ms());
            self->state.log->info("node={} connected to {}", self->state.cfg.node_id, node_id);
            publish_routes(self);
          },
          [self, node_id](caf::error&) { self->state.peers[node_id].connecting = false; });
}

/// middleman().remote_actor blocks until connected or failed: a short-lived detached actor does
/// it, so the agent keeps heartbeating meanwhile. It answers (connect_atom, host, port) once.
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

void connect_peer(self_ptr self, const member& m) {
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
              // Retried every tick; say so now and then, so that a peer that never connects
              // (a member whose cluster port cannot be reached) shows in the log.
              auto& peer = self->state.peers[node_id];
              peer.connecting = false;
              if (peer.connect_failures++ % 20 == 0)
                self->state.log->warn("node={} cannot connect to {} at {} ({} attempts): {}",
                                      self->state.cfg.node_id, node_id, address,
                                      peer.connect_failures, caf::to_string(err));
            });
}

void connect_members(self_ptr self) {
  for (auto& m : self->state.view.members)
    if (!is_me(self, m.node_id) && m.state != uint8_t(member_state::down))
      connect_peer(self, m);
}

// ---- views ----

void broadcast_view(self_ptr self) {
  auto& s = self->state;
  for (auto& [id, p] : s.peers)
    if (p.agent)
      self->send(p.agent, view_atom::value, s.view);
}

/// Makes `v` this node's view (when newer), stores it and re-routes.
void adopt_view(self_ptr self, cluster_view v);

/// The coordinator changed its view: keep, spread, route.
void commit_view(self_ptr self) {
  store_view(self);
  broadcast_view(self);
  publish_routes(self);
  connect_members(self);
}

bool i_am_coordinator(self_ptr self) {
  auto c = coordinator_of(self->state.view);
  return c && is_me(self, *c);
}

void thaw_flipped_shards(self_ptr self);
void record_ownership(self_ptr self, uint16_t shard, uint64_t epoch);
void record_move(self_ptr self, uint16_t shard, const std::string& node, uint64_t epoch);
void resolve_uncertain(self_ptr self);

/// Takes from `other` every shard entry with a higher epoch than ours. Epochs only grow with
/// each change of owner, so the higher epoch is always the later truth: whatever order views
/// arrive in, every node ends with the same shard map.
bool merge_shards(cluster_view& mine, const cluster_view& other) {
  bool changed = false;
  auto n = std::min(mine.shards.size(), other.shards.size());
  for (size_t i = 0; i < n; ++i)
    if (other.shards[i].epoch > mine.shards[i].epoch) {
      mine.shards[i] = other.shards[i];
      changed = true;
    }
  return changed;
}

void send_to_coordinator(self_ptr self) {
  auto& s = self->state;
  auto c = coordinator_of(s.view);
  if (!c || is_me(self, *c))
    return;
  auto p = s.peers.find(*c);
  if (p != s.peers.end() && p->second.agent)
    self->send(p->second.agent, view_atom::value, s.view);
}

/// Installs the current view: keep it on disk, re-route, connect to new members, and finish
/// what depended on it (a handoff flipping, this node having left).
void install_view(self_ptr self) {
  auto& s = self->state;
  s.joined = true;
  for (auto& m : s.view.members)
    if (!is_me(self, m.node_id))
      s.fd.watch(m.node_id, now_ms());  // no-op for members already watched
  store_view(self);
  thaw_flipped_shards(self);
  publish_routes(self);
  connect_members(self);
  auto* me = find_member(s.view, s.cfg.node_id);
  if (s.leaving && me && shards_of(s.view, s.cfg.node_id).empty() &&
      me->state == uint8_t(member_state::down)) {
    s.log->info("node={} left the cluster", s.cfg.node_id);
    if (s.hooks.on_left)
      s.hooks.on_left();
  }
}

/// A view from another node. The coordinator takes only newer shard entries from it (members
/// are the coordinator's to decide); any other node takes a newer view whole, keeping shard
/// entries it knows to be newer, and tells the coordinator about those.
void adopt_view(self_ptr self, cluster_view v) {
  auto& s = self->state;
  if (s.joined && v.cluster_id != s.view.cluster_id)
    return;
  if (!s.joined) {
    s.view = std::move(v);
    install_view(self);
    return;
  }
  if (i_am_coordinator(self)) {
    if (merge_shards(s.view, v)) {
      s.view.version = std::max(s.view.version, v.version) + 1;
      commit_view(self);
      thaw_flipped_shards(self);
    }
    return;
  }
  if (v.version > s.view.version) {
    auto mine = std::move(s.view);
    s.view = std::move(v);
    if (merge_shards(s.view, mine)) {
      ++s.view.version;
      send_to_coordinator(self);
    }
    install_view(self);
  } else if (merge_shards(s.view, v)) {
    ++s.view.version;
    install_view(self);
  }
}

/// `shard` is owned by `node` at `epoch` (learned first-hand): put it in the view and spread it.
void record_move(self_ptr self, uint16_t shard, const std::string& node, uint64_t epoch) {
  auto& s = self->state;
  if (shard >= s.view.shards.size() || s.view.shards[shard].epoch >= epoch)
    return;
  s.view.shards[shard] = shard_owner{node, epoch};
  ++s.view.version;
  if (i_am_coordinator(self)) {
    commit_view(self);
  } else {
    install_view(self);
    send_to_coordinator(self);
  }
}

/// This node now owns `shard` at `epoch` (a handoff's last chunk is durable and owned): say so
/// at once, so the map flips even if the coordinator that started the move is gone.
void record_ownership(self_ptr self, uint16_t shard, uint64_t epoch) {
  record_move(self, shard, self->state.cfg.node_id, epoch);
}

// ---- handoff, owner side ----

/// After the view that gives the shard to its new owner arrives: route what waited, drop our copy.
void thaw_flipped_shards(self_ptr self) {
  auto& s = self->state;
  for (auto it = s.outgoing.begin(); it != s.outgoing.end();) {
    auto shard = it->first;
    auto& mv = it->second;
    bool flipped = shard < s.view.shards.size() && s.view.shards[shard].node_id == mv.to &&
                   s.view.shards[shard].epoch >= mv.epoch;
    if (!flipped) {
      ++it;
      continue;
    }
    if (mv.coordinator.pending())
      mv.coordinator.deliver(true);  // the data is there and owned: the move succeeded
    auto st = s.storage->delete_shard(shard);
    if (!st)
      s.log->warn("node={} shard {} moved but its old copy stays: {}", s.cfg.node_id, shard,
                  st.to_string());
    it = s.outgoing.erase(it);
    publish_routes(self);  // the shard now routes to its new owner
    self->send(s.hooks.supervisors[shard], thaw_atom::value);
    s.log->info("node={} shard {} now served by {}", s.cfg.node_id, shard,
                s.view.shards[shard].node_id);
  }
}

/// The move failed: own the shard again under its old epoch and serve it.
void abort_outgoing(self_ptr self, uint16_t shard, const std::string& why) {
  auto& s = self->state;
  auto it = s.outgoing.find(shard);
  if (it == s.outgoing.end())
    return;
  auto mv = std::move(it->second);
  s.outgoing.erase(it);
  auto st = s.storage->own_shard(shard, mv.old_epoch);
  s.log->warn("node={} handoff of shard {} to {} failed ({}); serving it again{}", s.cfg.node_id,
              shard, mv.to, why, st ? "" : ": " + st.to_string());
  self->send(s.hooks.supervisors[shard], thaw_atom::value);
  publish_routes(self);
  mv.coordinator.deliver(false);
}

/// Sends the shard's records after `after_key`, one chunk per round trip.
void send_chunk(self_ptr self, uint16_t shard, std::string after_key) {
  auto& s = self->state;
  auto it = s.outgoing.find(shard);
  if (it == s.outgoing.end())
    return;
  auto p = s.peers.find(it->second.to);
  if (p == s.peers.end() || !p->second.agent) {
    abort_outgoing(self, shard, "target not connected");
    return;
  }
  persistence::shard_chunk chunk;
  auto st = s.storage->export_shard(shard, after_key, s.cfg.chunk_bytes, chunk);
  if (!st) {
    abort_outgoing(self, shard, "export: " + st.to_string());
    return;
  }
  std::vector<shard_record> records;
  records.reserve(chunk.records.size());
  for (auto& [k, v] : chunk.records)
    records.push_back(shard_record{std::move(k), std::move(v)});
  auto epoch = it->second.epoch;
  bool done = chunk.done;
  auto last = chunk.last_key;
  bool first = after_key.empty();
  self->request(p->second.agent, s.cfg.request_timeout, chunk_atom::value, shard, epoch, first,
                std::move(records), done)
      .then(
          [self, shard, done, last](bool ok) {
            if (!ok) {
              abort_outgoing(self, shard, "target refused a chunk");
              return;
            }
            if (!done) {
              auto delay = self->state.cfg.chunk_delay;
              if (delay.count() > 0)
                self->delayed_send(self, delay, chunk_atom::value, shard, last);
              else
                send_chunk(self, shard, last);
              return;
            }
            auto out = self->state.outgoing.find(shard);
            if (out == self->state.outgoing.end())
              return;  // the new owner's report flipped the map first: already finished
            out->second.sent = true;
            out->second.coordinator.deliver(true);  // the coordinator flips the map, spreads it
          },
          [self, shard, done](caf::error& err) {
            if (!done) {
              abort_outgoing(self, shard, caf::to_string(err));
              return;
            }
            // The last chunk makes the target the owner; without its answer we cannot know
            // whether it did. Owning the shard again now could make two writers, so it stays
            // released until the target, reachable again, says which (see resolve_uncertain).
            auto out = self->state.outgoing.find(shard);
            if (out != self->state.outgoing.end())
              out->second.uncertain = true;
            self->state.log->warn(
                "node={} handoff of shard {}: no answer to the last chunk; "
                "the shard waits until {} can say whether it owns it",
                self->state.cfg.node_id, shard,
                out != self->state.outgoing.end() ? out->second.to : "?");
          });
}

void start_handoff(self_ptr self, uint16_t shard, const std::string& to, uint64_t epoch,
                   caf::response_promise rp) {
  auto& s = self->state;
  auto owned = s.storage->owned_epoch(shard);
  if (owned == 0 || owned + 1 != epoch || s.outgoing.count(shard) > 0) {
    rp.deliver(false);
    return;
  }
  outgoing_move mv;
  mv.to = to;
  mv.epoch = epoch;
  mv.old_epoch = owned;
  mv.coordinator = rp;
  mv.since = clock_type::now();
  s.outgoing.emplace(shard, std::move(mv));
  s.log->info("node={} handing shard {} to {} (epoch {})", s.cfg.node_id, shard, to, epoch);
  // Stop the shard: its supervisor holds new requests and stops every entity (their writes
  // confirmed); then our consent is synced, and only then is the data copied.
  self->request(s.hooks.supervisors[shard], s.cfg.request_timeout * 4, freeze_atom::value)
      .then(
          [self, shard](bool) {
            auto st = self->state.storage->release_shard(shard);
            if (!st) {
              abort_outgoing(self, shard, "release: " + st.to_string());
              return;
            }
            send_chunk(self, shard, std::string{});
          },
          [self, shard](caf::error& err) { abort_outgoing(self, shard, caf::to_string(err)); });
}

// ---- handoff, receiving side ----

/// The import of one chunk is durable (or failed): answer the owner; after the last chunk, own
/// the shard (synced) and wake its entities that have work due.
void finish_import(self_ptr self, pending_import p, bool ok) {
  auto& s = self->state;
  if (!ok) {
    p.rp.deliver(false);
    return;
  }
  if (p.done) {
    auto st = s.storage->own_shard(p.shard, p.epoch);
    if (!st) {
      s.log->error("node={} cannot own shard {}: {}", s.cfg.node_id, p.shard, st.to_string());
      p.rp.deliver(false);
      return;
    }
    s.log->info("node={} received shard {} (epoch {})", s.cfg.node_id, p.shard, p.epoch);
    self->send(s.hooks.wakeups, scan_atom::value, p.shard);
    record_ownership(self, p.shard, p.epoch);
  }
  p.rp.deliver(true);
}

caf::result<bool> receive_chunk(self_ptr self, uint16_t shard, uint64_t epoch, bool first,
                                std::vector<shard_record>& records, bool done,
                                std::map<uint64_t, pending_import>& imports, uint64_t& next_id) {
  auto& s = self->state;
  if (shard >= s.cfg.shard_count || s.storage->owned_epoch(shard) != 0)
    return false;
  if (first) {
    // Whatever an earlier, aborted handoff left of this shard here goes first.
    auto st = s.storage->delete_shard(shard);
    if (!st) {
      s.log->error("node={} cannot clear shard {} before receiving it: {}", s.cfg.node_id, shard,
                   st.to_string());
      return false;
    }
  }
  pending_import p{self->make_response_promise(), shard, epoch, done};
  std::vector<std::pair<std::string, std::string>> kv;
  kv.reserve(records.size());
  for (auto& r : records)
    kv.emplace_back(std::move(r.key), std::move(r.value));
  auto rp = p.rp;
  if (kv.empty()) {
    finish_import(self, std::move(p), true);
    return rp;
  }
  auto id = ++next_id;
  imports.emplace(id, std::move(p));
  caf::actor me = caf::actor_cast<caf::actor>(self);
  persistence::status why;
  bool queued = s.storage->submit_import(
      shard, std::move(kv),
      [me, id](const persistence::status& st) {
        caf::anon_send(me, imported_atom::value, id, st.is_ok());
      },
      &why);
  if (!queued) {
    imports.erase(id);
    rp.deliver(false);
  }
  return rp;
}

// ---- coordinator ----

void plan_and_move(self_ptr self) {
  auto& s = self->state;
  if (!s.cfg.auto_rebalance &&
      !std::any_of(s.view.members.begin(), s.view.members.end(),
                   [](const member& m) { return m.state == uint8_t(member_state::leaving); }))
    return;
  if (s.moves_in_flight.size() >= s.cfg.max_concurrent_moves)
    return;
  auto plan = plan_moves(s.view, s.cfg.max_concurrent_moves);
  for (auto& mv : plan) {
    if (s.moves_in_flight.size() >= s.cfg.max_concurrent_moves)
      break;
    if (s.moves_in_flight.count(mv.shard))
      continue;
    auto epoch = s.view.shards[mv.shard].epoch + 1;
    caf::actor owner_agent;
    if (is_me(self, mv.from)) {
      owner_agent = caf::actor_cast<caf::actor>(self);
    } else {
      auto p = s.peers.find(mv.from);
      if (p == s.peers.end() || !p->second.agent)
        continue;
      owner_agent = p->second.agent;
    }
    if (!is_me(self, mv.to)) {
      auto p = s.peers.find(mv.to);
      if (p == s.peers.end() || !p->second.agent)
        continue;
    }
    s.moves_in_flight.emplace(mv.shard, mv.to);
    auto shard = mv.shard;
    auto to = mv.to;
    auto started = clock_type::now();
    // A generous bound: stopping a shard waits for its entities' writes, copying is chunked.
    self->request(owner_agent, s.cfg.request_timeout * 12, handoff_atom::value, shard, to, epoch)
        .then(
            [self, shard, to, epoch, started](bool ok) {
              auto& st = self->state;
              st.moves_in_flight.erase(shard);
              if (!ok)
                return;
              auto ms =
                  std::chrono::duration_cast<std::chrono::milliseconds>(clock_type::now() - started)
                      .count();
              st.log->info("node={} moved shard {} to {} (epoch {}, {} ms)", st.cfg.node_id, shard,
                           to, epoch, ms);
              // The target may have reported its ownership already (then the map is flipped).
              if (st.view.shards[shard].epoch + 1 == epoch && move_shard(st.view, shard, to))
                commit_view(self);
              thaw_flipped_shards(self);
            },
            [self, shard](caf::error&) { self->state.moves_in_flight.erase(shard); });
  }
}

void coordinator_tick(self_ptr self) {
  auto& s = self->state;
  bool changed = false;
  for (auto& m : s.view.members) {
    if (is_me(self, m.node_id))
      continue;
    bool alive =
        s.suspects.count(m.node_id) == 0 && s.peers.count(m.node_id) && s.peers[m.node_id].agent;
    if (m.state == uint8_t(member_state::up) && !alive)
      changed |= set_state(s.view, m.node_id, member_state::unreachable);
    else if (m.state == uint8_t(member_state::unreachable) && alive)
      changed |= set_state(s.view, m.node_id, member_state::up);
  }
  // A leaving member that owns nothing any more is done.
  for (auto& m : s.view.members)
    if (m.state == uint8_t(member_state::leaving) && shards_of(s.view, m.node_id).empty()) {
      changed |= set_state(s.view, m.node_id, member_state::down);
      auto p = s.peers.find(m.node_id);
      if (p != s.peers.end() && p->second.agent)
        self->send(p->second.agent, left_atom::value);
    }
  if (changed) {
    s.log->info("node={} view {}: membership changed", s.cfg.node_id, s.view.version);
    commit_view(self);
  } else if (s.ticks % resync_every_ticks == 0) {
    broadcast_view(self);
  }
  plan_and_move(self);
}

/// Asks the target of each uncertain handoff whether it owns the shard. Our queries travel on
/// the connection the last chunk was lost with or on a new one, so no late chunk can follow
/// the answer: it is final.
void resolve_uncertain(self_ptr self) {
  auto& s = self->state;
  for (auto& [shard_no, mv] : s.outgoing) {
    if (!mv.uncertain || mv.asking)
      continue;
    auto p = s.peers.find(mv.to);
    if (p == s.peers.end() || !p->second.agent || s.suspects.count(mv.to))
      continue;
    mv.asking = true;
    auto shard = shard_no;
    self->request(p->second.agent, s.cfg.request_timeout, owns_atom::value, shard)
        .then(
            [self, shard](uint64_t owned) {
              auto& st = self->state;
              auto it = st.outgoing.find(shard);
              if (it == st.outgoing.end())
                return;
              it->second.asking = false;
              if (owned == it->second.epoch) {
                it->second.uncertain = false;
                it->second.sent = true;
                it->second.coordinator.deliver(true);
                record_move(self, shard, it->second.to, owned);
              } else {
                abort_outgoing(self, shard, "the target never took it");
              }
            },
            [self, shard](caf::error&) {
              auto it = self->state.outgoing.find(shard);
              if (it != self->state.outgoing.end())
                it->second.asking = false;
            });
  }
}

// ---- heartbeats ----

void tick(self_ptr self) {
  auto& s = self->state;
  ++s.ticks;
  auto now = now_ms();
  for (auto& [id, p] : s.peers)
    if (p.agent)
      self->send(p.agent, heartbeat_atom::value, s.cfg.node_id, s.view.version);
  std::set<std::string> suspects;
  for (auto& id : s.fd.suspects(now))
    suspects.insert(id);
  if (suspects != s.suspects) {
    for (auto& id : suspects)
      if (!s.suspects.count(id))
        s.log->warn("node={} cannot hear {}: its shards answer unavailable", s.cfg.node_id, id);
    for (auto& id : s.suspects)
      if (!suspects.count(id))
        s.log->info("node={} hears {} again", s.cfg.node_id, id);
    s.suspects = std::move(suspects);
    publish_routes(self);
  }
  connect_members(self);
  if (s.joined && i_am_coordinator(self))
    coordinator_tick(self);
  // An owner whose new view never came: let requests through (they get `unavailable` from the
  // supervisor, which no longer owns the shard) rather than hold them for ever.
  for (auto& [shard, mv] : s.outgoing)
    if (mv.sent && clock_type::now() - mv.since > s.cfg.request_timeout * 4)
      self->send(s.hooks.supervisors[shard], thaw_atom::value);
  resolve_uncertain(self);
  self->delayed_send(self, s.cfg.heartbeat_interval, tick_atom::value);
}

// ---- joining ----

void try_join(self_ptr self, size_t seed_index);

void join_through(self_ptr self, caf::actor seed_agent, size_t seed_index) {
  auto& s = self->state;
  join_request req{s.cfg.node_id, s.cfg.cluster_address, s.cfg.client_address,
                   s.joined ? s.view.cluster_id : std::string{}, s.cfg.shard_count};
  self->request(seed_agent, s.cfg.request_timeout, join_atom::value, req)
      .then(
          [self](cluster_view& v) {
            auto& st = self->state;
            if (st.joined && v.cluster_id != st.view.cluster_id) {
              auto why = "the seeds belong to cluster " + v.cluster_id + ", this node to " +
                         st.view.cluster_id;
              st.log->critical("node={} {}", st.cfg.node_id, why);
              if (st.hooks.on_refused)
                st.hooks.on_refused(why);
              return;
            }
            st.log->info("node={} joined cluster {} (view {})", st.cfg.node_id, v.cluster_id,
                         v.version);
            adopt_view(self, std::move(v));
          },
          [self, seed_index](caf::error& err) {
            auto& st = self->state;
            if (err == caf::sec::invalid_argument) {  // refused for good: retrying cannot help
              auto why = caf::to_string(err);
              st.log->critical("node={} the cluster refused this node: {}", st.cfg.node_id, why);
              if (st.hooks.on_refused)
                st.hooks.on_refused(why);
              return;
            }
            st.log->warn("node={} join through seed {} failed: {}", st.cfg.node_id,
                         st.cfg.seeds[seed_index % st.cfg.seeds.size()], caf::to_string(err));
            self->delayed_send(self, st.cfg.heartbeat_interval * 2, join_atom::value,
                               static_cast<uint64_t>(seed_index + 1));
          });
}

void try_join(self_ptr self, size_t seed_index) {
  auto& s = self->state;
  if (s.cfg.seeds.empty())
    return;
  auto& seed = s.cfg.seeds[seed_index % s.cfg.seeds.size()];
  if (seed == s.cfg.cluster_address) {
    if (s.cfg.seeds.size() > 1)
      self->send(self, join_atom::value, static_cast<uint64_t>(seed_index + 1));
    return;
  }
  std::string host;
  uint16_t port;
  if (!split_host_port(seed, host, port))
    return;
  self->request(spawn_connector(self), s.cfg.request_timeout * 2, connect_atom::value, host, port)
      .then([self, seed_index](const caf::actor& agent) { join_through(self, agent, seed_index); },
            [self, seed_index](caf::error&) {
              self->delayed_send(self, self->state.cfg.heartbeat_interval * 2, join_atom::value,
                                 static_cast<uint64_t>(seed_index + 1));
            });
}

caf::result<cluster_view> handle_join(self_ptr self, const join_request& req) {
  auto& s = self->state;
  if (!s.joined)
    return caf::make_error(caf::sec::invalid_argument, "this node has not joined a cluster yet");
  if (req.shard_count != s.view.shard_count)
    return caf::make_error(caf::sec::invalid_argument,
                           "shard count " + std::to_string(req.shard_count) +
                               " differs from the cluster's " + std::to_string(s.view.shard_count));
  if (!req.cluster_id.empty() && req.cluster_id != s.view.cluster_id)
    return caf::make_error(caf::sec::invalid_argument, "node belongs to cluster " + req.cluster_id +
                                                           ", not " + s.view.cluster_id);
  if (!i_am_coordinator(self)) {
    auto c = coordinator_of(s.view);
    auto p = c ? s.peers.find(*c) : s.peers.end();
    if (p == s.peers.end() || !p->second.agent)
      return caf::make_error(caf::sec::request_receiver_down, "no coordinator reachable");
    auto rp = self->make_response_promise();
    rp.delegate(p->second.agent, join_atom::value, req);
    return rp;
  }
  if (admit(s.view, req.node_id, req.cluster_address, req.client_address)) {
    s.log->info("node={} admitted {} (view {})", s.cfg.node_id, req.node_id, s.view.version);
    s.fd.watch(req.node_id, now_ms());
    commit_view(self);
  }
  return s.view;
}

caf::behavior node_agent(self_ptr self, agent_config cfg, persistence::storage_engine* storage,
                         agent_hooks hooks, std::shared_ptr<spdlog::logger> log) {
  auto& s = self->state;
  s.fd = failure_detector(cfg.failure_timeout.count());
  s.cfg = std::move(cfg);
  s.storage = storage;
  s.hooks = std::move(hooks);
  s.log = std::move(log);
  if (load_view(self)) {
    s.joined = true;
    s.log->info("node={} restored cluster {} view {} ({} members)", s.cfg.node_id,
                s.view.cluster_id, s.view.version, s.view.members.size());
    for (auto& m : s.view.members)
      if (!is_me(self, m.node_id))
        s.fd.watch(m.node_id, now_ms());
  } else if (s.cfg.seeds.empty() ||
             (s.cfg.seeds.size() == 1 && s.cfg.seeds[0] == s.cfg.cluster_address)) {
    member me{s.cfg.node_id, s.cfg.cluster_address, s.cfg.client_address, uint8_t(member_state::up),
              1};
    s.view = found_cluster(random_cluster_id(), s.cfg.shard_count, me);
    for (uint16_t i = 0; i < s.cfg.shard_count; ++i)
      if (s.storage->owned_epoch(i) == 0)
        s.storage->own_shard(i, 1);
    s.joined = true;
    store_view(self);
    s.log->info("node={} founded cluster {} with {} shards", s.cfg.node_id, s.view.cluster_id,
                s.cfg.shard_count);
  }
  if (s.joined)
    publish_routes(self);
  self->send(self, join_atom::value, uint64_t{0});
  self->send(self, tick_atom::value);
  self->set_down_handler([self](caf::down_msg& dm) {
    auto& st = self->state;
    for (auto& [id, p] : st.peers)
      if (p.agent && p.agent.address() == dm.source) {
        st.log->warn("node={} lost the connection to {}", st.cfg.node_id, id);
        p.agent = nullptr;
        p.supervisors.clear();
        p.connecting = false;
      }
    publish_routes(self);
  });
  return {
      [self](join_atom, uint64_t seed_index) {
        // Rejoining also re-announces new addresses after a restart.
        if (!self->state.cfg.seeds.empty())
          try_join(self, seed_index);
      },
      [self](join_atom, const join_request& req) { return handle_join(self, req); },
      [self](view_atom, cluster_view& v) { adopt_view(self, std::move(v)); },
      [self](hello_atom, const std::string& from) {
        // The caller reached us: reach it back over the same connection instead of waiting for
        // our own connect to it. Two nodes connecting to each other at the same moment can
        // leave CAF 0.17's second handshake hanging (seen once in CI: a joining node that
        // connected to everyone, and one member that never connected back for 90 s).
        auto& st = self->state;
        auto caller = caf::actor_cast<caf::actor>(self->current_sender());
        auto p = st.peers.find(from);
        bool known = p != st.peers.end() && p->second.agent && !p->second.supervisors.empty();
        // Bounded: only nodes that reached our cluster port say hello, and at most max_peers.
        if (caller && !known && !from.empty() && from.size() <= 64 && !is_me(self, from) &&
            (p != st.peers.end() || st.peers.size() < max_peers))
          greet(self, from, caller);
        return peer_info{st.cfg.node_id, st.hooks.supervisors};
      },
      [self](heartbeat_atom, const std::string& from, uint64_t version) {
        auto& st = self->state;
        st.fd.heard(from, now_ms());
        if (version < st.view.version && i_am_coordinator(self)) {
          auto p = st.peers.find(from);
          if (p != st.peers.end() && p->second.agent)
            self->send(p->second.agent, view_atom::value, st.view);
        }
      },
      [self](tick_atom) { tick(self); },
      [self](chunk_atom, uint16_t shard, const std::string& after_key) {
        send_chunk(self, shard, after_key);  // the next chunk, after chunk_delay
      },
      [self](owns_atom, uint16_t shard) { return self->state.storage->owned_epoch(shard); },
      [self](handoff_atom, uint16_t shard, const std::string& to,
             uint64_t epoch) -> caf::result<bool> {
        auto rp = self->make_response_promise();
        start_handoff(self, shard, to, epoch, rp);
        return rp;
      },
      [self](chunk_atom, uint16_t shard, uint64_t epoch, bool first,
             std::vector<shard_record>& records, bool done) {
        return receive_chunk(self, shard, epoch, first, records, done, self->state.imports,
                             self->state.next_import);
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
        if (!i_am_coordinator(self)) {
          auto c = coordinator_of(st.view);
          auto p = c ? st.peers.find(*c) : st.peers.end();
          if (p == st.peers.end() || !p->second.agent)
            return caf::make_error(caf::sec::request_receiver_down, "no coordinator reachable");
          if (is_me(self, node_id))
            st.leaving = true;
          auto rp = self->make_response_promise();
          rp.delegate(p->second.agent, leave_atom::value, node_id);
          return rp;
        }
        if (!find_member(st.view, node_id))
          return false;
        if (is_me(self, node_id))
          st.leaving = true;
        if (set_state(st.view, node_id, member_state::leaving)) {
          st.log->info("node={} {} is leaving", st.cfg.node_id, node_id);
          commit_view(self);
        }
        return true;
      },
      [self](left_atom) {
        auto& st = self->state;
        st.log->info("node={} left the cluster", st.cfg.node_id);
        if (st.hooks.on_left)
          st.hooks.on_left();
      },
      [self](status_atom) {
        auto& st = self->state;
        std::vector<std::string> suspects(st.suspects.begin(), st.suspects.end());
        return caf::make_message(st.view, suspects);
      },
  };
}

}  // namespace

caf::actor spawn_node_agent(caf::actor_system& sys, agent_config cfg,
                            persistence::storage_engine& storage, agent_hooks hooks,
                            std::shared_ptr<spdlog::logger> log) {
  return sys.spawn<caf::detached>(node_agent, std::move(cfg), &storage, std::move(hooks),
                                  std::move(log));
}

}  // namespace ordermesh::cluster
