#pragma once
// Internal: the single writer thread. It takes everything queued (up to max_batch_writes), commits
// it as one RocksDB WriteBatch with one fsync, then runs the callbacks in submission order. While
// one batch syncs the next one queues up, so batches grow with load.
//
// Shard checks: each entry is checked against the shard table when submitted and again when its
// batch is taken, just before the commit. A shard released in between (release_shard flips the
// table before queuing its own record) thus never gets the write; the entry fails alone.
//
// Replica positions: every batch that writes entity records of a shard advances that shard's
// position by one and writes its replica record in the same WriteBatch, so the position on disk
// is always that of the last committed batch. With a replication sink, the batch's callbacks are
// held (with those of every later batch, to keep submission order) until the sink answers, except
// those of meta records and shard imports/deletes, answered once synced (hold_or_notify); at
// most max_unacked_batches are held, then the writer takes only replica operations (their own
// lane) until the oldest held batch is answered.
#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>
#include <vector>

#include <rocksdb/db.h>

#include "persistence/shard_table.hpp"
#include "persistence/storage_engine.hpp"
#include "persistence/write_queue.hpp"

namespace ordermesh::persistence::detail {

class group_commit {
 public:
  /// Starts the writer thread. `db` and `shards` must outlive this object. `replicas`: every
  /// replica record on disk, with the fence already raised to each shard's ownership epoch.
  group_commit(rocksdb::DB& db, const shard_table& shards, const storage_options& opts,
               std::unordered_map<uint16_t, replica_state> replicas);
  /// Same as stop().
  ~group_commit();

  group_commit(const group_commit&) = delete;
  group_commit& operator=(const group_commit&) = delete;

  /// Checks and queues `w`; on refusal (malformed, wrong shard epoch or owner, full, failed,
  /// closed) returns false, leaves `w` untouched (its callback is not run) and sets *why. Meta
  /// puts pass `bounded = false`: they are rare and must not be shed under load. Applies and
  /// fences go to the replica lane.
  bool submit(pending_write& w, bool bounded, status* why);

  /// Refuses new writes, commits everything queued, waits for the sink's answer to every held
  /// batch, runs the callbacks, joins. Idempotent.
  void stop();

  status health() const;
  storage_stats stats() const;
  /// True on the writer thread, i.e. inside a write callback.
  bool on_writer_thread() const;

  /// The shard's replica state as last committed. Thread-safe.
  replica_state replica(uint16_t shard) const;
  /// Raises the shard's in-memory fence to `epoch` (own_shard, from its on_commit hook: the
  /// ownership record that persists it is committed). Writer thread only.
  void raise_fence(uint16_t shard, uint64_t epoch);

 private:
  /// A committed (or failed) batch whose callbacks wait for the sink's answer, or for an older
  /// held batch's.
  struct held_batch {
    std::vector<pending_write> entries;
    status result;                  // of the commit
    std::shared_ptr<ack_slot> ack;  // null: nothing of it was replicated, nothing to wait for
  };
  /// What one batch does to one shard's replica state, until the batch is committed.
  struct staged_replica {
    uint16_t shard = 0;
    replica_state state;
    bool dirty = false;          // the replica record must be written
    bool by_replica_op = false;  // dirtied by a replica operation or a drop: written always
    bool advanced = false;       // entity records written: position + 1, a delta for the sink
    uint64_t prev_epoch = 0;
    std::vector<replica_record> records;  // captured for the sink
  };

  void run();
  /// Why `w` may not be written now (shard epoch or ownership), or ok. Meta puts: always ok.
  status check_shard(const pending_write& w) const;
  /// Checks, writes one batch, runs its on_commit hooks; updates health on failure. Returns the
  /// outcome shared by all its entries (each entry may also carry its own refusal). The deltas
  /// for the sink are left in deltas_.
  status commit(std::vector<pending_write>& batch, status& failure);
  /// Writes one batch and updates the stats and replica states.
  status write(std::vector<pending_write>& batch);
  staged_replica& stage(uint16_t shard);
  /// Holds a main batch (and hands its deltas to the sink), or notifies it now if nothing is
  /// held and nothing was replicated.
  void hold_or_notify(std::vector<pending_write>& batch, const status& result);
  /// Runs the callbacks of held batches from the oldest, up to the first not yet answered.
  void release_answered();
  /// `result` to each entry's callback; with `local` set, that to the entries that are this
  /// node's own business (meta records, shard imports and deletes): written here, they never
  /// waited for the replicas, and an `unavailable` from them would leave a done change undone.
  static void notify(std::vector<pending_write>& batch, const status& result,
                     const status* local = nullptr);

  rocksdb::DB& db_;
  const shard_table& shards_;
  const bool check_epochs_;
  const bool sync_;
  const bool persist_positions_;
  const size_t max_batch_writes_;
  const std::optional<uint64_t> fail_writes_after_;
  const std::shared_ptr<replication_sink> sink_;
  const size_t max_held_;
  /// Shared with the sink's done callbacks, which may run after a batch is released.
  const std::shared_ptr<write_queue> queue_;

  mutable std::mutex health_mutex_;
  status health_;  // first write error, for good

  mutable std::mutex replica_mutex_;  // written on the writer thread only, read anywhere
  std::unordered_map<uint16_t, replica_state> replicas_;

  // Writer thread only.
  std::vector<staged_replica> staged_;
  std::vector<uint32_t> staged_index_;  // by shard: index + 1 into staged_, 0: not staged
  std::vector<shard_delta> deltas_;
  std::deque<held_batch> held_;
  uint64_t attempted_batches_ = 0;

  std::atomic<uint64_t> writes_{0};
  std::atomic<uint64_t> batches_{0};
  std::atomic<uint64_t> events_{0};
  std::atomic<uint64_t> bytes_{0};
  std::atomic<uint64_t> max_batch_{0};
  std::atomic<uint64_t> refused_{0};
  std::atomic<uint64_t> refused_at_commit_{0};
  std::atomic<uint64_t> held_count_{0};
  std::atomic<uint64_t> replicated_{0};
  std::atomic<uint64_t> replication_errors_{0};
  std::atomic<uint64_t> applied_{0};

  std::thread thread_;  // last member: starts once everything above exists
};

}  // namespace ordermesh::persistence::detail
