#pragma once
// Internal: what one queued write is, how it is checked, and how it becomes RocksDB operations.
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <rocksdb/write_batch.h>

#include "persistence/storage_engine.hpp"

namespace ordermesh::persistence::detail {

/// A node metadata put; routed through the writer so it is never reordered with entity writes.
struct meta_put {
  std::string name;
  std::string value;
};

/// Raw records of one shard (handoff import), or the removal of the shard's whole range.
struct shard_op {
  uint16_t shard = 0;
  shard_records records;  // import: written as they are
  bool drop = false;      // true: delete the range [shard_prefix, shard_end); `records` unused
  /// drop only: nonzero makes it conditional, refused (status invalid) on the writer thread if
  /// the shard's fence has reached this epoch (storage_engine::forget_replica).
  uint64_t unless_fence = 0;
};

/// A follower's replication operation (storage_engine::apply_replicated and its siblings).
struct replica_op {
  enum class kind { apply, fence, reset };
  kind what = kind::apply;
  /// apply: the whole delta; fence: shard and epoch; reset: shard, epoch and position.
  shard_delta delta;
};

/// One queue entry: an entity write, a meta put, a shard operation or a replica operation, and
/// who to tell when it is durable.
struct pending_write {
  write_request req;
  std::optional<meta_put> meta;       // set: this entry is a meta put and `req` is unused
  write_callback done;                // may be empty
  std::optional<shard_op> shard;      // set: an import or range delete and `req` is unused
  std::optional<replica_op> replica;  // set: a replica operation and `req` is unused
  /// Runs on the writer thread right after the entry's batch is committed (only then), before
  /// any later batch is checked: `done` may be held for replication, this never is.
  std::function<void()> on_commit;
  /// Set on the writer thread when the entry is refused at commit time (its shard changed owner
  /// after submit): it is left out of the batch and its callback gets this instead.
  status refusal;
};

/// A write that changes nothing (no events, no snapshot, no wakeup change): it only waits for
/// every earlier write, so it can never be a second writer and is never refused for its epoch.
bool is_barrier(const write_request& req);

/// Checks a request before it is queued, so a bad request is refused alone instead of failing
/// the batch it would share with others (and with it the engine).
status validate(const write_request& req);
/// The same for a shard operation: a real entity shard, and every imported key in its range.
status validate(const shard_op& op);

/// The same for a replica operation: a real entity shard, apply with position >= 1 and every key
/// in the shard's range, fence with epoch >= 1.
status validate(const replica_op& op);

/// An entity write that stores something (not a barrier): it advances its shard's position.
inline bool writes_entity(const pending_write& w) {
  return !w.meta && !w.shard && !w.replica && !is_barrier(w.req);
}

/// Seq under which `req.snapshot` is stored: that of the last event, or first_seq - 1 when
/// the request carries no events.
uint64_t snapshot_seq(const write_request& req);

/// What appending one entry added, for the stats.
struct append_counts {
  uint64_t events = 0;
  uint64_t bytes = 0;
};

/// Appends the entry's puts/deletes to `batch` and adds to `counts`. The entry must have passed
/// validate(). Fails only when RocksDB refuses a record (e.g. a value of 4 GiB or more).
rocksdb::Status append(const pending_write& w, rocksdb::WriteBatch& batch, append_counts& counts);
/// The same for an entity write, also copying each put and delete to `records` (for replication).
rocksdb::Status append_captured(const write_request& req, rocksdb::WriteBatch& batch,
                                std::vector<replica_record>& records, append_counts& counts);

}  // namespace ordermesh::persistence::detail
