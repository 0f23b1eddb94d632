#pragma once
// The member agent's state and the roles that act on it, one file each (cluster/agent/):
//   member_agent.cpp       the actor: its messages, membership (cluster id, leave), status
//   shard_routes.cpp       where each shard's messages go on this node
//   peer_links.cpp         connections to the other members' agents (CAF BASP)
//   peer_probe.cpp         whether a member whose connection was lost is gone (TCP refusal)
//   shard_steps.cpp        runs the shard reconciler and carries out its steps
//   shard_copy.cpp         both ends of a handoff's copy, chunk by chunk
//   controller_duties.cpp  on the controller: bootstrap the shard map, write move intents,
//                          fail over the shards of a member that is gone (replicated clusters)
//   replication_view.cpp   tells the replica leader (replication_roles.hpp) the shard map
// The decisions are pure functions elsewhere (cluster/coordination/shard_reconciler.hpp,
// placement.hpp); these files only carry them out. Internal to ordermesh_cluster.
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <caf/actor.hpp>
#include <caf/atom.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/response_promise.hpp>
#include <caf/stateful_actor.hpp>

#include "cluster/agent/proven_peers.hpp"
#include "cluster/agent/replication_roles.hpp"
#include "cluster/coordination/dial_order.hpp"
#include "cluster/coordination/shard_reconciler.hpp"
#include "cluster/coordination/suspicion.hpp"
#include "cluster/coordination_driver.hpp"
#include "cluster/identity/peer_proof.hpp"
#include "cluster/member_agent.hpp"

namespace ordermesh::cluster::agent {

namespace co = coordination;
using clock_type = std::chrono::steady_clock;
using handoff = co::local_shard::handoff;

// ---- agent <-> agent (BASP) ----
/// (shard, move_revision, first, records, done) -> bool: one chunk of a shard's copy.
using copy_atom = caf::atom_constant<caf::atom("m_copy")>;
// ---- to itself ----
using next_chunk_atom = caf::atom_constant<caf::atom("m_next")>;    // (shard, after_key)
using imported_atom = caf::atom_constant<caf::atom("m_imported")>;  // (import id, ok)
using tick_atom = caf::atom_constant<caf::atom("m_tick")>;
using probe_again_atom = caf::atom_constant<caf::atom("m_reprobe")>;  // (node id, tries left)
using watch_atom = caf::atom_constant<caf::atom("m_watch")>;

constexpr size_t max_peers = 1024;
constexpr std::chrono::milliseconds tick_interval{500};
/// Pings and suspicion between ticks (member_agent.cpp, watch()): how late after
/// --suspect-after a silent member is acted on.
constexpr std::chrono::milliseconds watch_interval{100};
/// Of two members the one with the lower id dials; the other dials only after waiting this long
/// for it. When both dial at once, CAF's BASP ends up with two connections between the pair and
/// drops both; with TLS, whose handshakes are slower, the two overlap almost every time.
constexpr std::chrono::milliseconds dial_grace{1500};
constexpr std::chrono::milliseconds campaign_interval{1000};
/// How long the cluster stays settled (every ISR complete, nobody suspected) before the
/// controller moves leadership only to balance it (cluster/replication/leadership_rebalance.hpp).
constexpr std::chrono::milliseconds leadership_rebalance_delay{5000};
/// The hello and the proof are one round trip each on a connection just made: an answer this late
/// means the connection is already gone, and a new dial costs less than waiting out the agent's
/// request timeout (5 s), which a restarted peer otherwise waited before it was connected again.
constexpr std::chrono::milliseconds hello_timeout{2000};
/// Hellos answered whose proof has not come back yet: one per connecting node, this many in all,
/// each for at most hello_ttl (peer_links.cpp).
constexpr size_t max_pending_hellos = 64;
constexpr std::chrono::seconds hello_ttl{30};
/// A refused proof is logged at most once per claimed id per this long (and always counted).
constexpr std::chrono::seconds refusal_log_interval{30};
/// A member whose address answered with a failed proof is dialed again after this long.
constexpr std::chrono::seconds redial_after_refusal{5};

struct peer {
  caf::actor agent;
  std::vector<caf::actor> supervisors;
  caf::actor replica;  // its replica follower
  bool connecting = false;
  uint32_t failures = 0;  // connection attempts failed in a row; logged first and every 20th
  /// When its connection was lost (unset: connected, or never connected yet): the controller
  /// suspects a member whose connection stays down (member_agent_config::suspect_after).
  std::optional<clock_type::time_point> down_since;
  /// Since when the controller's pings to it go unanswered (unset: it answered the last one): a
  /// connected member silent for suspect_after is suspected too (a paused or cut-off node keeps
  /// its connection).
  std::optional<clock_type::time_point> silent_since;
  /// When a reconnect after a lost connection was refused at once (its process is gone): it is
  /// suspected without waiting for suspect_after (cluster/coordination/suspicion.hpp).
  std::optional<clock_type::time_point> refused_since;
  bool ping_in_flight = false;
  /// The proxy of its agent on the connection lost last: CAF's middleman may still hand that
  /// proxy out from its cache of endpoints for a moment after the loss (never an answer). A weak
  /// reference, which keeps the proxy's control block, so no new proxy can share its address
  /// in memory.
  caf::actor_addr lost_agent;
  /// This node's wait for the member (a lower id: it dials) to connect to it, rather than
  /// dialing at the same time (see dial_grace).
  co::dial_wait awaited;
  /// When the node at its address last failed to prove it is this member (see
  /// redial_after_refusal).
  std::optional<clock_type::time_point> proof_refused_at;
};

/// What `p`'s connection shows, for the suspicion rules (cluster/coordination/suspicion.hpp).
co::peer_signals signals_of(const peer& p);

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
  std::shared_ptr<identity::identity_prover> prover;  // never null once started
  identity::pending_challenges hellos{max_pending_hellos, hello_ttl};
  identity::refusal_log_limiter refusal_log{max_peers, refusal_log_interval};
  /// Which member each connected CAF node proved to be (shared with the replica follower).
  std::shared_ptr<proven_peers> proven = std::make_shared<proven_peers>();
  std::vector<co::local_shard> local;
  std::vector<bool> busy;                                     // a step in flight, per shard
  std::map<uint16_t, clock_type::time_point> waiting_target;  // send waiting for a connection
  std::map<uint16_t, outgoing_copy> outgoing;
  std::map<uint64_t, pending_import> imports;
  uint64_t next_import = 0;
  std::map<uint16_t, int64_t> intents;    // controller: shard -> revision its intent was based on
  std::map<uint16_t, int64_t> failovers;  // controller: shard -> revision a failover was based on
  std::map<uint16_t, int64_t> replica_steps;  // controller: shard -> revision a replica move was on
  bool waiting_logged = false;                // controller: "waiting for N members" said once
  /// Controller of a cluster without a shard map: since when too few members for the
  /// replication factor have joined (--bootstrap-grace counts from then).
  std::optional<clock_type::time_point> bootstrap_wait_since;
  /// Controller: since when every ISR has been complete with nobody suspected (unset: not now);
  /// leadership moves only to balance it after leadership_rebalance_delay of that.
  std::optional<clock_type::time_point> settled_since;
  std::set<std::string> departures_asked;  // controller: "<kind>/<node>" writes in flight
  // Replication (null without a replica sink: a node alone).
  replication_context_ptr repl;
  caf::actor replica_leader;
  caf::actor replica_follower;
  caf::actor replica_forgetter;  // deletes the copies of shards this node no longer replicates
  std::map<uint16_t, uint64_t> prepared;  // shard -> epoch its promotion pulled the ISR's tails
  bool campaigning = false;
  clock_type::time_point last_campaign{};
  bool deposing = false;                 // a depose of a silent controller is in flight
  clock_type::time_point last_depose{};  // at most one per suspect_after
  bool suspicions_held = false;          // suspects, but no majority reached: logged once per spell
  /// Reaches no majority of the members alive (co::is_cut_off; refresh_cut_off): its ISRs keep
  /// their silent followers and it campaigns only once no controller was seen for suspect_after.
  bool cut_off = false;
  /// The members suspected at the last refresh_cut_off (silent or gone): unreachable in the
  /// replication view, and no forwards go to them (shard_routes.cpp).
  std::set<std::string> suspected;
  std::optional<clock_type::time_point> no_controller_since;  // the store names no controller
  bool bootstrapping = false;
  bool leaving = false;
  bool leave_sent = false;
  bool draining = false;  // drain_atom: its leadership moves away (member_record::draining)
  bool drained_said = false;
  bool refused = false;
  bool disk_checked = false;  // the disk's cluster id matched the store's, or was recorded
  std::set<uint16_t> refused_shards;
  std::vector<co::step> last_step;  // per shard, for the debug log of decisions
  static inline const char* name = "ordermesh.member_agent";
};
using self_ptr = caf::stateful_actor<agent_state>*;

inline const std::string& me(self_ptr self) {
  return self->state.cfg.node_id;
}

inline bool lease_ok(self_ptr self) {
  return clock_type::now() < self->state.lease_until;
}

/// True if `node_id` is a member in the latest state read from the store.
bool is_member(self_ptr self, const std::string& node_id);

// ---- shard_routes.cpp ----
/// Rebuilds where each shard's messages go and hands it to the node. Nothing is published
/// before the store holds a shard map.
void publish_routes(self_ptr self);

// ---- peer_links.cpp ----
/// Connects to every member not connected yet (bounded by max_peers).
void connect_members(self_ptr self);
/// A member's agent dialed us and says it is `from`: prove who we are over its challenge and
/// issue ours (nothing is registered yet).
caf::result<std::string, std::string, identity::identity_proof> answer_hello(
    self_ptr self, const std::string& from, const std::string& challenge);
/// The dialer's proof: checked against the challenge issued to its node; only then are its
/// actors registered under `from` and ours handed back.
caf::result<peer_info> answer_proof(self_ptr self, const std::string& from,
                                    const identity::identity_proof& proof, peer_info& info);
/// Where the message being handled came from (proven_peers.hpp); *member: a proven peer's id.
sender_kind sender_of(self_ptr self, std::string* member);
/// A connection ended (a down message from a peer's agent): its shards become unreachable.
void peer_down(self_ptr self, const caf::actor_addr& source);

/// Probes of a lost peer's cluster port (probe_lost_peer): the first at the loss, the others
/// this far apart while it is neither refused nor back.
constexpr int probe_tries = 3;
constexpr std::chrono::milliseconds probe_retry_delay{150};

/// One TCP connect to the cluster port of `node_id`, whose connection was lost: a refusal
/// makes it suspect at once (peer::refused_since) and runs the controller's round (peer_probe.cpp).
/// Not refused (yet: a dying process may still accept): tried again up to `tries_left` - 1 times.
void probe_lost_peer(self_ptr self, const std::string& node_id, int tries_left = probe_tries);

// ---- shard_steps.cpp ----
/// Runs the reconciler over the latest state and carries out every step not already in flight.
void reconcile(self_ptr self);

// ---- shard_copy.cpp ----
/// The primary's end: freeze the shard, release it (synced), copy it to step.peer in chunks.
void start_copy(self_ptr self, const co::shard_step& step);
/// Sends the shard's records after `after_key`, one chunk per round trip.
void send_chunk(self_ptr self, uint16_t shard, std::string after_key);
/// The copy of `shard` failed: the reconciler's next step aborts the move.
void fail_copy(self_ptr self, uint16_t shard, const std::string& why);
/// The target's end: one chunk arrives; answered once it is synced.
caf::result<bool> receive_copy(self_ptr self, uint16_t shard, int64_t revision, bool first,
                               std::vector<shard_record>& records, bool done);
/// A chunk's import finished (synced if ok).
void imported(self_ptr self, uint64_t import_id, bool ok);
/// A copy arriving for a move that no longer exists: discard it.
void cancel_receive(self_ptr self, uint16_t shard);

// ---- replication_view.cpp ----
/// Tells the replica leader the latest shard map, peers and incarnation, and the sink which
/// shards are replicated. Nothing without replication.
void publish_replication(self_ptr self);

// ---- controller_duties.cpp ----
/// One round of the controller's work (or a campaign when there is no controller).
void controller_round(self_ptr self);

// ---- cut_off.cpp ----
/// Recomputes whether this node is cut off (agent_state::cut_off), and whom it suspects
/// (agent_state::suspected), from the suspicion signals; on a change of either, tells the
/// replica leader (publish_replication), and logs a change of the first. In a replicated
/// cluster with suspicion on; elsewhere never cut off.
void refresh_cut_off(self_ptr self);

/// The operator's removal of a dead node (remove_member_atom, member_removal.cpp).
caf::result<std::string, std::string> remove_member(self_ptr self, const std::string& node);

}  // namespace ordermesh::cluster::agent
