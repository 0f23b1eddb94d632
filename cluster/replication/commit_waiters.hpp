#pragma once
// The primary's synced batches that wait for their replicas: one batch of the storage engine
// (group commit) may hold positions of several shards, and is acknowledged to its writers only
// once every one of them is committed (docs/REPLICATION.md). Pure bookkeeping: the caller feeds
// commit positions and failures and answers the batches this returns.
#include <cstdint>
#include <map>
#include <utility>
#include <vector>

#include "cluster/replication/primary_log.hpp"

namespace ordermesh::cluster::replication {

class commit_waiters {
 public:
  using batch_id = uint64_t;
  /// Batch `id` waits until each (shard, position) of `needs` is committed.
  void add(batch_id id, const std::vector<std::pair<uint16_t, position>>& needs, clock_time now);
  /// `shard` committed everything up to `committed`: the batches that wait for nothing more.
  std::vector<batch_id> committed(uint16_t shard, position committed);
  /// `shard` can no longer commit what it holds (this node lost it): every batch that waits on
  /// it, removed.
  std::vector<batch_id> fail_shard(uint16_t shard);
  /// Batches added before `deadline` that still wait, removed.
  std::vector<batch_id> expired(clock_time deadline);
  size_t size() const { return batches_.size(); }

 private:
  struct batch {
    std::map<uint16_t, position> needs;  // shard -> position still to commit
    clock_time since;
  };
  std::map<batch_id, batch> batches_;
};

}  // namespace ordermesh::cluster::replication
