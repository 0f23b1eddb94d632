#include "persistence/write_batch.hpp"

#include <limits>
#include <string>

#include "persistence/big_endian.hpp"
#include "persistence/keys.hpp"

namespace ordermesh::persistence::detail {

bool is_barrier(const write_request& req) {
  return req.events.empty() && !req.snapshot && !req.wakeup_due_ms && !req.erase_wakeup;
}

status validate(const write_request& req) {
  if (is_barrier(req)) {
    // Nothing is stored under its key, so any key will do: callers set just the shard.
    return status::ok();
  }
  if (!keys::valid(req.key)) {
    return status::invalid("bad entity key (id must match [A-Za-z0-9._-]+, kind != 0xF0)");
  }
  if (req.erase_wakeup && req.wakeup_due_ms) {
    return status::invalid("both erase_wakeup and wakeup_due_ms set");
  }
  if (!req.events.empty() || req.snapshot) {
    // Seq 0 means "nothing" (recovered_entity::last_seq), so stored records start at 1.
    if (req.events.empty() ? req.first_seq < 2 : req.first_seq < 1) {
      return status::invalid("first_seq too small: records are numbered from 1");
    }
    // Keep UINT64_MAX unused so "seq + 1" never wraps when reading.
    if (req.first_seq >= std::numeric_limits<uint64_t>::max() - req.events.size()) {
      return status::invalid("first_seq too large");
    }
  }
  return status::ok();
}

status validate(const shard_op& op) {
  if (op.shard == keys::meta_shard) {
    return status::invalid("shard 65535 is the meta range, not an entity shard");
  }
  for (const auto& record : op.records) {
    if (!keys::in_shard(record.first, op.shard)) {
      return status::invalid("import into shard " + std::to_string(op.shard) +
                             " has a key outside its range");
    }
  }
  return status::ok();
}

uint64_t snapshot_seq(const write_request& req) {
  return req.first_seq + req.events.size() - 1;  // wraps only for invalid requests
}

rocksdb::Status append(const pending_write& w, rocksdb::WriteBatch& batch, append_counts& counts) {
  if (w.meta) {
    counts.bytes += w.meta->value.size();
    return batch.Put(keys::meta(w.meta->name), w.meta->value);
  }
  if (w.shard) {
    const shard_op& op = *w.shard;
    if (op.drop) {
      return batch.DeleteRange(keys::shard_prefix(op.shard), keys::shard_end(op.shard));
    }
    for (const auto& record : op.records) {
      rocksdb::Status s = batch.Put(record.first, record.second);
      if (!s.ok()) {
        return s;
      }
      counts.bytes += record.second.size();
    }
    return rocksdb::Status::OK();
  }
  const write_request& req = w.req;
  uint64_t seq = req.first_seq;
  for (const std::string& ev : req.events) {
    rocksdb::Status s = batch.Put(keys::event(req.key, seq++), ev);
    if (!s.ok()) {
      return s;
    }
    counts.bytes += ev.size();
  }
  counts.events += req.events.size();
  if (req.snapshot) {
    rocksdb::Status s = batch.Put(keys::snapshot(req.key, snapshot_seq(req)), *req.snapshot);
    if (!s.ok()) {
      return s;
    }
    counts.bytes += req.snapshot->size();
  }
  if (req.erase_wakeup) {
    return batch.Delete(keys::wakeup(req.key));
  }
  if (req.wakeup_due_ms) {
    return batch.Put(keys::wakeup(req.key), encode_i64(*req.wakeup_due_ms));
  }
  return rocksdb::Status::OK();
}

}  // namespace ordermesh::persistence::detail
