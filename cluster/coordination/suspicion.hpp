#pragma once
// When a member suspects another of being down, from what its cluster connection shows: a pure
// function of the signals, so unit tests can drive it with a hand-moved clock. Suspicion only
// trades availability: acting on a wrong one costs a needless failover, never a lost write (a
// replaced primary cannot commit without its successor: docs/REPLICATION.md, "Failover").
#include <chrono>
#include <cstddef>
#include <optional>

namespace ordermesh::cluster::coordination {

using suspicion_clock = std::chrono::steady_clock;

/// What one member's connection to another shows.
struct peer_signals {
  bool connected = false;
  /// When the connection was lost (unset: connected, or never connected yet).
  std::optional<suspicion_clock::time_point> down_since;
  /// Since when pings over a live connection go unanswered (unset: the last one was answered).
  std::optional<suspicion_clock::time_point> silent_since;
  /// When, after the connection was lost, a new connection attempt was refused at once (nothing
  /// listens on its cluster port: its process is gone). Unset once a connection succeeds.
  std::optional<suspicion_clock::time_point> refused_since;
};

/// A connection attempt that fails faster than this was refused by the peer's host (a reset,
/// or an ICMP error), not lost on the way: a silent drop or an unreachable host takes the
/// connect timeout. On loopback a refusal takes well under a millisecond; the margin covers a
/// busy scheduler spawning the connecting thread.
inline constexpr std::chrono::milliseconds refusal_window{300};

/// Whether a connection attempt from `started` that failed at `failed` is a refusal that makes
/// the peer suspect at once: it failed within refusal_window, after its connection was lost. A
/// peer never connected before is not suspected by this rule (it may still be starting).
bool is_refusal(const peer_signals& p, suspicion_clock::time_point started,
                suspicion_clock::time_point failed);

/// Whether `p` is suspected at `now`: a connected peer silent for `suspect_after` (paused or cut
/// off: it keeps its connection); a disconnected one whose reconnect was refused (killed: at
/// once) or that stayed disconnected for `suspect_after`. suspect_after <= 0 disables all of it.
bool is_suspected(const peer_signals& p, suspicion_clock::time_point now,
                  std::chrono::milliseconds suspect_after);

/// Whether this node is cut off: of the `members` holding a lease (itself included), `silent`
/// are suspected but were not seen gone (silent, or disconnected for suspect_after: alive as far
/// as the store knows, so maybe it is this node's links that failed), and `gone` were seen gone
/// (a refused reconnect: their process died). Cut off when the members not seen gone that this
/// node still reaches are no majority of them. Two members with one silent: cut off (a partition
/// and a dead peer look the same until its lease expires); with one gone: not. A cut-off node
/// neither removes followers from its ISRs nor campaigns at once for controller: the members
/// that reach each other take its shards instead (docs/REPLICATION.md, "A node cut off").
bool is_cut_off(size_t members, size_t silent, size_t gone);

}  // namespace ordermesh::cluster::coordination
