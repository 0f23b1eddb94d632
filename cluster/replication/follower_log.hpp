#pragma once
// One replica's side of a shard's replicated log, as a pure state machine: the highest epoch it
// has seen, the epoch whose primary its log is known to follow, how far its log goes and which
// epoch wrote what. It decides what to do with a primary's announcement (truncate, or copy in
// full) and with each append (apply, ack again, refuse, ask for what is missing); the caller
// carries the decision out on its storage.
//
// The rules (docs/REPLICATION.md):
//  - Once a replica has seen epoch E (from etcd or from a primary), it refuses every message of
//    a lower epoch. A deposed primary therefore loses the ack of every replica that heard of
//    its successor, and the successor is one of the replicas it needs (failover promotes an
//    ISR member), so it can never complete a commit again.
//  - A replica takes appends of epoch E only after it cut its log to a prefix of E's primary's
//    log (sync, from the primary's announcement): a tail written under an older epoch and never
//    acknowledged goes at the epoch boundary, before anything of E is written after it.
//  - Within an epoch, positions are taken in order: a batch that starts beyond the log's end
//    asks for the gap; one that is already held is acknowledged again.
//
// Durability contract: every call that changes the state returns what the caller must make
// durable (the truncation, the batch, the seen epoch) together with state(), in one synced
// write, before it answers the primary. A crash before that restores the previous state, and
// every decision taken again from it is the same or safe (truncating to the same point twice,
// applying a batch twice, are no-ops).
#include <cstdint>
#include <string_view>

#include "cluster/replication/epoch_history.hpp"

namespace ordermesh::cluster::replication {

/// What a replica keeps of one shard's log, durably.
struct follower_state {
  epoch_number seen_epoch = 0;    // the highest epoch seen anywhere: nothing lower is taken
  epoch_number synced_epoch = 0;  // this log is a prefix of that epoch's primary's log
  position end = 0;               // the last position held (durable)
  position committed = 0;         // the highest committed position a primary told us (<= end)
  epoch_history history;          // which epoch wrote which of positions 1..end
};

/// A primary's first word to its replicas at its epoch, and its answer to an unsynced one.
struct announcement {
  epoch_number epoch = 0;
  position log_end = 0;   // the primary's log end when it sent this
  epoch_history history;  // its log's epochs, including its own start
};

/// Positions first..last, written at the epochs of the sender's history, sent at `epoch`.
/// An empty batch (last < first) is a heartbeat: it carries `commit` and a read-barrier round.
struct append_request {
  epoch_number epoch = 0;
  position first = 0;
  position last = 0;
  position commit = 0;  // the primary's committed position
};

enum class append_outcome : uint8_t {
  apply,        // write positions from..to (durably, with state()), then ack `ack`
  duplicate,    // everything in it is held: ack `ack` again, write nothing
  stale_epoch,  // a lower epoch than one seen: refuse (answer with seen_epoch), never ack
  gap,          // it starts beyond the log: ask the primary for positions from `from`
  unsynced,     // an epoch this log has not been cut for yet: ask for the announcement
};
std::string_view to_string(append_outcome o);

struct append_verdict {
  append_outcome outcome = append_outcome::stale_epoch;
  position from = 0;  // apply: first position to write; gap: first position needed
  position to = 0;    // apply: last position to write
  position ack = 0;   // apply, duplicate: the durable end to acknowledge
};

enum class sync_outcome : uint8_t {
  truncate,     // cut the log after `to` (nothing to cut when to == the old end), then ack `to`
  stale_epoch,  // an announcement of a lower epoch than one seen: refuse
  full_copy,    // the histories cannot be compared: replace the log by a copy of the primary's
};
std::string_view to_string(sync_outcome o);

struct sync_verdict {
  sync_outcome outcome = sync_outcome::stale_epoch;
  position to = 0;   // truncate: the new end
  bool cut = false;  // truncate: positions were removed (written under an older epoch)
};

enum class promote_outcome : uint8_t { ok, stale_epoch };

struct promote_verdict {
  promote_outcome outcome = promote_outcome::stale_epoch;
  announcement first_word;  // ok: what to send every replica
};

class follower_log {
 public:
  explicit follower_log(follower_state durable = {}) : s_(std::move(durable)) {}

  const follower_state& state() const { return s_; }

  /// Epoch `e` exists (read in etcd, or named by any message). Returns true if it is news: the
  /// caller persists state() before it answers anything else, so a restart still refuses lower
  /// epochs.
  bool observe_epoch(epoch_number e);

  /// A primary's announcement: raises the seen epoch and cuts the log to what it shares with
  /// the primary's. After truncate, the log follows `a.epoch`'s primary and appends of it apply.
  sync_verdict sync(const announcement& a);

  /// An append (or heartbeat). On apply the state already counts the batch: the caller writes
  /// it with state() in one synced batch before acking.
  append_verdict accept(const append_request& r);

  /// A full copy of the primary's log up to `a.log_end` replaced this log (the caller wrote it,
  /// durable). The log now follows `a.epoch` (refused, returning false, if a higher one was seen).
  bool install_copy(const announcement& a);

  /// This replica becomes the primary at `e` (etcd says so and it has observed it): its own log
  /// is the reference of the epoch from here. Its end is read after every apply in flight
  /// finished (the caller serializes both on the shard). Refused if a higher epoch was seen.
  /// Calling it again at the same epoch returns the same announcement (etcd names one primary
  /// per epoch, so a log synced at `e` can only be this node's own).
  promote_verdict promote(epoch_number e);

 private:
  follower_state s_;
};

}  // namespace ordermesh::cluster::replication
