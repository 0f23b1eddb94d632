#include "persistence/value_migration.hpp"

#include <memory>
#include <string>

#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>
#include <spdlog/spdlog.h>

#include "persistence/keys.hpp"
#include "persistence/value_format.hpp"

namespace ordermesh::persistence::detail {

namespace {

constexpr std::string_view progress_name = "value_format_migration";

status from(const rocksdb::Status& s, const std::string& what) {
  if (s.ok()) {
    return status::ok();
  }
  if (s.IsCorruption()) {
    return status::corruption(what + ": " + s.ToString());
  }
  return status::io_error(what + ": " + s.ToString());
}

}  // namespace

status ensure_value_format(rocksdb::DB& db, bool sync, migration_result* out) {
  migration_result result;
  rocksdb::WriteOptions wo;
  wo.sync = sync;
  const std::string format_key = keys::meta(value_format::meta_name);
  const std::string progress_key = keys::meta(progress_name);
  std::string format;
  rocksdb::Status got = db.Get(rocksdb::ReadOptions(), format_key, &format);
  if (got.ok()) {
    if (format != value_format::current) {
      return status::invalid("value format '" + format + "' of this data dir is unknown to this " +
                             "version (which writes '" + std::string(value_format::current) +
                             "'): run the ordermesh version that wrote it");
    }
    if (out != nullptr) {
      *out = result;
    }
    return status::ok();
  }
  if (!got.IsNotFound()) {
    return from(got, "reading the value format record");
  }
  std::string resume_after;
  got = db.Get(rocksdb::ReadOptions(), progress_key, &resume_after);
  if (!got.ok() && !got.IsNotFound()) {
    return from(got, "reading the value format migration record");
  }
  const bool resuming = got.ok();

  // Entity shards only: the meta range is never sealed.
  const std::string upper = keys::shard_prefix(keys::meta_shard);
  rocksdb::Slice upper_slice(upper);
  rocksdb::ReadOptions ro;
  ro.iterate_upper_bound = &upper_slice;
  ro.fill_cache = false;
  std::unique_ptr<rocksdb::Iterator> it(db.NewIterator(ro));
  it->Seek(resume_after);
  if (resuming && it->Valid() && it->key().ToString() == resume_after) {
    it->Next();  // that one is sealed already
  }
  if (!resuming && !it->Valid() && it->status().ok()) {
    // Nothing stored yet: a new dir starts in the current format.
    rocksdb::Status s = db.Put(wo, format_key, std::string(value_format::current));
    if (!s.ok()) {
      return from(s, "writing the value format record");
    }
    result.created = true;
    if (out != nullptr) {
      *out = result;
    }
    return status::ok();
  }
  spdlog::warn(
      "storage: data dir holds values without checksums (written by 0.2.0): {} "
      "migration to value format '{}'",
      resuming ? "resuming the" : "starting the", value_format::current);
  rocksdb::WriteBatch batch;
  size_t records = 0;
  size_t bytes = 0;
  std::string last;
  auto commit = [&](bool final) -> status {
    if (final) {
      batch.Put(format_key, std::string(value_format::current));
      batch.Delete(progress_key);
    } else {
      batch.Put(progress_key, last);
    }
    rocksdb::Status s = db.Write(wo, &batch);
    batch.Clear();
    records = 0;
    bytes = 0;
    return from(s, "writing migrated values");
  };
  for (; it->Valid(); it->Next()) {
    const std::string_view key(it->key().data(), it->key().size());
    if (!value_format::is_checked(key)) {
      continue;  // wakeup entries keep their form
    }
    const std::string_view value(it->value().data(), it->value().size());
    batch.Put(it->key(), value_format::seal(key, value));
    last.assign(key);
    ++records;
    ++result.rewritten;
    bytes += key.size() + value.size();
    if (records >= migration_batch_records || bytes >= migration_batch_bytes) {
      if (status st = commit(false); !st.is_ok()) {
        return st;
      }
    }
  }
  if (!it->status().ok()) {
    return from(it->status(), "reading values to migrate");
  }
  if (status st = commit(true); !st.is_ok()) {
    return st;
  }
  spdlog::warn("storage: migrated {} values to value format '{}'", result.rewritten,
               value_format::current);
  if (out != nullptr) {
    *out = result;
  }
  return status::ok();
}

}  // namespace ordermesh::persistence::detail
