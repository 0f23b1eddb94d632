#pragma once
// The group commit in the node's metrics: how many writes each batch carries and how long each
// synced RocksDB write (its fsync) takes. Its other counters (batches, writes, bytes) are
// storage_stats, which the node reads at render time instead of counting them twice.
namespace om::obs {
class histogram;
}

namespace ordermesh::persistence::detail {

struct commit_metrics {
  om::obs::histogram& batch_writes;   // ordermesh_storage_batch_writes
  om::obs::histogram& fsync_seconds;  // ordermesh_storage_fsync_seconds: synced writes only

  /// The process-wide pair, registered on first use.
  static commit_metrics& get();
};

}  // namespace ordermesh::persistence::detail
