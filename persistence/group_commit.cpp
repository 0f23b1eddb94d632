#include "persistence/group_commit.hpp"

#include <exception>

#include <spdlog/spdlog.h>

namespace ordermesh::persistence::detail {

group_commit::group_commit(rocksdb::DB& db, const storage_options& opts)
    : db_(db),
      sync_(opts.sync),
      max_batch_writes_(opts.max_batch_writes == 0 ? 1 : opts.max_batch_writes),
      fail_writes_after_(opts.fail_writes_after),
      queue_(opts.max_queued_writes),
      thread_([this] { run(); }) {}

group_commit::~group_commit() {
  stop();
}

bool group_commit::submit(pending_write& w, bool bounded, status* why) {
  status invalid = w.meta ? status::ok() : validate(w.req);
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
  return s;
}

bool group_commit::on_writer_thread() const {
  return std::this_thread::get_id() == thread_.get_id();
}

void group_commit::run() {
  std::vector<pending_write> batch;
  status failure;  // writer's own copy of health_, read without the lock
  while (true) {
    batch.clear();
    if (!queue_.pop_batch(max_batch_writes_, batch)) {
      return;  // closed and drained
    }
    // After a failed write nothing more is written: a later write acknowledged after a lost one
    // would leave a hole the entity cannot detect. Entries queued before the failure get its error.
    status result = failure.is_ok() ? write(batch) : failure;
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
  bool has_meta = false;
  for (const pending_write& w : batch) {
    rocksdb::Status s = append(w, wb, counts);
    if (!s.ok()) {
      return status::io_error("building write batch: " + s.ToString());
    }
    has_meta = has_meta || w.meta.has_value();
  }

  const uint64_t attempt = attempted_batches_++;
  if (fail_writes_after_ && attempt == *fail_writes_after_) {
    return status::io_error("injected write failure (storage_options::fail_writes_after)");
  }
  rocksdb::WriteOptions wo;
  wo.sync = sync_ || has_meta;  // put_meta promises a synced write even in no-sync test mode
  rocksdb::Status s = db_.Write(wo, &wb);
  if (!s.ok()) {
    return status::io_error(s.ToString());
  }

  // Stats before callbacks, so whoever is woken by a callback sees its write counted.
  writes_.fetch_add(batch.size(), std::memory_order_relaxed);
  batches_.fetch_add(1, std::memory_order_relaxed);
  events_.fetch_add(counts.events, std::memory_order_relaxed);
  bytes_.fetch_add(counts.bytes, std::memory_order_relaxed);
  if (batch.size() > max_batch_.load(std::memory_order_relaxed)) {
    max_batch_.store(batch.size(), std::memory_order_relaxed);  // single writer: no CAS needed
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
      w.done(result);
    } catch (const std::exception& e) {
      spdlog::error("storage: write callback threw: {}", e.what());
    } catch (...) {
      spdlog::error("storage: write callback threw a non-exception");
    }
  }
}

}  // namespace ordermesh::persistence::detail
