#pragma once
// Which end of a pair of members dials their cluster connection, and when: a pure state machine
// with a hand-moved clock, so unit tests drive it without sockets. The member with the lower id
// dials at once; the higher id dials only after waiting `grace` for it, as a fallback (the
// lower id may not reach the higher's address). Both dialing at once must be rare: CAF 0.17's
// BASP then holds two connections between the same two nodes, drops one of them, and the
// dial on it waits out the cluster handshake deadline (about 5 s measured,
// scripts/bench/reconnect_times.py). So the higher id waits again whenever the lower id starts
// a new life (it dials as it comes up) and after each of its own dials that failed (a member
// that is down is dialed once per grace, not on every round, so its restart meets no dial).
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

namespace ordermesh::cluster::coordination {

using dial_clock = std::chrono::steady_clock;

/// What the higher id of a pair remembers while it waits for the lower id to dial.
struct dial_wait {
  /// Since when it waits (unset: not waiting yet; set at the first look).
  std::optional<dial_clock::time_point> since;
  /// The lower id's incarnation (its life, from its member record) when the wait began.
  int64_t incarnation = 0;
};

/// Whether `self_id` dials `peer_id` (incarnation `peer_incarnation`) now, with no connection
/// between them and none being made: always when self has the lower id; otherwise once `grace`
/// has passed since the wait began, which a new incarnation of the peer starts again.
bool should_dial(const std::string& self_id, const std::string& peer_id, int64_t peer_incarnation,
                 dial_wait& wait, dial_clock::time_point now, std::chrono::milliseconds grace);

/// A dial by `self_id` failed at `now`: the higher id of the pair waits a whole grace again.
void dial_failed(const std::string& self_id, const std::string& peer_id, dial_wait& wait,
                 dial_clock::time_point now);

/// The pair's connection was made or lost: the next wait starts afresh (on a loss both ends
/// notice it, and the lower id dials again first).
void reset_dial_wait(dial_wait& wait);

}  // namespace ordermesh::cluster::coordination
