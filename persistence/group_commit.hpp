#pragma once
// Internal: the single writer thread. It takes everything queued (up to max_batch_writes), commits
// it as one RocksDB WriteBatch with one fsync, then runs the callbacks in submission order. While
// one batch syncs the next one queues up, so batches grow with load.
//
// Shard checks: each entry is checked against the shard table when submitted and again when its
// batch is taken, just before the commit. A shard released in between (release_shard flips the
// table before queuing its own record) thus never gets the write; the entry fails alone.
#include <atomic>
#include <cstdint>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include <rocksdb/db.h>

#include "persistence/shard_table.hpp"
#include "persistence/storage_engine.hpp"
#include "persistence/write_queue.hpp"

namespace ordermesh::persistence::detail {

class group_commit {
 public:
  /// Starts the writer thread. `db` and `shards` must outlive this object.
  group_commit(rocksdb::DB& db, const shard_table& shards, const storage_options& opts);
  /// Same as stop().
  ~group_commit();

  group_commit(const group_commit&) = delete;
  group_commit& operator=(const group_commit&) = delete;

  /// Checks and queues `w`; on refusal (malformed, wrong shard epoch or owner, full, failed,
  /// closed) returns false, leaves `w` untouched (its callback is not run) and sets *why. Meta
  /// puts pass `bounded = false`: they are rare and must not be shed under load.
  bool submit(pending_write& w, bool bounded, status* why);

  /// Refuses new writes, commits everything queued, runs its callbacks, joins. Idempotent.
  void stop();

  status health() const;
  storage_stats stats() const;
  /// True on the writer thread, i.e. inside a write callback.
  bool on_writer_thread() const;

 private:
  void run();
  /// Why `w` may not be written now (shard epoch or ownership), or ok. Meta puts: always ok.
  status check_shard(const pending_write& w) const;
  /// Writes one batch and updates the stats; returns the outcome shared by all its entries.
  status write(const std::vector<pending_write>& batch);
  static void notify(std::vector<pending_write>& batch, const status& result);

  rocksdb::DB& db_;
  const shard_table& shards_;
  const bool check_epochs_;
  const bool sync_;
  const size_t max_batch_writes_;
  const std::optional<uint64_t> fail_writes_after_;
  write_queue queue_;

  mutable std::mutex health_mutex_;
  status health_;  // first write error, for good

  std::atomic<uint64_t> writes_{0};
  std::atomic<uint64_t> batches_{0};
  std::atomic<uint64_t> events_{0};
  std::atomic<uint64_t> bytes_{0};
  std::atomic<uint64_t> max_batch_{0};
  std::atomic<uint64_t> refused_{0};
  std::atomic<uint64_t> refused_at_commit_{0};
  uint64_t attempted_batches_ = 0;  // writer thread only

  std::thread thread_;  // last member: starts once everything above exists
};

}  // namespace ordermesh::persistence::detail
