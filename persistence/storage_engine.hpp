#pragma once
// One RocksDB per node: entity journals, snapshots, the wakeup index and node metadata.
// Knows nothing of CAF or of orders: entities are (shard, kind, id) and events are bytes.
//
// Writes are asynchronous and durable: submit() queues a write; a single writer thread takes every
// queued write, merges them into one WriteBatch and commits it with sync=true (group commit), then
// runs each write's callback, in submission order. A callback reports ok only after the fsync.
// After the first failed write the engine is failed for good: every later write is refused
// (status io_error) so nothing written after a lost write is ever acknowledged.
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "persistence/keys.hpp"
#include "persistence/status.hpp"

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
};

using write_callback = std::function<void(const status&)>;

struct wakeup_entry {
  entity_key key;
  int64_t due_ms = 0;
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
};

struct storage_stats {
  uint64_t writes = 0;     // write requests committed
  uint64_t batches = 0;    // synced RocksDB writes
  uint64_t events = 0;     // events committed
  uint64_t bytes = 0;      // payload bytes committed
  uint64_t max_batch = 0;  // largest batch, in write requests
  uint64_t queued = 0;     // write requests waiting now
  uint64_t refused = 0;    // submit() calls that returned false (full, failed, closed, invalid)
};

class storage_engine {
 public:
  /// Opens (creating if missing). On failure returns nullptr and sets *err.
  static std::unique_ptr<storage_engine> open(const storage_options& opts, status* err);
  /// Drains the queue (each queued write is committed and its callback run), then closes.
  ~storage_engine();

  storage_engine(const storage_engine&) = delete;
  storage_engine& operator=(const storage_engine&) = delete;

  /// Reads the latest snapshot and the events after it. Synchronous; thread-safe.
  status load(const entity_key& key, recovered_entity& out) const;
  /// Reads every event of an entity from `from_seq` on (audits, tests). Bounded by `max_events`.
  status read_events(const entity_key& key, uint64_t from_seq, size_t max_events,
                     std::vector<stored_event>& out) const;

  /// Queues a durable write. The callback runs exactly once, on the writer thread, after the
  /// synced write (or with the error). Returns false without queuing (and without running the
  /// callback) when the queue is full or the engine failed or is closing; *why says which.
  /// A malformed request (see keys::valid, seqs start at 1, wakeup set and erased) is refused
  /// the same way with status invalid, so it cannot fail the batch it would have joined.
  bool submit(write_request req, write_callback done, status* why = nullptr);

  /// Every wakeup entry, in key order. Thread-safe.
  status scan_wakeups(const std::function<void(const wakeup_entry&)>& visit) const;

  /// Node metadata (cluster id, shard count, ...). put_meta is synced before it returns.
  status get_meta(const std::string& name, std::string* value) const;
  status put_meta(const std::string& name, const std::string& value);

  /// ok until a write failed; then the first error, for good.
  status health() const;
  storage_stats stats() const;

 private:
  storage_engine();
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace ordermesh::persistence
