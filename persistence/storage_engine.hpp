#pragma once
// One RocksDB per node: entity journals, snapshots, the wakeup index and node metadata.
// Knows nothing of CAF or of orders: entities are (shard, kind, id) and events are bytes.
//
// Writes are asynchronous and durable: submit() queues a write; a single writer thread takes every
// queued write, merges them into one WriteBatch and commits it with sync=true (group commit), then
// runs each write's callback, in submission order. A callback reports ok only after the fsync.
// After the first failed write the engine is failed for good: every later write is refused
// (status io_error) so nothing written after a lost write is ever acknowledged.
//
// Shard ownership (cluster mode). Every key of a shard is one range, and a shard has one owner at
// a time, under an epoch that grows with every change of owner. The engine records, per shard,
// the epoch under which this node owns it (own_shard / release_shard, synced, in meta). With
// storage_options::check_shard_epochs every entity write must carry that epoch: a node that lost
// a shard (paused, partitioned, restarted late) can then never write to it again. The check is
// made in submit() and again on the writer thread just before the commit, because a shard can be
// released in between; a write refused there fails alone (its callback gets status invalid) and
// does not fail the engine: only RocksDB I/O errors do that. Handoff moves a shard's range with
// export_shard (old owner, after release_shard) and submit_import (new owner, before own_shard).
//
// Replication (issue 12: a primary and followers per shard, PacificA / Kafka ISR). The engine's
// part is storage only; the protocol (who is primary, the ISR, etcd) lives with its caller.
//
// Position. Every committed batch that writes entity records of shard S advances S's replica
// position by one (1, 2, ...; contiguous per shard) and records it, with the epoch under which
// the shard was owned at the commit, in the same RocksDB batch (meta "replica/<S>"): after a
// crash the position on disk is exactly that of the last committed batch. Imports do not advance
// it (reset_replica sets it after a full copy); delete_shard sets it to 0 with the range.
//
// Capture (primary). With storage_options::replication, each synced batch that wrote entity
// records is handed to the sink as one shard_delta per shard: the puts and deletes exactly as
// written, as (op, key, value) records rather than a RocksDB WriteBatch rep, so the wire format
// does not depend on RocksDB's internal encoding, a follower can check every key against the
// shard's range before writing anything, and the caller can serialize it without RocksDB. The
// batch's callbacks, and those of every later batch (submission order), run only once the sink
// called done for it. done(ok): they get ok. done(error): they get status unavailable, and the
// engine does not pretend otherwise: the writes stay on this disk (load() returns them, the
// position counts them) but were not acknowledged, so the owner's in-memory state is ahead of
// what was acknowledged. The owner must then stop acknowledging on the shard: step down
// (release_shard) or reload the shard's entities from disk once it is primary again under a new
// epoch; whether those writes survive is decided by the next primary (see Apply). A later batch
// of the same shard answered ok is truthful: followers take positions only in order, so it
// implies the earlier one is on them too. At most max_unacked_batches batches are held; then the
// writer takes nothing but replica operations until the oldest is answered, so the write queue
// fills and submit() answers overloaded: every queue stays bounded. The blocking calls in the
// main queue that only change this node's own records (put_meta, own_shard, release_shard,
// delete_shard, imports) return once their own batch is synced, never held behind replicated
// ones: the member agent that makes them is also what tells the replica leader, whose answers
// release held batches, of new shard maps (waiting there would be a cycle). Entity writes
// queued before them are committed before them (so a release still leaves the range stable for
// export) but may be acknowledged later. Without a sink nothing is captured or held, and a
// batch costs one small meta put per shard written more than before.
//
// Apply (follower). apply_replicated writes a delta with its position and epoch in one synced
// batch, only in order (position = replica_position + 1) and never below the fence: the highest
// epoch the node has seen for the shard (applied deltas, fence_replica, its own ownership),
// persisted, so a deposed primary can never collect acks from it again. Each delta also names
// the epoch of the batch before it (prev_epoch); with one primary per epoch and positions never
// reused, the same (position, epoch) on two nodes then means the same history (Raft's log
// matching), so a follower detects that it holds batches the current primary does not have.
// No truncate: the records are key/value states, not operations, so a batch cannot be undone
// from its position (the value it overwrote is gone). A follower whose log is ahead of the new
// primary's at the epoch boundary (the deposed primary's unacknowledged tail) answers diverged
// and is re-seeded by a full copy: delete_shard, every chunk of the new primary's
// begin_export (one RocksDB snapshot, with the position and epoch at it) through submit_import,
// then reset_replica(shard, export epoch, export position); the primary's deltas after that
// position then apply. A crash in the middle of a re-seed leaves position 0 over part of the
// range: start it again from delete_shard. Promotion: own_shard(S, E+1) keeps the position, the
// new primary's batches continue from it; own_shard below the fence is refused.
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "persistence/keys.hpp"
#include "persistence/status.hpp"

namespace rocksdb {
class FileSystem;
}  // namespace rocksdb

namespace ordermesh::persistence {

struct stored_event {
  uint64_t seq = 0;
  std::string bytes;
};

/// What is on disk for one entity: the latest snapshot (if any) and the events after it.
struct recovered_entity {
  uint64_t snapshot_seq = 0;  // 0: no snapshot
  std::string snapshot;
  std::vector<stored_event> events;  // seq ascending, all > snapshot_seq, contiguous
  uint64_t last_seq = 0;             // highest seq on disk (events or snapshot); 0: new entity
};

/// One entity's atomic, durable change.
struct write_request {
  entity_key key;
  uint64_t first_seq = 0;           // seq of events[0]; events get first_seq, first_seq+1, ...
  std::vector<std::string> events;  // may be empty (e.g. only a wakeup change)
  /// State after the last event; stored at its seq (at first_seq - 1 when `events` is empty).
  std::optional<std::string> snapshot;
  /// Wakeup index: set to a due time (ms since epoch), or erase it. Unset: leave as is.
  std::optional<int64_t> wakeup_due_ms;
  bool erase_wakeup = false;
  /// Epoch under which the writer believes this node owns key.shard. Checked only with
  /// storage_options::check_shard_epochs: it must equal owned_epoch(key.shard), or the write is
  /// refused. Barriers (nothing to write, see submit) are never refused for it.
  uint64_t shard_epoch = 0;
  /// The writer let other writers act on this change before it was durable (they queue their
  /// own writes after it, so the group commit keeps the journal a prefix of the queue). Such a
  /// write must never fail alone: refused at commit time (its shard released under it), it
  /// fails the engine instead, like an I/O error, and nothing after it is written.
  bool exposed = false;
};

using write_callback = std::function<void(const status&)>;

struct wakeup_entry {
  entity_key key;
  int64_t due_ms = 0;
};

/// Raw records of one shard, in key order: what export_shard reads and submit_import writes.
using shard_records = std::vector<std::pair<std::string, std::string>>;

/// One piece of a shard's key range, for handoff.
struct shard_chunk {
  uint16_t shard = 0;
  shard_records records;  // (key, value), key ascending, every key in the shard's range
  /// Key of the last record, to pass as `after_key` for the next chunk (unchanged if none).
  std::string last_key;
  bool done = false;  // true: no record of the shard follows this chunk
  /// The shard's replica position and the epoch of that batch, read from the same view as the
  /// records: a copy of every chunk of one shard_export is the shard exactly as of `position`.
  uint64_t position = 0;
  uint64_t epoch = 0;
};

/// One put or delete of a replicated batch, byte for byte as the primary wrote it.
struct replica_record {
  enum class op : uint8_t { put, erase };
  op kind = op::put;
  std::string key;    // in the delta's shard range
  std::string value;  // empty for erase
};

/// What one committed batch wrote to one shard: the unit of replication.
struct shard_delta {
  uint16_t shard = 0;
  uint64_t epoch = 0;       // epoch under which the primary owned the shard at the commit
  uint64_t position = 0;    // the shard's position after this batch: 1, 2, ... (contiguous)
  uint64_t prev_epoch = 0;  // epoch of the shard's batch at position - 1 (0 for position 1)
  std::vector<replica_record> records;  // in write order: applied in this order, one batch
  /// Follower only: the epoch of the primary that sent it, when newer than `epoch` (a primary
  /// catching a replica up on batches written under an earlier epoch); 0: `epoch`. The fence is
  /// checked against, and raised to, the sender's epoch: an old batch from the current primary
  /// applies, anything from a deposed one does not (Raft checks the leader's term, not the
  /// entries'). Not part of the batch's identity; the primary leaves it 0.
  uint64_t sent_at_epoch = 0;
};

/// A shard's replication state on this node (engine meta "replica/<shard>", synced with every
/// batch that changes it).
struct replica_state {
  uint64_t position = 0;  // number of the shard's last committed batch; 0: none
  uint64_t epoch = 0;     // epoch of that batch
  /// Highest epoch this node has seen for the shard (own_shard, applied deltas, fence_replica,
  /// reset_replica): deltas below it are refused forever, and own_shard below it too.
  uint64_t fence = 0;
};

/// Where the primary hands each synced batch to its followers. Implemented by the caller.
class replication_sink {
 public:
  virtual ~replication_sink() = default;
  /// Called on the writer thread after each synced batch that wrote entity records, with one
  /// delta per shard written (shard ascending). Must not block: send, and return. `done` must be
  /// called exactly once, from any thread (also from inside replicate), with ok when every
  /// required replica has the deltas on disk, or with an error when they cannot be acknowledged
  /// (see storage_engine.hpp, "Capture"). The engine waits for it when it is destroyed.
  virtual void replicate(std::vector<shard_delta> deltas, std::function<void(status)> done) = 0;
};

struct storage_options {
  std::string path;
  size_t max_queued_writes = 65536;  // submit() refuses beyond this (status overloaded)
  size_t max_batch_writes = 4096;    // write requests merged into one synced batch at most
  bool sync = true;                  // false only for tests that measure without fsync
  size_t block_cache_bytes = 64u << 20;
  /// Test-only fault injection: when set to N, the first N batches are written and batch N+1 is
  /// treated as a failed write (not written, io_error), like a one-off fsync error. Later batches
  /// are not faulted: only the engine's fail-for-good rule keeps them off the disk.
  std::optional<uint64_t> fail_writes_after;
  /// Cluster mode: refuse every non-barrier write whose shard_epoch is not the epoch under which
  /// this node owns the shard (see own_shard). Off: single-node mode, writes are not checked
  /// (ownership is still recorded, and imports and deletes still refuse owned shards).
  bool check_shard_epochs = false;
  /// Primary side of replication (see the header comment). Null: no capture, callbacks run right
  /// after the fsync as they always did.
  std::shared_ptr<replication_sink> replication;
  /// Write each shard's replica position (a meta record) with every batch that advances it. Off
  /// on a node alone: its disk can never join a replicated cluster (the member agent refuses a
  /// lone node's data dir), so the positions would never be read, and the record cost a memtable
  /// insert and about 50 bytes of WAL per shard per batch. The positions still advance in memory.
  bool persist_replica_positions = true;
  /// Batches whose callbacks are held (waiting for the sink's done, or behind one that is) at
  /// most; then the writer stops taking writes until the oldest is answered, so the write queue
  /// fills and submit() refuses (overloaded). Replica operations still pass (see apply_replicated).
  size_t max_unacked_batches = 32;
  /// The file system RocksDB works through; null: the default (the local disk). Tests set a
  /// persistence::power_cut_fs here to simulate a power cut (power_cut_fs.hpp).
  std::shared_ptr<rocksdb::FileSystem> file_system;
};

struct storage_stats {
  uint64_t writes = 0;     // write requests committed
  uint64_t batches = 0;    // synced RocksDB writes
  uint64_t events = 0;     // events committed
  uint64_t bytes = 0;      // payload bytes committed
  uint64_t max_batch = 0;  // largest batch, in write requests
  uint64_t queued = 0;     // write requests waiting now
  uint64_t refused = 0;    // submit() calls that returned false (full, failed, closed, invalid)
  /// Writes accepted by submit() but refused on the writer thread, not written: their shard was
  /// released (or, for imports and deletes, owned) in between. Their callback got the reason.
  uint64_t refused_at_commit = 0;
  uint64_t unacked = 0;             // batches whose callbacks are held now (replication)
  uint64_t replicated = 0;          // batches handed to the replication sink
  uint64_t replication_errors = 0;  // of those, answered with an error
  uint64_t applied = 0;             // deltas written by apply_replicated
};

/// What storage_engine::checkpoint wrote.
struct checkpoint_info {
  /// A RocksDB sequence number every write of which is in the checkpoint (the last one, as the
  /// memtables are flushed first).
  uint64_t sequence = 0;
  /// The shards this node owned in the checkpoint, with their epochs, shard ascending.
  std::vector<std::pair<uint16_t, uint64_t>> owned_shards;
  /// Every file of the checkpoint directory with its size in bytes, name ascending.
  std::vector<std::pair<std::string, uint64_t>> files;
};

class storage_engine;

/// A consistent copy source for one shard: every chunk is read from one RocksDB snapshot taken
/// by storage_engine::begin_export, so the owner may keep writing while the shard is copied.
/// Must be destroyed before the engine it came from.
class shard_export {
 public:
  ~shard_export();
  shard_export(const shard_export&) = delete;
  shard_export& operator=(const shard_export&) = delete;

  /// The shard's replica position (and its batch's epoch) at the snapshot.
  uint64_t position() const;
  uint64_t epoch() const;
  /// The next chunk (the first on the first call); as export_shard, with `out.done` on the last.
  /// After the last chunk, returns empty chunks with done set.
  status next(size_t max_bytes, shard_chunk& out);

 private:
  friend class storage_engine;
  shard_export();
  struct impl;
  std::unique_ptr<impl> impl_;
};

class storage_engine {
 public:
  /// Opens (creating if missing). On failure returns nullptr and sets *err.
  static std::unique_ptr<storage_engine> open(const storage_options& opts, status* err);
  /// Drains the queue (each queued write is committed and its callback run), then closes. With a
  /// replication sink it first waits for the sink's answer to every batch handed to it: a sink
  /// that is shutting down must still answer (an error will do).
  ~storage_engine();

  storage_engine(const storage_engine&) = delete;
  storage_engine& operator=(const storage_engine&) = delete;

  /// Reads the latest snapshot and the events after it. Synchronous; thread-safe.
  status load(const entity_key& key, recovered_entity& out) const;
  /// Reads every event of an entity from `from_seq` on (audits, tests). Bounded by `max_events`.
  status read_events(const entity_key& key, uint64_t from_seq, size_t max_events,
                     std::vector<stored_event>& out) const;

  /// Queues a durable write. The callback runs exactly once, on the writer thread, after the
  /// synced write (or with the error); with a replication sink, only once the sink answered for
  /// its batch and every earlier one (see "Capture"). Returns false without queuing (and without
  /// running the callback) when the queue is full or the engine failed or is closing; *why says
  /// which. A malformed request (see keys::valid, seqs start at 1, wakeup set and erased) is
  /// refused the same way with status invalid, so it cannot fail the batch it would have joined.
  /// With check_shard_epochs, a write with events, a snapshot or a wakeup change whose
  /// shard_epoch is not owned_epoch(key.shard) is refused too (status invalid); if the shard is
  /// released after submit() but before the commit, the write is not written and its callback
  /// gets that status instead (the engine stays healthy). An empty write is a barrier: its
  /// callback runs once every earlier write is committed; it needs no valid key (key.shard alone
  /// is customary) and is never refused for its epoch.
  bool submit(write_request req, write_callback done, status* why = nullptr);

  /// Every wakeup entry, in key order. Thread-safe.
  status scan_wakeups(const std::function<void(const wakeup_entry&)>& visit) const;

  /// Node metadata (cluster id, shard count, ...). put_meta is synced before it returns.
  /// Names starting with "shard_epoch/" are the engine's own (shard ownership): put_meta refuses
  /// them (status invalid) so ownership changes only through own_shard / release_shard.
  status get_meta(const std::string& name, std::string* value) const;
  status put_meta(const std::string& name, const std::string& value);

  /// Records that this node owns `shard` under `epoch` (synced before it returns); from then on
  /// writes with that shard_epoch are accepted. Refuses (status invalid) epoch 0, shard 0xFFFF,
  /// and an epoch lower than the one recorded for the shard, owned or released: ownership never
  /// goes back. The recorded epoch itself is accepted again (a retry, or resuming after an
  /// aborted handoff). Blocking: refused from a write callback.
  status own_shard(uint16_t shard, uint64_t epoch);
  /// Stops owning `shard`. With check_shard_epochs every write to it is refused from the moment
  /// this is called, writes already queued for it fail at commit time, and when it returns
  /// (synced) no write of the shard is in flight any more, so its range is stable for
  /// export_shard. The epoch stays
  /// recorded as the last known one (own_shard below it stays refused). Not owned: nothing to do.
  /// Blocking: refused from a write callback.
  status release_shard(uint16_t shard);
  /// Replication: while paused, submit() refuses every entity write of `shard` at once (status
  /// unavailable; barriers pass), so writes that could not be acknowledged (too few in-sync
  /// replicas) neither wait for a timeout nor hold the batches of other shards. Not persisted;
  /// lock-free.
  void set_writes_paused(uint16_t shard, bool paused);
  bool writes_paused(uint16_t shard) const;
  /// Epoch under which this node owns `shard`; 0 if it does not. Lock-free (one atomic load).
  uint64_t owned_epoch(uint16_t shard) const;
  /// Every owned shard with its epoch, shard ascending.
  std::vector<std::pair<uint16_t, uint64_t>> owned_shards() const;

  /// Reads `shard`'s key range (journals, snapshots, wakeups: everything with its 2-byte prefix)
  /// in key order, from the first key after `after_key` (empty: from the start), until about
  /// `max_bytes` of keys and values: a chunk holds at least one record (so a large record still
  /// makes progress) and otherwise stays within max_bytes. Each call reads a consistent view, but
  /// chunks are separate reads: stop writes first (release_shard) so the range does not change.
  /// Refuses shard 0xFFFF and an after_key outside the shard's range (status invalid).
  status export_shard(uint16_t shard, const std::string& after_key, size_t max_bytes,
                      shard_chunk& out) const;
  /// Queues a synced write of raw records of `shard` (as export_shard returned them) through the
  /// writer thread, so it is ordered with every other write; `done` as for submit(). Refused,
  /// like a malformed submit(), if a key is outside the shard's range or this node owns the shard
  /// (importing into an owned shard would be a second writer; checked again at commit time).
  bool submit_import(uint16_t shard, shard_records records, write_callback done,
                     status* why = nullptr);
  /// Removes `shard`'s whole key range (synced before it returns), e.g. after handing it off or
  /// before importing it again. The ownership record stays. The replica position (and its epoch)
  /// go to 0 in the same batch, as the data they described is gone; the fence stays. Refused
  /// (status invalid) if this node owns the shard, and for shard 0xFFFF. Blocking: refused from a
  /// write callback.
  status delete_shard(uint16_t shard);
  /// delete_shard for a replica that is no replica any more at `epoch`, only if this node has
  /// seen nothing of that epoch for the shard: refused (status invalid, nothing deleted) once
  /// the fence has reached `epoch`, checked on the writer thread in order with every replica
  /// operation. A follower raises its fence to a sender's epoch before it answers it, so no
  /// primary at `epoch` or later can hold an answer that describes the deleted data, and every
  /// answer after the delete says position 0. Blocking: refused from a write callback.
  status forget_replica(uint16_t shard, uint64_t epoch);
  /// Takes a RocksDB snapshot and returns a reader of `shard`'s range and replica position in it
  /// (null and *err set for shard 0xFFFF).
  std::unique_ptr<shard_export> begin_export(uint16_t shard, status* err = nullptr) const;

  /// The shard's replica position: the number of its last committed batch (0: none yet).
  uint64_t replica_position(uint16_t shard) const;
  /// Position, epoch of that batch and fence of `shard` as last committed.
  replica_state replica(uint16_t shard) const;
  /// Follower: writes a primary's delta, with the new position and epoch, in one synced batch.
  /// Returns ok once synced. Refused, nothing written:
  ///  - invalid: this node owns the shard, d.epoch is below the fence, shard 0xFFFF, position 0,
  ///    or a key outside the shard's range;
  ///  - duplicate: d.position <= replica_position and d.epoch is the epoch of this node's last
  ///    batch of the shard: already on disk, the caller may acknowledge it again;
  ///  - out_of_order: d.position > replica_position + 1: catch up from replica_position + 1;
  ///  - diverged: this node holds batches that are not the primary's (d.epoch is newer than its
  ///    last batch but d.position <= replica_position, or d.prev_epoch is not the epoch of its
  ///    last batch): re-seed by a full copy (see "Apply", reset_replica).
  /// Runs on the writer thread but is never held behind this node's own unacknowledged batches,
  /// and is taken even when max_unacked_batches are held: two nodes that are each other's
  /// followers would otherwise wait for each other. Blocking: refused from a write callback.
  status apply_replicated(const shard_delta& d);
  /// apply_replicated without waiting: queued like a write (bounded: false and *why overloaded
  /// when the queue is full), so that the deltas of many shards share one synced batch (group
  /// commit on the follower too); `done` runs on the writer thread with what apply_replicated
  /// would have returned, and must not block.
  bool submit_replicated(shard_delta d, write_callback done, status* why = nullptr);
  /// Follower: records that `epoch` has been seen for `shard` (synced), so that every delta with
  /// a lower epoch is refused from now on, before the new primary's first delta arrives. Refused
  /// (invalid) if this node owns the shard, for epoch 0 and shard 0xFFFF. Lower than the fence:
  /// ok, nothing changes. Never held, like apply_replicated.
  status fence_replica(uint16_t shard, uint64_t epoch);
  /// fence_replica without waiting: queued (never refused for a full queue, like fence_replica)
  /// in order with every other replica operation, so a delta submitted after it is checked
  /// against the raised fence; `done` runs on the writer thread once it is synced (or refused)
  /// and must not block. Many shards' fences then share one synced batch: a promotion of twenty
  /// shards at once costs one fsync on each follower, not twenty in a row.
  void fence_replica_async(uint16_t shard, uint64_t epoch, write_callback done);
  /// Follower, after a full copy (delete_shard, submit_import of every chunk of a shard_export,
  /// each import acknowledged): sets the position and its epoch to the export's, so that the
  /// primary's next delta (position + 1) applies. The fence becomes max(fence, epoch): a copy
  /// from a primary whose last batch predates the fence is accepted, its later deltas are not.
  /// Refused (invalid) if this node owns the shard, and for shard 0xFFFF. Ordered with imports
  /// (it goes through the same queue). Blocking: refused from a write callback.
  status reset_replica(uint16_t shard, uint64_t epoch, uint64_t position);

  /// Online backup: a RocksDB checkpoint of the whole database in `dir`, which must not exist
  /// (status invalid otherwise; nothing is overwritten) and whose parent must. The memtables are
  /// flushed first and the live write-ahead log is copied too, so every write whose callback
  /// ran before this call is in the checkpoint: callbacks run only after the synced write.
  /// Later writes may or may not be. Ownership does not change while it runs (own_shard and
  /// release_shard wait), so `out->owned_shards` is exactly what the checkpoint holds. Writes
  /// go on meanwhile. SST files are hard-linked when `dir` is on the same file system (no
  /// copy), otherwise copied. Blocking (a flush and a copy of the log): not from a write
  /// callback, nor on a thread that must not block. A failure leaves no `dir` behind.
  status checkpoint(const std::string& dir, checkpoint_info* out) const;

  /// ok until a write failed; then the first error, for good.
  status health() const;
  storage_stats stats() const;

 private:
  friend class shard_export;
  storage_engine();
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace ordermesh::persistence
