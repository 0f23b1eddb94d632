// Connections to the other members' agents over CAF's BASP: one per member, made by the member
// with the lower id (the other dials only when that has not happened within dial_grace) and
// reused by the other. A peer answers hello with its supervisors, which is all routing needs.
#include <spdlog/logger.h>
#include <caf/all.hpp>
#include <caf/io/all.hpp>

#include "cluster/agent/agent_state.hpp"

namespace ordermesh::cluster::agent {

namespace {

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

void greet(self_ptr self, const std::string& node_id, caf::actor agent) {
  auto& s = self->state;
  self->monitor(agent);
  self->request(agent, s.cfg.request_timeout, hello_atom::value, s.cfg.node_id)
      .then(
          [self, node_id, agent](const peer_info& info) {
            auto& p = self->state.peers[node_id];
            p.agent = agent;
            p.supervisors = info.supervisors;
            p.replica = info.replica;
            p.connecting = false;
            p.failures = 0;
            p.down_since.reset();
            p.silent_since.reset();
            p.refused_since.reset();
            p.awaited_since.reset();
            self->state.log->info("node={} connected to {}", me(self), node_id);
            publish_routes(self);
            publish_replication(self);
          },
          [self, node_id](caf::error&) { self->state.peers[node_id].connecting = false; });
}

/// remote_actor blocks until connected or failed: a short-lived detached actor does it.
/// The transport is the node's choice (agent_hooks::connect: mutual TLS in a secure cluster).
caf::actor spawn_connector(self_ptr self) {
  // The unused int: CAF 0.17 dereferences a null tuple when a function actor takes no
  // arguments (UBSan reports it in init_fun_factory.hpp), so never spawn one without any.
  return self->spawn<caf::detached>(
      [connect = self->state.hooks.connect](caf::event_based_actor* h, int) -> caf::behavior {
        return {[h, connect](connect_atom, const std::string& host,
                             uint16_t port) -> caf::result<caf::actor> {
          auto res = connect ? connect(h->system(), host, port)
                             : h->system().middleman().remote_actor(host, port);
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
  if (m.node_id < me(self)) {  // it dials us: give it dial_grace first
    auto now = clock_type::now();
    if (!p.awaited_since)
      p.awaited_since = now;
    if (now - *p.awaited_since < dial_grace)
      return;
  }
  std::string host;
  uint16_t port;
  if (!split_host_port(m.cluster_address, host, port))
    return;
  p.connecting = true;
  auto node_id = m.node_id;
  auto address = m.cluster_address;
  auto started = clock_type::now();
  self->request(spawn_connector(self), s.cfg.request_timeout * 2, connect_atom::value, host, port)
      .then([self, node_id](const caf::actor& agent) { greet(self, node_id, agent); },
            [self, node_id, address, started](caf::error& err) {
              auto& peer = self->state.peers[node_id];
              peer.connecting = false;
              auto now = clock_type::now();
              if (!peer.refused_since && co::is_refusal(signals_of(peer), started, now)) {
                // Its connection was lost and nothing listens now: the process is gone. The
                // controller fails its shards over (or the others depose it) this very round.
                peer.refused_since = now;
                self->state.log->warn(
                    "node={} {} refused a new connection after its connection was lost: "
                    "suspected at once",
                    me(self), node_id);
                controller_round(self);
              }
              if (peer.failures++ % 20 == 0)
                self->state.log->warn("node={} cannot connect to {} at {} ({} attempts): {}",
                                      me(self), node_id, address, peer.failures,
                                      caf::to_string(err));
            });
}

}  // namespace

void connect_members(self_ptr self) {
  auto& s = self->state;
  if (!s.state)
    return;
  for (const auto& m : s.state->members)
    if (m.node_id != me(self) && (s.peers.count(m.node_id) || s.peers.size() < max_peers))
      connect_peer(self, m);
}

peer_info answer_hello(self_ptr self, const std::string& from) {
  // The caller reached us: reach it back over the same connection, not a new one of ours.
  auto& st = self->state;
  auto caller = caf::actor_cast<caf::actor>(self->current_sender());
  auto p = st.peers.find(from);
  bool known = p != st.peers.end() && p->second.agent && !p->second.supervisors.empty();
  if (caller && !known && !from.empty() && from.size() <= 64 && from != me(self) &&
      (p != st.peers.end() || st.peers.size() < max_peers))
    greet(self, from, caller);
  return peer_info{st.cfg.node_id, st.hooks.supervisors, st.replica_follower};
}

void peer_down(self_ptr self, const caf::actor_addr& source) {
  auto& st = self->state;
  std::vector<std::string> lost;
  for (auto& [id, p] : st.peers)
    if (p.agent && p.agent.address() == source) {
      st.log->warn("node={} lost the connection to {}", me(self), id);
      p.agent = nullptr;
      p.supervisors.clear();
      p.replica = nullptr;
      p.connecting = false;
      p.awaited_since.reset();  // both ends notice the loss: the lower id dials again first
      if (!p.down_since)
        p.down_since = clock_type::now();
      lost.push_back(id);
    }
  publish_routes(self);
  publish_replication(self);
  // Is it gone? A refused TCP connect (its process died) makes it suspect at once, whichever
  // side dials the pair's next connection.
  for (const auto& id : lost)
    probe_lost_peer(self, id);
  connect_members(self);
}

co::peer_signals signals_of(const peer& p) {
  co::peer_signals out;
  out.connected = static_cast<bool>(p.agent);
  out.down_since = p.down_since;
  out.silent_since = p.silent_since;
  out.refused_since = p.refused_since;
  return out;
}

}  // namespace ordermesh::cluster::agent
