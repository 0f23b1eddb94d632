#include "persistence/write_batch.hpp"

#include <limits>
#include <string>

#include "persistence/big_endian.hpp"
#include "persistence/keys.hpp"
#include "persistence/value_format.hpp"

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
  // A damaged value is refused here, before anything is written: a copy must not spread it.
  for (const auto& record : op.records) {
    if (status st = value_format::check(record.first, record.second); !st.is_ok()) {
      return status::corruption("import into shard " + std::to_string(op.shard) + ": " +
                                st.message());
    }
  }
  return status::ok();
}

status validate(const replica_op& op) {
  const shard_delta& d = op.delta;
  if (d.shard == keys::meta_shard) {
    return status::invalid("shard 65535 is the meta range, not an entity shard");
  }
  if (op.what == replica_op::kind::fence && d.epoch == 0) {
    return status::invalid("fence at epoch 0: epochs start at 1");
  }
  if (op.what != replica_op::kind::apply) {
    return status::ok();
  }
  if (d.position == 0) {
    return status::invalid("delta at position 0: positions start at 1");
  }
  for (const replica_record& r : d.records) {
    if (!keys::in_shard(r.key, d.shard)) {
      return status::invalid("delta for shard " + std::to_string(d.shard) +
                             " has a key outside its range");
    }
  }
  // A follower refuses a damaged value rather than store it: corruption does not spread.
  for (const replica_record& r : d.records) {
    if (r.kind != replica_record::op::put) {
      continue;
    }
    if (status st = value_format::check(r.key, r.value); !st.is_ok()) {
      return status::corruption("delta for shard " + std::to_string(d.shard) + " at position " +
                                std::to_string(d.position) + ": " + st.message());
    }
  }
  return status::ok();
}

uint64_t snapshot_seq(const write_request& req) {
  return req.first_seq + req.events.size() - 1;  // wraps only for invalid requests
}

namespace {

/// Where an entity write's puts and deletes go: the batch alone (no replication) ...
struct batch_out {
  rocksdb::WriteBatch& batch;
  rocksdb::Status put(std::string key, const std::string& value) { return batch.Put(key, value); }
  rocksdb::Status erase(std::string key) { return batch.Delete(key); }
};

/// ... or the batch and a copy for the replicas (only with a replication sink: the copy costs).
struct captured_out {
  rocksdb::WriteBatch& batch;
  std::vector<replica_record>& records;
  rocksdb::Status put(std::string key, const std::string& value) {
    rocksdb::Status s = batch.Put(key, value);
    if (s.ok()) {
      records.push_back(replica_record{replica_record::op::put, std::move(key), value});
    }
    return s;
  }
  rocksdb::Status erase(std::string key) {
    rocksdb::Status s = batch.Delete(key);
    if (s.ok()) {
      records.push_back(replica_record{replica_record::op::erase, std::move(key), {}});
    }
    return s;
  }
};

template <class Out>
rocksdb::Status append_request(const write_request& req, Out& out, append_counts& counts) {
  uint64_t seq = req.first_seq;
  // Sealed here, on the writer thread: what is stored and replicated carries its checksum.
  for (const std::string& ev : req.events) {
    std::string key = keys::event(req.key, seq++);
    std::string stored = value_format::seal(key, ev);
    rocksdb::Status s = out.put(std::move(key), stored);
    if (!s.ok()) {
      return s;
    }
    counts.bytes += ev.size();
  }
  counts.events += req.events.size();
  if (req.snapshot) {
    std::string key = keys::snapshot(req.key, snapshot_seq(req));
    std::string stored = value_format::seal(key, *req.snapshot);
    rocksdb::Status s = out.put(std::move(key), stored);
    if (!s.ok()) {
      return s;
    }
    counts.bytes += req.snapshot->size();
  }
  if (req.erase_wakeup) {
    return out.erase(keys::wakeup(req.key));
  }
  if (req.wakeup_due_ms) {
    return out.put(keys::wakeup(req.key), encode_i64(*req.wakeup_due_ms));
  }
  return rocksdb::Status::OK();
}

}  // namespace

rocksdb::Status append_captured(const write_request& req, rocksdb::WriteBatch& batch,
                                std::vector<replica_record>& records, append_counts& counts) {
  captured_out out{batch, records};
  return append_request(req, out, counts);
}

rocksdb::Status append(const pending_write& w, rocksdb::WriteBatch& batch, append_counts& counts) {
  if (w.replica) {
    // Fence and reset write only the replica record, which the writer adds per shard.
    if (w.replica->what != replica_op::kind::apply) {
      return rocksdb::Status::OK();
    }
    for (const replica_record& r : w.replica->delta.records) {
      rocksdb::Status s =
          r.kind == replica_record::op::put ? batch.Put(r.key, r.value) : batch.Delete(r.key);
      if (!s.ok()) {
        return s;
      }
      counts.bytes += r.value.size();
    }
    return rocksdb::Status::OK();
  }
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
  batch_out out{batch};
  return append_request(w.req, out, counts);
}

}  // namespace ordermesh::persistence::detail
