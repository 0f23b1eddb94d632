#pragma once
// Internal: makes sure a data dir's values are in value_format::current before anything is
// served from it (storage_engine::open calls it before the writer starts).
//
//  - "value_format" = current: nothing to do.
//  - another value: refused (status invalid): a newer ordermesh wrote it.
//  - absent, and no entity record on disk: a new dir; the record is written (synced).
//  - absent, with entity records: a 0.2.0 dir, whose values have no checksum. Every event and
//    snapshot value is rewritten with its checksum, in key order, in synced batches of at most
//    migration_batch_records records / migration_batch_bytes bytes. Each batch also records the
//    last key it rewrote (meta "value_format_migration"), so a migration cut short by a crash
//    resumes after that key instead of sealing a value twice; the format record is written, and
//    the progress record removed, in the last batch.
#include <cstddef>
#include <cstdint>

#include "persistence/status.hpp"

namespace rocksdb {
class DB;
}

namespace ordermesh::persistence::detail {

constexpr size_t migration_batch_records = 1024;
constexpr size_t migration_batch_bytes = 4u << 20;

/// What ensure_value_format did.
struct migration_result {
  bool created = false;    // a new dir: the format record was written
  uint64_t rewritten = 0;  // values sealed by a migration (0: none needed)
};

status ensure_value_format(rocksdb::DB& db, bool sync, migration_result* out = nullptr);

}  // namespace ordermesh::persistence::detail
