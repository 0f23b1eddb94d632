#include "persistence/group_commit.hpp"

#include <algorithm>
#include <chrono>
#include <exception>

#include <spdlog/spdlog.h>

#include "observability/histogram.hpp"
#include "persistence/commit_metrics.hpp"
#include "persistence/replica_meta.hpp"

namespace ordermesh::persistence::detail {

group_commit::group_commit(rocksdb::DB& db, const shard_table& shards, const storage_options& opts,
                           std::unordered_map<uint16_t, replica_state> replicas)
    : db_(db),
      shards_(shards),
      check_epochs_(opts.check_shard_epochs),
      sync_(opts.sync),
      persist_positions_(opts.persist_replica_positions),
      max_batch_writes_(opts.max_batch_writes == 0 ? 1 : opts.max_batch_writes),
      fail_writes_after_(opts.fail_writes_after),
      sink_(opts.replication),
      max_held_(opts.max_unacked_batches == 0 ? 1 : opts.max_unacked_batches),
      queue_(std::make_shared<write_queue>(opts.max_queued_writes)),
      replicas_(std::move(replicas)),
      staged_index_(0x10000, 0),
      thread_([this] { run(); }) {}

group_commit::~group_commit() {
  stop();
}

bool group_commit::submit(pending_write& w, bool bounded, status* why) {
  status invalid = w.meta      ? status::ok()
                   : w.shard   ? validate(*w.shard)
                   : w.replica ? validate(*w.replica)
                               : validate(w.req);
  if (invalid.is_ok()) {
    invalid = check_shard(w);
  }
  // A reset stays in the main lane: it must follow the imports it completes.
  const bool replica_lane = w.replica && w.replica->what != replica_op::kind::reset;
  if (invalid.is_ok() &&
      queue_->push(w, bounded, why,
                   replica_lane ? write_queue::lane::replica : write_queue::lane::main)) {
    return true;
  }
  if (!invalid.is_ok() && why != nullptr) {
    *why = std::move(invalid);
  }
  refused_.fetch_add(1, std::memory_order_relaxed);
  return false;
}

void group_commit::stop() {
  queue_->close();
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
  s.queued = queue_->size();
  s.refused = refused_.load(std::memory_order_relaxed);
  s.refused_at_commit = refused_at_commit_.load(std::memory_order_relaxed);
  s.unacked = held_count_.load(std::memory_order_relaxed);
  s.replicated = replicated_.load(std::memory_order_relaxed);
  s.replication_errors = replication_errors_.load(std::memory_order_relaxed);
  s.applied = applied_.load(std::memory_order_relaxed);
  return s;
}

bool group_commit::on_writer_thread() const {
  return std::this_thread::get_id() == thread_.get_id();
}

replica_state group_commit::replica(uint16_t shard) const {
  std::lock_guard<std::mutex> lock(replica_mutex_);
  auto it = replicas_.find(shard);
  return it == replicas_.end() ? replica_state{} : it->second;
}

void group_commit::raise_fence(uint16_t shard, uint64_t epoch) {
  std::lock_guard<std::mutex> lock(replica_mutex_);
  replica_state& s = replicas_[shard];
  s.fence = std::max(s.fence, epoch);
}

status group_commit::check_shard(const pending_write& w) const {
  if (w.meta) {
    return status::ok();
  }
  if (w.shard) {
    // Regardless of check_epochs_: an owned shard has a writer, and it is this node.
    return shards_.check_not_owned(w.shard->shard, w.shard->drop ? "delete_shard" : "import");
  }
  if (w.replica) {
    // A replica operation on an owned shard would be a second writer (or a deposed primary
    // taking orders from its successor without stepping down first).
    return shards_.check_not_owned(w.replica->delta.shard, "replica operation");
  }
  if (!check_epochs_ || is_barrier(w.req)) {
    return status::ok();
  }
  return shards_.check_epoch(w.req);
}

void group_commit::run() {
  std::vector<pending_write> replica_batch;
  std::vector<pending_write> main_batch;
  status failure;  // writer's own copy of health_, read without the lock
  while (true) {
    replica_batch.clear();
    main_batch.clear();
    if (!queue_->take(max_batch_writes_, held_.size() < max_held_, !held_.empty(), replica_batch,
                      main_batch)) {
      return;  // closed, drained, every held batch answered
    }
    release_answered();
    if (!replica_batch.empty()) {
      // Never held: a follower answers its primary whatever its own batches wait for.
      const status result = commit(replica_batch, failure);
      notify(replica_batch, result);
    }
    if (!main_batch.empty()) {
      const status result = commit(main_batch, failure);
      hold_or_notify(main_batch, result);
    }
    release_answered();
  }
}

status group_commit::commit(std::vector<pending_write>& batch, status& failure) {
  deltas_.clear();
  // Checked again here, after the take: release_shard changes the table before it queues its
  // own record, so an entry checked ok now is committed before that record, i.e. before
  // release_shard returns, and one queued before the release but checked after it is refused.
  status exposed_refused = status::ok();
  for (pending_write& w : batch) {
    w.refusal = check_shard(w);
    if (!w.refusal.is_ok()) {
      refused_at_commit_.fetch_add(1, std::memory_order_relaxed);
      if (w.req.exposed && !w.meta && !w.shard && !w.replica && exposed_refused.is_ok()) {
        exposed_refused =
            status::io_error("a write others had already acted on was refused at commit (" +
                             w.refusal.to_string() + "); the journal would no longer be a prefix");
      }
    }
  }
  // After a failed write nothing more is written: a later write acknowledged after a lost one
  // would leave a hole the entity cannot detect. Entries queued before the failure get its error.
  status result = !failure.is_ok()           ? failure
                  : !exposed_refused.is_ok() ? exposed_refused
                                             : write(batch);
  if (!result.is_ok()) {
    deltas_.clear();
    if (failure.is_ok()) {
      failure = result;
      spdlog::error("storage: write failed, refusing all further writes: {}", result.to_string());
      {
        std::lock_guard<std::mutex> lock(health_mutex_);
        health_ = result;
      }
      queue_->fail(result);
    }
    return result;
  }
  for (pending_write& w : batch) {
    if (w.refusal.is_ok() && w.on_commit) {
      w.on_commit();
    }
  }
  return result;
}

group_commit::staged_replica& group_commit::stage(uint16_t shard) {
  uint32_t& index = staged_index_[shard];
  if (index == 0) {
    staged_replica s;
    s.shard = shard;
    // No lock: only this thread changes replicas_, and reading beside other readers is safe.
    auto it = replicas_.find(shard);
    s.state = it == replicas_.end() ? replica_state{} : it->second;
    staged_.push_back(std::move(s));
    index = static_cast<uint32_t>(staged_.size());
  }
  return staged_[index - 1];
}

status group_commit::write(std::vector<pending_write>& batch) {
  rocksdb::WriteBatch wb;
  append_counts counts;
  bool must_sync = false;
  uint64_t written = 0;
  uint64_t applied = 0;
  // Clears the staging of this batch on every path out, so the next batch starts from the
  // committed states.
  struct unstage {
    group_commit& g;
    ~unstage() {
      for (const staged_replica& s : g.staged_) {
        g.staged_index_[s.shard] = 0;
      }
      g.staged_.clear();
    }
  } cleanup{*this};
  for (pending_write& w : batch) {
    if (!w.refusal.is_ok()) {
      continue;  // refused at commit time: not written, not counted
    }
    rocksdb::Status s;
    if (w.replica) {
      const shard_delta& d = w.replica->delta;
      staged_replica& st = stage(d.shard);
      switch (w.replica->what) {
        case replica_op::kind::apply:
          // Against the staged state: two deltas of one shard in one batch apply in order.
          w.refusal = check_apply(st.state, d);
          if (!w.refusal.is_ok()) {
            continue;  // an answer to its caller, not a failure of the batch
          }
          st.state = replica_state{d.position, d.epoch,
                                   std::max({st.state.fence, d.epoch, d.sent_at_epoch})};
          ++applied;
          break;
        case replica_op::kind::fence:
          if (d.epoch <= st.state.fence) {
            continue;  // already fenced at least that high: nothing to write, ok
          }
          st.state.fence = d.epoch;
          break;
        case replica_op::kind::reset:
          st.state = replica_state{d.position, d.epoch, std::max(st.state.fence, d.epoch)};
          break;
      }
      st.dirty = true;
      st.by_replica_op = true;
      s = append(w, wb, counts);
    } else if (w.shard && w.shard->drop) {
      // The range goes, so does the position that described it; the fence stays (it protects
      // against deposed primaries, whatever this node holds).
      staged_replica& st = stage(w.shard->shard);
      if (w.shard->unless_fence != 0 && st.state.fence >= w.shard->unless_fence) {
        // Checked here, in order with every replica operation: a primary of that epoch may
        // have heard from this copy (forget_replica).
        w.refusal = status::invalid("the shard's fence reached epoch " +
                                    std::to_string(w.shard->unless_fence) + ": kept");
        continue;
      }
      st.state.position = 0;
      st.state.epoch = 0;
      st.dirty = true;
      st.by_replica_op = true;
      st.advanced = false;
      st.records.clear();
      s = append(w, wb, counts);
    } else if (writes_entity(w)) {
      staged_replica& st = stage(w.req.key.shard);
      if (!st.advanced) {
        // One step per batch, whatever the number of writes of the shard in it.
        st.advanced = true;
        st.dirty = true;
        st.prev_epoch = st.state.epoch;
        st.state.position += 1;
        st.state.epoch = shards_.owned(w.req.key.shard);
        st.state.fence = std::max(st.state.fence, st.state.epoch);
      }
      s = sink_ ? append_captured(w.req, wb, st.records, counts) : append(w, wb, counts);
    } else {
      s = append(w, wb, counts);
    }
    if (!s.ok()) {
      return status::io_error("building write batch: " + s.ToString());
    }
    ++written;
    // Meta puts, shard and replica operations promise a synced write even in no-sync test mode.
    must_sync = must_sync || w.meta.has_value() || w.shard.has_value() || w.replica.has_value();
  }
  for (const staged_replica& st : staged_) {
    // A replica operation's record is written whatever the option says: only a cluster has them.
    if (!st.dirty || (!persist_positions_ && !st.by_replica_op)) {
      continue;
    }
    rocksdb::Status s = wb.Put(keys::meta(replica_meta_name(st.shard)), encode_replica(st.state));
    if (!s.ok()) {
      return status::io_error("building write batch: " + s.ToString());
    }
  }
  if (written == 0 && wb.Count() == 0) {
    return status::ok();  // every entry was refused or a no-op: nothing to write
  }

  const uint64_t attempt = attempted_batches_++;
  if (fail_writes_after_ && attempt == *fail_writes_after_) {
    return status::io_error("injected write failure (storage_options::fail_writes_after)");
  }
  rocksdb::WriteOptions wo;
  wo.sync = sync_ || must_sync;
  const auto write_started = std::chrono::steady_clock::now();
  rocksdb::Status s = db_.Write(wo, &wb);
  if (!s.ok()) {
    return status::io_error(s.ToString());
  }
  auto& metrics = commit_metrics::get();
  if (wo.sync) {
    metrics.fsync_seconds.observe(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - write_started).count());
  }
  metrics.batch_writes.observe(static_cast<double>(written));

  {
    std::lock_guard<std::mutex> lock(replica_mutex_);
    for (const staged_replica& st : staged_) {
      if (st.dirty) {
        replicas_[st.shard] = st.state;
      }
    }
  }
  if (sink_) {
    for (staged_replica& st : staged_) {
      if (st.advanced) {
        deltas_.push_back(shard_delta{st.shard, st.state.epoch, st.state.position, st.prev_epoch,
                                      std::move(st.records)});
      }
    }
    std::sort(deltas_.begin(), deltas_.end(),
              [](const shard_delta& a, const shard_delta& b) { return a.shard < b.shard; });
  }

  // Stats before callbacks, so whoever is woken by a callback sees its write counted.
  writes_.fetch_add(written, std::memory_order_relaxed);
  batches_.fetch_add(1, std::memory_order_relaxed);
  events_.fetch_add(counts.events, std::memory_order_relaxed);
  bytes_.fetch_add(counts.bytes, std::memory_order_relaxed);
  applied_.fetch_add(applied, std::memory_order_relaxed);
  if (written > max_batch_.load(std::memory_order_relaxed)) {
    max_batch_.store(written, std::memory_order_relaxed);  // single writer: no CAS needed
  }
  return status::ok();
}

void group_commit::hold_or_notify(std::vector<pending_write>& batch, const status& result) {
  if (deltas_.empty() && held_.empty()) {
    notify(batch, result);  // the path of every batch without a sink
    return;
  }
  // This node's own records (ownership, meta, shard imports and deletes) are answered now, not
  // behind replicated batches: their outcome is known once synced, and the member agent that
  // waits for them is what tells the replica leader of a new shard map. Held behind batches
  // whose followers died, an own_shard or release_shard blocked the agent until those batches
  // timed out, the leader (deposed, its ISR changes refused) never learned why, and the node
  // left the shards the controller had just given it unserved for seconds (chaos `kill`).
  auto local_only = [](const pending_write& w) { return w.meta || w.shard; };
  if (std::any_of(batch.begin(), batch.end(), local_only)) {
    std::vector<pending_write> now;
    std::vector<pending_write> rest;
    for (pending_write& w : batch)
      (local_only(w) ? now : rest).push_back(std::move(w));
    notify(now, result);
    batch.swap(rest);
    if (batch.empty())
      return;
  }
  if (deltas_.empty()) {
    // Nothing to wait for itself, but callbacks keep submission order.
    held_.push_back(held_batch{std::move(batch), result, nullptr});
    held_count_.store(held_.size(), std::memory_order_relaxed);
    return;
  }
  auto slot = std::make_shared<ack_slot>();
  held_.push_back(held_batch{std::move(batch), result, slot});
  held_count_.store(held_.size(), std::memory_order_relaxed);
  replicated_.fetch_add(1, std::memory_order_relaxed);
  // The callback keeps the queue alive: a sink may answer after the engine has moved on.
  std::function<void(status)> done = [queue = queue_, slot](status s) {
    if (!queue->post_ack(*slot, std::move(s))) {
      spdlog::error("storage: replication sink answered a batch twice; the second is ignored");
    }
  };
  try {
    sink_->replicate(std::move(deltas_), done);
  } catch (const std::exception& e) {
    queue_->post_ack(*slot,
                     status::unavailable(std::string("replication sink threw: ") + e.what()));
  } catch (...) {
    queue_->post_ack(*slot, status::unavailable("replication sink threw a non-exception"));
  }
  deltas_.clear();
}

void group_commit::release_answered() {
  while (!held_.empty()) {
    held_batch& front = held_.front();
    status result = front.result;
    if (front.ack) {
      status answer;
      if (!queue_->answered(*front.ack, &answer)) {
        return;  // the oldest waits: so do all later ones
      }
      if (!answer.is_ok()) {
        replication_errors_.fetch_add(1, std::memory_order_relaxed);
        if (result.is_ok()) {
          // On this disk, not acknowledged: never reported as ok (see storage_engine.hpp).
          result = status::unavailable("written here but not acknowledged by the replicas: " +
                                       answer.to_string());
        }
      }
    }
    // Out of the window before the callbacks, so whoever they wake sees it gone (stats first).
    std::vector<pending_write> entries = std::move(front.entries);
    const status local = front.result;
    held_.pop_front();
    held_count_.store(held_.size(), std::memory_order_relaxed);
    notify(entries, result, &local);
  }
}

void group_commit::notify(std::vector<pending_write>& batch, const status& result,
                          const status* local) {
  for (pending_write& w : batch) {
    if (!w.done) {
      continue;
    }
    // An ownership record whose on_commit ran must be reported ok, or storage_engine's table
    // (set by on_commit) and its records (set on ok) disagree, and release_shard then finds
    // nothing to release while every write is still accepted under the epoch.
    const status& outcome = local != nullptr && (w.meta || w.shard) ? *local : result;
    // A throwing callback is a caller bug; it must not kill the writer or skip the others.
    try {
      w.done(w.refusal.is_ok() ? outcome : w.refusal);
    } catch (const std::exception& e) {
      spdlog::error("storage: write callback threw: {}", e.what());
    } catch (...) {
      spdlog::error("storage: write callback threw a non-exception");
    }
  }
}

}  // namespace ordermesh::persistence::detail
