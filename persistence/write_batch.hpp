#pragma once
// Internal: what one queued write is, how it is checked, and how it becomes RocksDB operations.
#include <cstdint>
#include <optional>
#include <string>

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
};

/// One queue entry: an entity write, a meta put or a shard operation, and who to tell when it
/// is durable.
struct pending_write {
  write_request req;
  std::optional<meta_put> meta;   // set: this entry is a meta put and `req` is unused
  write_callback done;            // may be empty
  std::optional<shard_op> shard;  // set: an import or range delete and `req` is unused
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

}  // namespace ordermesh::persistence::detail
