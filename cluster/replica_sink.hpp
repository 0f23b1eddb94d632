#pragma once
// The storage engine's replication sink on a node of a replicated cluster (issue 12): each
// synced batch that wrote a shard with replicas on other nodes goes to this node's replica
// leader (an actor of the member agent), which answers `done` once the shard's in-sync
// replicas hold it. Batches that wrote only shards without other replicas are answered at once,
// on the writer thread, so a cluster of replication factor 1 pays nothing more than a node
// alone. Created before the storage engine opens (storage_options::replication) and attached to
// the leader once the agent runs.
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include <caf/actor.hpp>

#include "persistence/storage_engine.hpp"

namespace ordermesh::cluster {

class replica_sink final : public persistence::replication_sink {
 public:
  void replicate(std::vector<persistence::shard_delta> deltas,
                 std::function<void(persistence::status)> done) override;
  /// From now on batches of replicated shards go to `leader` (null: answered unavailable).
  void attach(caf::actor leader);
  /// Which shards have a replica on another node (index = shard), from the latest shard map.
  void set_replicated(std::shared_ptr<const std::vector<bool>> replicated);
  /// The replica leader for the read barrier of `shard`, or null when the latest shard map
  /// gives it no replica on another node (its reads wait for nothing but the local disk).
  caf::actor read_barrier(uint16_t shard);

 private:
  std::mutex mu_;
  caf::actor leader_;
  std::shared_ptr<const std::vector<bool>> replicated_;
};

/// One batch on its way to the replica leader. Answers `done` with unavailable when it is
/// destroyed unanswered (the leader stopped, its mailbox was dropped): the storage engine waits
/// for every answer, so none may be lost.
struct replica_batch {
  std::vector<persistence::shard_delta> deltas;
  std::function<void(persistence::status)> done;
  replica_batch() = default;
  replica_batch(const replica_batch&) = delete;
  replica_batch& operator=(const replica_batch&) = delete;
  ~replica_batch();
  void answer(persistence::status st);
};
using replica_batch_ptr = std::shared_ptr<replica_batch>;

}  // namespace ordermesh::cluster
