#include "persistence/commit_metrics.hpp"

#include "observability/registry.hpp"

namespace ordermesh::persistence::detail {

commit_metrics& commit_metrics::get() {
  static commit_metrics m{
      om::obs::registry::global()
          .histograms("ordermesh_storage_batch_writes",
                      "Write requests per group-commit batch (one synced RocksDB write).", {},
                      om::obs::batch_size_buckets())
          .with({}),
      om::obs::registry::global()
          .histograms("ordermesh_storage_fsync_seconds",
                      "Duration of each synced RocksDB write of a batch (write + fsync), seconds.",
                      {}, om::obs::latency_buckets_seconds())
          .with({})};
  return m;
}

}  // namespace ordermesh::persistence::detail
