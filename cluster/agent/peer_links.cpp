// Connections to the other members' agents over CAF's BASP: one per member, made by the member
// with the lower id (the other dials only when that has not happened within dial_grace:
// cluster/coordination/dial_order.hpp) and reused by the other. Over it the two agents say hello,
// and each proves its id to the other (cluster/identity/peer_proof.hpp: the dialed node first, then
// the dialer); only then does each register the other's supervisors and replica follower, which is
// all routing and replication need.
#include <algorithm>

#include <spdlog/logger.h>
#include <caf/all.hpp>
#include <caf/io/all.hpp>

#include "cluster/agent/agent_state.hpp"
#include "observability/registry.hpp"

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

/// ordermesh_peer_proofs_refused_total: hellos whose proof of identity failed, either side.
om::obs::counter& proofs_refused() {
  static auto& c = om::obs::registry::global()
                       .counters("ordermesh_peer_proofs_refused_total",
                                 "Cluster hellos refused because the peer did not prove the node "
                                 "id it claims (certificate, name or signature)")
                       .with({});
  return c;
}

/// A peer claiming `claimed` failed its proof: counted, and logged at most once per claimed id
/// per refusal_log_interval (a peer retrying every second must not flood the log).
void refuse(self_ptr self, const std::string& claimed_raw, const char* side,
            const std::string& why) {
  proofs_refused().inc();
  // The id (and a reason quoting the peer) is the peer's text: no control characters reach the
  // log.
  std::string claimed = claimed_raw.substr(0, identity::max_node_id_bytes);
  std::string reason = why;
  for (auto* text : {&claimed, &reason})
    for (auto& c : *text)
      if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f)
        c = '?';
  uint64_t suppressed = 0;
  auto& s = self->state;
  if (!s.refusal_log.allow(claimed, clock_type::now(), &suppressed))
    return;
  s.log->error("node={} refused a peer claiming to be {} ({}): proof of identity failed: {}{}",
               me(self), claimed, side, reason,
               suppressed ? " (" + std::to_string(suppressed) + " more since the last line)" : "");
}

/// `node_id` proved its id: its agent, supervisors and follower become this node's routes.
void register_peer(self_ptr self, const std::string& node_id, const caf::actor& agent,
                   const peer_info& info) {
  auto& p = self->state.peers[node_id];
  if (p.agent != agent)
    self->monitor(agent);
  self->state.proven->set(agent.node(), node_id);
  p.agent = agent;
  p.supervisors = info.supervisors;
  p.replica = info.replica;
  p.connecting = false;
  p.failures = 0;
  p.down_since.reset();
  p.silent_since.reset();
  p.refused_since.reset();
  co::reset_dial_wait(p.awaited);
  p.proof_refused_at.reset();
  self->state.log->info("node={} connected to {} (id proven)", me(self), node_id);
  publish_routes(self);
  publish_replication(self);
}

peer_info my_info(self_ptr self) {
  auto& st = self->state;
  return peer_info{st.cfg.node_id, st.hooks.supervisors, st.replica_follower};
}

/// The dialer's side: hello with our challenge; check the dialed node's proof (it must be
/// `node_id`, published at `address`, the one we dialed); then prove ours and hand over our
/// actors; register its actors from the answer.
void greet(self_ptr self, const std::string& node_id, const std::string& address,
           caf::actor agent) {
  auto& s = self->state;
  auto mine = s.prover->challenge();
  auto fail = [self, node_id](const std::string& why) {
    refuse(self, node_id, "dialed by this node", why);
    auto& p = self->state.peers[node_id];
    p.connecting = false;
    p.proof_refused_at = clock_type::now();
  };
  self->request(agent, hello_timeout, hello_atom::value, s.cfg.node_id, mine)
      .then(
          [self, node_id, address, agent, mine, fail](const std::string& answered_as,
                                                      const std::string& theirs,
                                                      const identity::identity_proof& proof) {
            auto& st = self->state;
            if (answered_as != node_id)
              return fail("the node at " + address + " answered as '" + answered_as.substr(0, 64) +
                          "'");
            identity::proof_context ctx{
                identity::proof_role::dialed, node_id, me(self), address, mine, theirs};
            if (auto why = identity::check_proof(*st.prover, proof, ctx); !why.empty())
              return fail(why);
            ctx.role = identity::proof_role::dialer;
            ctx.prover_id = me(self);
            ctx.verifier_id = node_id;
            identity::identity_proof own;
            std::string why;
            if (!identity::make_proof(*st.prover, ctx, &own, &why)) {
              st.log->error("node={} cannot prove its id to {}: {}", me(self), node_id, why);
              st.peers[node_id].connecting = false;
              return;
            }
            self->request(agent, hello_timeout, hello_proof_atom::value, st.cfg.node_id, own,
                          my_info(self))
                .then([self, node_id,
                       agent](const peer_info& info) { register_peer(self, node_id, agent, info); },
                      [self, node_id](caf::error& err) {
                        auto& ss = self->state;
                        ss.peers[node_id].connecting = false;
                        uint64_t suppressed = 0;
                        // Rate-limited like a refusal of ours (a key no peer id can take).
                        if (ss.refusal_log.allow("\n" + node_id, clock_type::now(), &suppressed))
                          ss.log->warn("node={} {} did not accept this node's proof: {}", me(self),
                                       node_id, caf::to_string(err));
                      });
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
  // Whoever answered at its address did not prove to be it: not dialed again before
  // redial_after_refusal (each try costs a signature and a verification on both sides).
  if (p.proof_refused_at && clock_type::now() - *p.proof_refused_at < redial_after_refusal)
    return;
  // Of the pair, the lower id dials; this node waits for it first if its id is the higher.
  if (!co::should_dial(me(self), m.node_id, m.incarnation, p.awaited, clock_type::now(),
                       dial_grace))
    return;
  std::string host;
  uint16_t port;
  if (!split_host_port(m.cluster_address, host, port))
    return;
  p.connecting = true;
  auto node_id = m.node_id;
  auto address = m.cluster_address;
  auto started = clock_type::now();
  self->request(spawn_connector(self), s.cfg.request_timeout * 2, connect_atom::value, host, port)
      .then(
          [self, node_id, address](const caf::actor& agent) {
            auto& peer = self->state.peers[node_id];
            // The very proxy whose loss this node saw: CAF's middleman answered from its cache
            // of connected endpoints before it saw the loss, and a hello to it would go
            // nowhere; the next round dials anew. Compared as objects, not addresses: after a
            // partition heals, the same peer process answers through a new proxy with the same
            // address (node and actor id), which is a live connection.
            if (caf::actor_cast<caf::actor_control_block*>(agent) ==
                caf::actor_cast<caf::actor_control_block*>(peer.lost_agent)) {
              peer.connecting = false;
              self->state.log->debug(
                  "node={} dialing {} gave its lost connection back; again "
                  "next round",
                  me(self), node_id);
              return;
            }
            greet(self, node_id, address, agent);
          },
          [self, node_id, address, started](caf::error& err) {
            auto& peer = self->state.peers[node_id];
            peer.connecting = false;
            auto now = clock_type::now();
            co::dial_failed(me(self), node_id, peer.awaited, now);
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
                                    me(self), node_id, address, peer.failures, caf::to_string(err));
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

sender_kind sender_of(self_ptr self, std::string* member) {
  return classify_sender(self->current_sender(), self->node(), *self->state.proven, member);
}

caf::result<std::string, std::string, identity::identity_proof> answer_hello(
    self_ptr self, const std::string& from, const std::string& challenge) {
  auto& st = self->state;
  auto sender = self->current_sender();
  if (!sender || sender->node() == self->node())
    return caf::make_error(caf::sec::invalid_argument, "a hello comes from a peer's agent");
  auto claimed = from.substr(0, identity::max_node_id_bytes);
  if (auto bad = identity::check_peer_id(from, me(self)); !bad.empty()) {
    refuse(self, claimed, "dialed this node", bad);
    return caf::make_error(caf::sec::invalid_argument, bad);
  }
  if (auto bad = identity::check_challenge(challenge); !bad.empty()) {
    refuse(self, claimed, "dialed this node", bad);
    return caf::make_error(caf::sec::invalid_argument, bad);
  }
  auto p = st.peers.find(from);
  if (p == st.peers.end() && st.peers.size() >= max_peers)
    return caf::make_error(caf::sec::invalid_argument, "too many peers");
  identity::pending_challenges::entry e;
  e.claimed_id = from;
  e.dialer_challenge = challenge;
  e.dialed_challenge = st.prover->challenge();
  auto mine = e.dialed_challenge;
  if (!st.hellos.issue(caf::to_string(sender->node()), std::move(e), clock_type::now()))
    return caf::make_error(caf::sec::invalid_argument, "too many hellos waiting for a proof");
  identity::proof_context ctx{identity::proof_role::dialed, me(self),  from,
                              st.cfg.cluster_address,       challenge, mine};
  identity::identity_proof proof;
  std::string why;
  if (!identity::make_proof(*st.prover, ctx, &proof, &why)) {
    st.log->error("node={} cannot prove its id to {}: {}", me(self), from, why);
    return caf::make_error(caf::sec::runtime_error, "cannot prove its id");
  }
  return caf::result<std::string, std::string, identity::identity_proof>(
      st.cfg.node_id, std::move(mine), std::move(proof));
}

caf::result<peer_info> answer_proof(self_ptr self, const std::string& from,
                                    const identity::identity_proof& proof, peer_info& info) {
  auto& st = self->state;
  auto sender = self->current_sender();
  if (!sender || sender->node() == self->node())
    return caf::make_error(caf::sec::invalid_argument, "a proof comes from a peer's agent");
  auto claimed = from.substr(0, identity::max_node_id_bytes);
  // The challenge was issued to this CAF node (this connection) for this claimed id.
  auto e = st.hellos.take(caf::to_string(sender->node()), from, clock_type::now());
  if (!e) {
    refuse(self, claimed, "dialed this node", "no hello of its own waits for this proof");
    return caf::make_error(caf::sec::invalid_argument, "no hello waits for this proof");
  }
  identity::proof_context ctx{
      identity::proof_role::dialer, from, me(self), st.cfg.cluster_address, e->dialer_challenge,
      e->dialed_challenge};
  if (auto why = identity::check_proof(*st.prover, proof, ctx); !why.empty()) {
    refuse(self, claimed, "dialed this node", why);
    return caf::make_error(caf::sec::invalid_argument, "proof of identity refused");
  }
  if (info.node_id != from)
    return caf::make_error(caf::sec::invalid_argument, "its actors are announced under another id");
  register_peer(self, from, caf::actor_cast<caf::actor>(sender), info);
  return my_info(self);
}

void peer_down(self_ptr self, const caf::actor_addr& source) {
  auto& st = self->state;
  std::vector<std::string> lost;
  st.proven->erase(source.node());
  for (auto& [id, p] : st.peers)
    if (p.agent && p.agent.address() == source) {
      st.log->warn("node={} lost the connection to {}", me(self), id);
      p.lost_agent = p.agent.address();
      p.agent = nullptr;
      p.supervisors.clear();
      p.replica = nullptr;
      p.connecting = false;
      co::reset_dial_wait(p.awaited);  // both ends notice the loss: the lower id dials first
      // Silent before its link was dropped (a partition: the kernel gives up on the link
      // after --suspect-after x 2), it has been unreachable since the first unanswered ping.
      if (!p.down_since)
        p.down_since =
            p.silent_since ? std::min(*p.silent_since, clock_type::now()) : clock_type::now();
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
