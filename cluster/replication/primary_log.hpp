#pragma once
// The primary's side of a shard's replicated log, as a pure state machine: what is durable on
// the primary, what each replica acknowledged at this epoch, which positions are committed
// (may be acknowledged to clients), which ISR change to propose, and when a read may be
// answered. Time is injected; nothing here sends, stores or waits.
//
// The rules (docs/REPLICATION.md):
//  - Position p commits once it is durable on the primary and acknowledged at this epoch by
//    every member of the ISR, and only while the ISR as etcd holds it has >= min_insync
//    members. Below that nothing new commits and writes answer `unavailable`.
//  - The ISR that commits rely on is the "maximal" one: the ISR etcd holds plus any member
//    whose entry is proposed but not yet landed. A removal counts only after its txn landed
//    (isr_changed(..., true)): until then the member's acks are still required, so no ack ever
//    relies on a smaller set than etcd records. An addition counts from its proposal on: the
//    member held every committed position when proposed, and from then on every commit waits
//    for it, so the moment the txn lands etcd's ISR holds every committed position.
//  - A member that is behind by more than max_lag_positions, or has not been caught up for
//    max_lag_time, or has not answered at all for max_silence, is proposed for removal, unless that
//    would leave fewer than min_insync: then it stays (it still holds everything committed, so it
//    stays a safe failover choice) and writes answer `unavailable` until it catches up or leaves by
//    another way.
//    Nor is one removed while the members that answer at all are fewer than min_insync (writes
//    are refused at once then): removing it would not let writes resume, and a primary that
//    hears from none of its followers is the one likely cut off (the others replace it; its
//    removals would leave them no ISR to promote).
//  - A replica outside the ISR that holds every committed position and is within the lag
//    bound is proposed for re-entry. One proposal is in flight at a time.
//  - A read is answered once every member of the maximal ISR acknowledged, at this epoch, a
//    round sent after the read arrived, and what the read saw is committed (the read barrier).
#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "cluster/replication/epoch_history.hpp"

namespace ordermesh::cluster::replication {

using clock_time = std::chrono::steady_clock::time_point;

struct primary_config {
  uint16_t min_insync = 2;
  position max_lag_positions = 1000;
  std::chrono::milliseconds max_lag_time{10000};
  /// A member not heard from (no ack of an append or a heartbeat) for this long lags, even if
  /// its last ack was the whole log: a dead follower of an idle shard leaves the ISR too, and
  /// reads (which need every member's answer) stop waiting for it. 0: off (the primary sends
  /// no heartbeats).
  std::chrono::milliseconds max_silence{0};
};

/// A change of the ISR for the primary to write to etcd: the whole new set, as one txn guarded
/// by the shard key's mod revision and the primary's incarnation.
struct isr_change {
  std::vector<std::string> isr;  // primary first, then the others in replica order
  enum class kind : uint8_t { shrink, expand } what = kind::shrink;
  std::string member;  // the one removed or added
  /// expand: the incarnation `member` acknowledged under, for its ISR entry. Taken from the
  /// acks, not from its member record: a node that restarted (maybe with a wiped disk) after
  /// its last ack must not enter the ISR under its new life on the strength of the old one's.
  int64_t incarnation = 0;
};

enum class write_status : uint8_t {
  ok,           // append: the ISR is large enough and every member keeps up
  unavailable,  // |ISR| < min_insync, or a member lags and removing it would go below it
};

/// A read's wait: the round its barrier needs and the position its answer reflects.
struct read_ticket {
  uint64_t round = 0;
  position reflects = 0;
};

class primary_log {
 public:
  /// This node leads at `epoch`: `replicas` and `isr` as etcd holds them (both include `self`),
  /// its log ending at `log_end` (all durable), `committed` the highest position it knows was
  /// committed. Replicas are presumed caught up at `now` for the lag clock.
  primary_log(std::string self, epoch_number epoch, std::vector<std::string> replicas,
              std::vector<std::string> isr, position log_end, position committed,
              primary_config config, clock_time now);

  const std::string& self() const { return self_; }
  epoch_number epoch() const { return epoch_; }
  position log_end() const { return end_; }
  position committed() const { return committed_; }
  const std::vector<std::string>& isr() const { return isr_; }
  /// The ISR commits wait for: etcd's plus a pending addition.
  std::vector<std::string> required() const;
  const std::optional<isr_change>& pending() const { return pending_; }

  /// Whether a new write may be appended now.
  write_status can_write(clock_time now) const;

  /// The primary's own batch up to `p` is durable (positions are appended in order: p is the
  /// next end). Returns the committed position after it.
  position local_durable(position p, clock_time now);

  /// `node`, in its life `incarnation`, acknowledged at `epoch` that its log holds, durably and
  /// matching ours, every position up to `end`, in answer to `round`. Ignored (returns false)
  /// for another epoch, a node that is not a replica, or an end beyond our log. An ack from a
  /// new life of the node replaces what the old one said (its disk may have been wiped).
  /// Returns true if it was taken.
  bool ack(const std::string& node, int64_t incarnation, epoch_number epoch, position end,
           uint64_t round, clock_time now);

  /// `node`, in its life `incarnation`, answered a heartbeat of `round` at `epoch`: alive, and it
  /// had not seen a newer epoch. Says nothing new about its log. Counts (true) only for a
  /// replica that has acknowledged at this epoch in this same life.
  bool heard(const std::string& node, int64_t incarnation, epoch_number epoch, uint64_t round,
             clock_time now);

  /// The connection to `node` dropped. An unreachable member lags at once: it is proposed for
  /// removal without waiting for the lag timeout (a killed follower would otherwise hold every
  /// commit of the shard that long). Its next answer (ack or heartbeat) clears it.
  void connection_lost(const std::string& node);

  /// While `held`, no member is proposed for removal (additions still are): this node reaches
  /// no majority of the members (cut off, coordination/suspicion.hpp), so the silence of its
  /// followers says more about its own links than about them, and the members that reach each
  /// other replace it as primary instead. Removing the healthy followers first would leave the
  /// shard's next primary with a smaller ISR (writes paused until the other catches up), or none
  /// to promote. Availability only: a held removal keeps requiring acks, never fewer.
  void hold_removals(bool held) { removals_held_ = held; }

  /// The ISR change to write now, if any (none while one is in flight). The caller writes it
  /// and reports the outcome with isr_changed; an outcome it does not know (etcd unavailable)
  /// it finds out by reading before it reports.
  std::optional<isr_change> propose(clock_time now);

  /// The outcome of the proposed change: landed in etcd, or refused. Commits are recomputed.
  void isr_changed(bool landed);

  /// The shard's key as read from etcd at this same epoch, at a revision newer than the guard
  /// of our pending change (so that change has landed, and shows here, or can no longer land).
  /// Others only remove at the same epoch (the controller dropping a replica,
  /// docs/REPLICATION.md). Never call it with a read that predates a pending change's outcome.
  void store_changed(std::vector<std::string> replicas, std::vector<std::string> isr,
                     clock_time now);

  /// The round to stamp on the next message to the replicas (appends and heartbeats).
  uint64_t next_round() { return ++round_; }

  /// A read arrived now: its answer reflects the log up to log_end().
  read_ticket begin_read() const { return {round_ + 1, end_}; }
  /// The read may be answered.
  bool read_ready(const read_ticket& t) const;

 private:
  struct follower {
    position acked = 0;
    bool acked_this_epoch = false;
    int64_t incarnation = 0;
    uint64_t round = 0;      // the newest round it answered (acks and heartbeats): reads
    uint64_t ack_round = 0;  // the newest round of an ack: orders what acks say of the log
    clock_time caught_up_at{};
    clock_time heard_at{};
    bool unreachable = false;
  };
  bool in(const std::vector<std::string>& set, const std::string& node) const;
  /// How many ISR members other than this one are silent at `now`: unreachable, or not heard
  /// from for max_silence (slow ones answer, so they do not count).
  size_t silent_members(clock_time now) const;
  bool lagging(const follower& f, clock_time now) const;
  void recompute();

  std::string self_;
  epoch_number epoch_;
  std::vector<std::string> replicas_;
  std::vector<std::string> isr_;
  position end_;
  position committed_;
  primary_config config_;
  uint64_t round_ = 0;
  std::map<std::string, follower> followers_;  // every replica but self (bounded by the RF)
  std::optional<isr_change> pending_;
  bool removals_held_ = false;
};

}  // namespace ordermesh::cluster::replication
