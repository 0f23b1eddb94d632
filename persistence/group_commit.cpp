#include "persistence/group_commit.hpp"

#include <exception>

#include <spdlog/spdlog.h>

namespace ordermesh::persistence::detail {

group_commit::group_commit(rocksdb::DB& db, const shard_table& shards, const storage_options& opts)
    : db_(db),
      shards_(shards),
      check_epochs_(opts.check_shard_epochs),
      sync_(opts.sync),
      max_batch_writes_(opts.max_batch_writes == 0 ? 1 : opts.max_batch_writes),
      fail_writes_after_(opts.fail_writes_after),
      queue_(opts.max_queued_writes),
      thread_([this] { run(); }) {}

group_commit::~group_commit() {
  stop();
}

bool group_commit::submit(pending_write& w, bool bounded, status* why) {
  status invalid = w.meta ? status::ok() : w.shard ? validate(*w.shard) : validate(w.req);
  if (invalid.is_ok()) {
    invalid = check_shard(w);
  }
  if (invalid.is_ok() && queue_.push(w, bounded, why)) {
    return true;
  }
  if (!invalid.is_ok() && why != nullptr) {
    *why = std::move(invalid);
  }
  refused_.fetch_add(1, std::memory_order_relaxed);
  return false;
}

void group_commit::stop() {
  queue_.close();
  if (thread_.joinable()) {
    thread_.join();
  }
}

status group_commit::health() const {
  std::lock_guard<std::mutex> lock(health_mutex_);
  return health_;
}

storage_stats group_commit::stats() const {
  storage_stats s;
  s.writes = writes_.load(std::memory_order_relaxed);
  s.batches = batches_.load(std::memory_order_relaxed);
  s.events = events_.load(std::memory_order_relaxed);
  s.bytes = bytes_.load(std::memory_order_relaxed);
  s.max_batch = max_batch_.load(std::memory_order_relaxed);
  s.queued = queue_.size();
  s.refused = refused_.load(std::memory_order_relaxed);
  s.refused_at_commit = refused_at_commit_.load(std::memory_order_relaxed);
  return s;
}

bool group_commit::on_writer_thread() const {
  return std::this_thread::get_id() == thread_.get_id();
}

status group_commit::check_shard(const pending_write& w) const {
  if (w.meta) {
    return status::ok();
  }
  if (w.shard) {
    // Regardless of check_epochs_: an owned shard has a writer, and it is this node.
    return shards_.check_not_owned(w.shard->shard, w.shard->drop ? "delete_shard" : "import");
  }
  if (!check_epochs_ || is_barrier(w.req)) {
    return status::ok();
  }
  return shards_.check_epoch(w.req);
}

void group_commit::run() {
  std::vector<pending_write> batch;
  status failure;  // writer's own copy of health_, read without the lock
  while (true) {
    batch.clear();
    if (!queue_.pop_batch(max_batch_writes_, batch)) {
      return;  // closed and drained
    }
    // Checked again here, after the pop: release_shard changes the table before it queues its
    // own record, so an entry checked ok now is committed before that record, i.e. before
    // release_shard returns, and one queued before the release but checked after it is refused.
    status exposed_refused = status::ok();
    for (pending_write& w : batch) {
      w.refusal = check_shard(w);
      if (!w.refusal.is_ok()) {
        refused_at_commit_.fetch_add(1, std::memory_order_relaxed);
        if (w.req.exposed && exposed_refused.is_ok()) {
          exposed_refused = status::io_error(
              "a write others had already acted on was refused at commit (" +
              w.refusal.to_string() + "); the journal would no longer be a prefix");
        }
      }
    }
    // After a failed write nothing more is written: a later write acknowledged after a lost one
    // would leave a hole the entity cannot detect. Entries queued before the failure get its error.
    status result = !failure.is_ok()           ? failure
                    : !exposed_refused.is_ok() ? exposed_refused
                                               : write(batch);
    if (!result.is_ok() && failure.is_ok()) {
      failure = result;
      spdlog::error("storage: write failed, refusing all further writes: {}", result.to_string());
      {
        std::lock_guard<std::mutex> lock(health_mutex_);
        health_ = result;
      }
      queue_.fail(result);
    }
    notify(batch, result);
  }
}

status group_commit::write(const std::vector<pending_write>& batch) {
  rocksdb::WriteBatch wb;
  append_counts counts;
  bool must_sync = false;
  uint64_t written = 0;
  for (const pending_write& w : batch) {
    if (!w.refusal.is_ok()) {
      continue;  // refused at commit time: not written, not counted
    }
    rocksdb::Status s = append(w, wb, counts);
    if (!s.ok()) {
      return status::io_error("building write batch: " + s.ToString());
    }
    ++written;
    // Meta puts and shard operations promise a synced write even in no-sync test mode.
    must_sync = must_sync || w.meta.has_value() || w.shard.has_value();
  }
  if (written == 0) {
    return status::ok();  // every entry was refused: nothing to write (callbacks get refusals)
  }

  const uint64_t attempt = attempted_batches_++;
  if (fail_writes_after_ && attempt == *fail_writes_after_) {
    return status::io_error("injected write failure (storage_options::fail_writes_after)");
  }
  rocksdb::WriteOptions wo;
  wo.sync = sync_ || must_sync;
  rocksdb::Status s = db_.Write(wo, &wb);
  if (!s.ok()) {
    return status::io_error(s.ToString());
  }

  // Stats before callbacks, so whoever is woken by a callback sees its write counted.
  writes_.fetch_add(written, std::memory_order_relaxed);
  batches_.fetch_add(1, std::memory_order_relaxed);
  events_.fetch_add(counts.events, std::memory_order_relaxed);
  bytes_.fetch_add(counts.bytes, std::memory_order_relaxed);
  if (written > max_batch_.load(std::memory_order_relaxed)) {
    max_batch_.store(written, std::memory_order_relaxed);  // single writer: no CAS needed
  }
  return status::ok();
}

void group_commit::notify(std::vector<pending_write>& batch, const status& result) {
  for (pending_write& w : batch) {
    if (!w.done) {
      continue;
    }
    // A throwing callback is a caller bug; it must not kill the writer or skip the others.
    try {
      w.done(w.refusal.is_ok() ? result : w.refusal);
    } catch (const std::exception& e) {
      spdlog::error("storage: write callback threw: {}", e.what());
    } catch (...) {
      spdlog::error("storage: write callback threw a non-exception");
    }
  }
}

}  // namespace ordermesh::persistence::detail
