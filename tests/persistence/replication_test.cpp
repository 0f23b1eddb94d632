// Replication storage: per-shard positions, capture through the sink (held callbacks, errors,
// the bound), apply on a follower (order, fence, divergence), and re-seeding by a full copy.
// Primary and followers are separate engines in one process, each on real RocksDB.
#include <chrono>
#include <condition_variable>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>

#include "persistence/keys.hpp"
#include "persistence/storage_engine.hpp"
#include "persistence/value_format.hpp"
#include "tests/persistence/test_support.hpp"

using namespace ordermesh::persistence;
using namespace ordermesh::persistence::test;

namespace {

/// Keeps every batch's deltas and done; the test answers them (or not) when it wants.
class manual_sink : public replication_sink {
 public:
  struct call {
    std::vector<shard_delta> deltas;
    std::function<void(status)> done;
  };

  void replicate(std::vector<shard_delta> deltas, std::function<void(status)> done) override {
    std::unique_lock<std::mutex> lock(mutex_);
    if (closing_) {
      lock.unlock();
      done(status::unavailable("test ended"));
      return;
    }
    calls_.push_back(call{std::move(deltas), std::move(done)});
    cv_.notify_all();
  }
  /// Hang guard only: waits until `n` batches were handed over.
  bool wait_calls(size_t n) {
    std::unique_lock<std::mutex> lock(mutex_);
    return cv_.wait_for(lock, std::chrono::minutes(1), [&] { return calls_.size() >= n; });
  }
  size_t calls() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return calls_.size();
  }
  std::vector<shard_delta> deltas(size_t i) const {
    std::lock_guard<std::mutex> lock(mutex_);
    return calls_.at(i).deltas;
  }
  void answer(size_t i, status s) {
    std::function<void(status)> done;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      done = std::move(calls_.at(i).done);
      calls_.at(i).done = nullptr;
    }
    if (done) {
      done(std::move(s));  // outside the lock: the writer may call replicate meanwhile
    }
  }
  /// Answers everything still open, so that a failed check cannot leave the engine's destructor
  /// waiting for answers forever.
  void answer_all(const status& s) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      closing_ = true;  // and every later batch is answered at once
    }
    for (size_t i = 0; i < calls(); ++i) {
      answer(i, s);
    }
  }

 private:
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  std::vector<call> calls_;
  bool closing_ = false;
};

storage_options with_sink(const temp_dir& dir, std::shared_ptr<replication_sink> sink) {
  storage_options o = options_for(dir);
  o.replication = std::move(sink);
  o.max_batch_writes = 1;  // one write per batch: the test decides what each batch is
  return o;
}

/// Declared after the engine, destroyed before it: answers what a failed test left open.
struct answer_on_exit {
  manual_sink& sink;
  ~answer_on_exit() { sink.answer_all(status::unavailable("test ended")); }
};

/// A manual_sink that keeps the writer thread inside its first replicate() until opened: what
/// is submitted meanwhile is taken as one batch when the gate opens.
class gated_sink : public manual_sink {
 public:
  void replicate(std::vector<shard_delta> deltas, std::function<void(status)> done) override {
    const bool first = calls() == 0;
    manual_sink::replicate(std::move(deltas), std::move(done));
    if (first) {
      opened_.wait_for(std::chrono::minutes(1));  // hang guard only
    }
  }
  void open() { gate_.set_value(); }

 private:
  std::promise<void> gate_;
  std::shared_future<void> opened_ = gate_.get_future().share();
};

/// Answers ok at once and keeps every delta, in order, for the test to apply by hand.
class log_sink : public replication_sink {
 public:
  void replicate(std::vector<shard_delta> deltas, std::function<void(status)> done) override {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      for (shard_delta& d : deltas) {
        log_.push_back(std::move(d));
      }
    }
    done(status::ok());
  }
  std::vector<shard_delta> log() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return log_;
  }

 private:
  mutable std::mutex mutex_;
  std::vector<shard_delta> log_;
};

/// Applies every delta on a follower before answering, as a synchronous replica would.
class applying_sink : public replication_sink {
 public:
  explicit applying_sink(storage_engine*& follower) : follower_(follower) {}
  void replicate(std::vector<shard_delta> deltas, std::function<void(status)> done) override {
    for (const shard_delta& d : deltas) {
      status st = follower_->apply_replicated(d);
      if (!st.is_ok()) {
        done(st);
        return;
      }
    }
    done(status::ok());
  }

 private:
  storage_engine*& follower_;
};

/// Every record of `shard` through one begin_export, in small chunks.
shard_records export_records(const storage_engine& engine, uint16_t shard,
                             uint64_t* position = nullptr) {
  status st;
  auto reader = engine.begin_export(shard, &st);
  REQUIRE(reader != nullptr);
  if (position != nullptr) {
    *position = reader->position();
  }
  shard_records out;
  for (int i = 0; i < 100000; ++i) {  // hang guard
    shard_chunk c;
    REQUIRE(reader->next(200, c).is_ok());
    CHECK(c.position == reader->position());
    out.insert(out.end(), c.records.begin(), c.records.end());
    if (c.done) {
      return out;
    }
  }
  FAIL("export did not finish");
  return out;
}

shard_delta delta(uint16_t shard, uint64_t epoch, uint64_t position, uint64_t prev_epoch,
                  const std::string& id) {
  shard_delta d{shard, epoch, position, prev_epoch, {}};
  // Sealed as the primary's engine stores it: a follower checks every value's checksum.
  const std::string key = keys::event({shard, 1, id}, position);
  d.records.push_back(replica_record{
      replica_record::op::put, key,
      value_format::seal(key, "v" + std::to_string(position) + "@" + std::to_string(epoch))});
  return d;
}

/// Submits without waiting; the callback appends "<tag>:<status>" to `log` (writer thread).
void submit_logged(storage_engine& engine, write_request r, const std::string& tag,
                   std::vector<std::string>& log, std::mutex& mutex) {
  REQUIRE(engine.submit(std::move(r), [&log, &mutex, tag](const status& s) {
    std::lock_guard<std::mutex> lock(mutex);
    log.push_back(tag + ":" + s.to_string());
  }));
}

/// Hang guard only: waits until `log` holds at least `n` lines (the writer runs callbacks).
void wait_logged(const std::vector<std::string>& log, std::mutex& mutex, size_t n) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(1);
  while (std::chrono::steady_clock::now() < deadline) {
    {
      std::lock_guard<std::mutex> lock(mutex);
      if (log.size() >= n)
        return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

}  // namespace

TEST_CASE("replication: a position advances once per batch per shard written",
          "[persistence][replication]") {
  temp_dir dir;
  storage_options o = options_for(dir);
  o.max_batch_writes = 64;
  {
    auto engine = open_engine(o);
    CHECK(engine->replica_position(3) == 0);
    REQUIRE(write_sync(*engine, events_request({3, 1, "a"}, 1, {"x"})).is_ok());
    REQUIRE(write_sync(*engine, events_request({3, 1, "a"}, 2, {"y"})).is_ok());
    CHECK(engine->replica_position(3) == 2);
    CHECK(engine->replica_position(4) == 0);

    // One batch with three writes to shard 4 and one to shard 5: one step each.
    writer_gate gate;
    REQUIRE(engine->submit(events_request({9, 1, "hold"}, 1, {"x"}), gate.blocking_callback()));
    gate.wait_until_writer_blocked();
    ack_counter acks;
    REQUIRE(engine->submit(events_request({4, 1, "b"}, 1, {"x"}), acks.callback()));
    REQUIRE(engine->submit(events_request({4, 1, "c"}, 1, {"x"}), acks.callback()));
    write_request wake;
    wake.key = {4, 1, "c"};
    wake.wakeup_due_ms = 5;
    REQUIRE(engine->submit(std::move(wake), acks.callback()));
    REQUIRE(engine->submit(events_request({5, 1, "d"}, 1, {"x"}), acks.callback()));
    write_request barrier;  // writes nothing: no step
    barrier.key.shard = 6;
    REQUIRE(engine->submit(std::move(barrier), acks.callback()));
    gate.open();
    REQUIRE(acks.wait_for(5));
    CHECK(engine->stats().batches == 4);
    CHECK(engine->replica_position(4) == 1);
    CHECK(engine->replica_position(5) == 1);
    CHECK(engine->replica_position(6) == 0);
    CHECK(engine->replica_position(9) == 1);

    // Imports do not advance it; delete_shard sets it to 0 with the range.
    const std::string imported = keys::event({7, 1, "i"}, 1);
    REQUIRE(
        import_sync(*engine, 7, {{imported, value_format::seal(imported, "imported")}}).is_ok());
    CHECK(engine->replica_position(7) == 0);
    REQUIRE(engine->delete_shard(3).is_ok());
    CHECK(engine->replica_position(3) == 0);
    REQUIRE(write_sync(*engine, events_request({3, 1, "a"}, 1, {"again"})).is_ok());
    CHECK(engine->replica_position(3) == 1);
    CHECK(engine->put_meta("replica/3", "position 99 epoch 0 fence 0").kind() ==
          status::code::invalid);
  }
  auto engine = open_engine(o);
  CHECK(engine->replica_position(3) == 1);
  CHECK(engine->replica_position(4) == 1);
  CHECK(engine->replica_position(5) == 1);
  CHECK(engine->replica_position(9) == 1);
}

TEST_CASE("replication: the position on disk is the last committed batch's",
          "[persistence][replication]") {
  temp_dir dir;
  storage_options o = options_for(dir);
  o.fail_writes_after = 3;  // batches 1..3 written, batch 4 fails, nothing after it is written
  o.max_batch_writes = 1;
  {
    auto engine = open_engine(o);
    for (uint64_t seq = 1; seq <= 3; ++seq) {
      REQUIRE(write_sync(*engine, events_request({2, 1, "x"}, seq, {"e"})).is_ok());
    }
    CHECK(write_sync(*engine, events_request({2, 1, "x"}, 4, {"e"})).kind() ==
          status::code::io_error);
    CHECK(engine->replica_position(2) == 3);
  }
  o.fail_writes_after.reset();
  auto engine = open_engine(o);
  CHECK(engine->replica_position(2) == 3);
  recovered_entity r;
  REQUIRE(engine->load({2, 1, "x"}, r).is_ok());
  CHECK(r.last_seq == 3);
  CHECK(engine->replica(2).epoch == 0);  // single-node mode: written while not owned
}

TEST_CASE("replication: a node alone keeps positions in memory, replica operations on disk",
          "[persistence][replication]") {
  temp_dir dir;
  storage_options o = options_for(dir);
  o.persist_replica_positions = false;  // what orderd sets without --etcd
  o.max_batch_writes = 1;
  {
    auto engine = open_engine(o);
    for (uint64_t seq = 1; seq <= 3; ++seq) {
      REQUIRE(write_sync(*engine, events_request({2, 1, "x"}, seq, {"e"})).is_ok());
    }
    CHECK(engine->replica_position(2) == 3);  // advanced in memory
    REQUIRE(engine->fence_replica(7, 4).is_ok());
  }
  auto engine = open_engine(o);
  CHECK(engine->replica_position(2) == 0);  // not written: nothing reads it on a lone node
  CHECK(engine->replica(7).fence == 4);     // a replica operation's record is always written
  recovered_entity r;
  REQUIRE(engine->load({2, 1, "x"}, r).is_ok());
  CHECK(r.last_seq == 3);  // the data itself is all there
}

TEST_CASE("replication: a follower applying every delta holds a byte-identical shard",
          "[persistence][replication]") {
  temp_dir pdir;
  temp_dir fdir;
  auto follower = open_engine(checked_options(fdir));
  storage_engine* follower_ptr = follower.get();
  storage_options po = checked_options(pdir);
  po.replication = std::make_shared<applying_sink>(follower_ptr);
  po.max_batch_writes = 16;
  auto primary = open_engine(po);
  for (uint16_t shard = 1; shard <= 3; ++shard) {
    REQUIRE(primary->own_shard(shard, 7).is_ok());
  }

  // Concurrent writers on three shards: events, snapshots, wakeups set and erased, opaque bytes.
  constexpr int writers = 3;
  constexpr int per_writer = 150;
  ack_counter acks;
  std::vector<std::thread> threads;
  for (int t = 0; t < writers; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < per_writer; ++i) {
        const uint16_t shard = static_cast<uint16_t>(1 + (i % 10) % 3);  // fixed per entity
        const entity_key k{shard, static_cast<uint8_t>(1 + t), "e" + std::to_string(i % 10)};
        const uint64_t seq = static_cast<uint64_t>(i / 10) + 1;
        write_request r =
            at_epoch(events_request(k, seq, {std::string("\x00\xFF", 2) + std::to_string(i)}), 7);
        if (i % 4 == 0) {
          r.snapshot = "S" + std::to_string(i);
        }
        if (i % 3 == 0) {
          r.wakeup_due_ms = i;
        } else if (i % 5 == 0) {
          r.erase_wakeup = true;
        }
        while (!primary->submit(r, acks.callback())) {
          std::this_thread::yield();  // overloaded: retry (bounded by the test's own count)
        }
      }
    });
  }
  for (auto& th : threads) {
    th.join();
  }
  REQUIRE(acks.wait_for(writers * per_writer));
  CHECK(acks.errors() == 0);
  const storage_stats s = primary->stats();
  CHECK(s.replicated == s.batches - 3);  // every batch but the three ownership records
  CHECK(s.replication_errors == 0);
  CHECK(s.unacked == 0);
  uint64_t applied = 0;
  for (uint16_t shard = 1; shard <= 3; ++shard) {
    uint64_t ppos = 0;
    uint64_t fpos = 0;
    const shard_records p = export_records(*primary, shard, &ppos);
    const shard_records f = export_records(*follower, shard, &fpos);
    CHECK(p.size() > 50);
    CHECK(p == f);
    CHECK(ppos == fpos);
    CHECK(ppos == primary->replica_position(shard));
    CHECK(follower->replica(shard).epoch == 7);
    applied += fpos;
  }
  CHECK(follower->stats().applied == applied);
}

TEST_CASE("replication: callbacks wait for the sink in order and an error is unavailable",
          "[persistence][replication]") {
  temp_dir dir;
  auto sink = std::make_shared<manual_sink>();
  storage_options o = with_sink(dir, sink);
  auto engine = open_engine(o);
  answer_on_exit closer{*sink};
  std::mutex mutex;
  std::vector<std::string> log;
  const entity_key k{8, 1, "o"};

  submit_logged(*engine, events_request(k, 1, {"e1"}), "1", log, mutex);
  REQUIRE(sink->wait_calls(1));
  submit_logged(*engine, events_request(k, 2, {"e2"}), "2", log, mutex);
  REQUIRE(sink->wait_calls(2));
  write_request barrier;
  barrier.key.shard = 8;
  submit_logged(*engine, std::move(barrier), "barrier", log, mutex);
  submit_logged(*engine, events_request({9, 1, "p"}, 1, {"x"}), "3", log, mutex);
  REQUIRE(sink->wait_calls(3));

  const std::vector<shard_delta> first = sink->deltas(0);
  REQUIRE(first.size() == 1);
  CHECK(first[0].shard == 8);
  CHECK(first[0].position == 1);
  CHECK(first[0].prev_epoch == 0);
  REQUIRE(first[0].records.size() == 1);
  CHECK(first[0].records[0].kind == replica_record::op::put);
  CHECK(first[0].records[0].key == keys::event(k, 1));
  // Byte for byte as stored, checksum included.
  CHECK(first[0].records[0].value == value_format::seal(keys::event(k, 1), "e1"));
  CHECK(sink->deltas(1)[0].position == 2);

  // The later batches are answered first: nothing runs before the oldest is answered.
  sink->answer(2, status::ok());
  sink->answer(1, status::ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  {
    std::lock_guard<std::mutex> lock(mutex);
    CHECK(log.empty());
  }
  CHECK(engine->stats().unacked == 4);  // 3 replicated batches and the barrier's, in between
  // The writes are on this disk already: not acknowledged is not absent.
  recovered_entity r;
  REQUIRE(engine->load(k, r).is_ok());
  CHECK(r.last_seq == 2);

  sink->answer(0, status::io_error("follower timed out"));
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(1);
  const auto logged = [&] {
    std::lock_guard<std::mutex> lock(mutex);
    return log.size();
  };
  while (logged() < 4 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  std::lock_guard<std::mutex> lock(mutex);
  REQUIRE(log.size() == 4);
  CHECK(log[0].rfind("1:unavailable: written here but not acknowledged", 0) == 0);
  CHECK(log[0].find("follower timed out") != std::string::npos);
  CHECK(log[1] == "2:ok");
  CHECK(log[2] == "barrier:ok");
  CHECK(log[3] == "3:ok");
  CHECK(engine->stats().replication_errors == 1);
  CHECK(engine->health().is_ok());  // a replication error is the shard's, not the disk's
}

TEST_CASE("replication: an ownership record shares a batch that replication fails and stays done",
          "[persistence][replication]") {
  // Regression (system_replication, a primary killed under load): own_shard's record committed
  // in the same batch as entity writes whose followers never answered. The table said owned,
  // the record said not, own_shard reported unavailable, and every release_shard after it
  // returned ok without releasing: the node demoted the shard every tick and never followed.
  temp_dir dir;
  auto sink = std::make_shared<gated_sink>();
  storage_options o = with_sink(dir, sink);
  o.max_batch_writes = 16;
  auto engine = open_engine(o);
  answer_on_exit closer{*sink};
  std::mutex mutex;
  std::vector<std::string> log;

  submit_logged(*engine, events_request({8, 1, "a"}, 1, {"e1"}), "a", log, mutex);
  REQUIRE(sink->wait_calls(1));  // the writer is now held inside the sink
  submit_logged(*engine, events_request({9, 1, "b"}, 1, {"e1"}), "b", log, mutex);
  auto owned = std::async(std::launch::async, [&] { return engine->own_shard(20, 3); });
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(1);
  while (engine->stats().queued < 2 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  REQUIRE(engine->stats().queued == 2);
  sink->open();
  REQUIRE(sink->wait_calls(2));
  REQUIRE(sink->deltas(1).size() == 1);
  CHECK(sink->deltas(1)[0].shard == 9);  // b and the record were taken together
  CHECK(engine->stats().max_batch == 2);
  sink->answer(0, status::ok());
  sink->answer(1, status::io_error("follower gone"));

  const status own = owned.get();
  CHECK(own.is_ok());  // on this disk, and ownership is this node's business alone
  CHECK(engine->owned_epoch(20) == 3);
  wait_logged(log, mutex, 2);
  {
    std::lock_guard<std::mutex> lock(mutex);
    REQUIRE(log.size() == 2);
    CHECK(log[0] == "a:ok");
    CHECK(log[1].rfind("b:unavailable", 0) == 0);  // entity writes still need their acks
  }
  REQUIRE(engine->release_shard(20).is_ok());
  CHECK(engine->owned_epoch(20) == 0);
  CHECK(engine->owned_shards().empty());
}

TEST_CASE("replication: ownership and meta records do not wait for earlier replicated batches",
          "[persistence][replication]") {
  // The member agent calls own_shard / release_shard / put_meta synchronously; the replica
  // leader that answers the sink learns of new shard maps through that agent. Held behind an
  // unanswered batch, those calls blocked the agent (chaos `kill`: a node deposed while its
  // follower died served nothing for 5 s). They return once their own batch is synced.
  temp_dir dir;
  auto sink = std::make_shared<manual_sink>();
  storage_options o = with_sink(dir, sink);
  auto engine = open_engine(o);
  answer_on_exit closer{*sink};
  std::mutex mutex;
  std::vector<std::string> log;

  submit_logged(*engine, events_request({8, 1, "a"}, 1, {"e1"}), "a", log, mutex);
  REQUIRE(sink->wait_calls(1));  // held: nobody answers it yet
  auto owned = std::async(std::launch::async, [&] { return engine->own_shard(20, 3); });
  REQUIRE(owned.wait_for(std::chrono::minutes(1)) == std::future_status::ready);  // hang guard
  CHECK(owned.get().is_ok());
  CHECK(engine->owned_epoch(20) == 3);
  REQUIRE(engine->put_meta("note", "x").is_ok());
  REQUIRE(engine->release_shard(20).is_ok());
  CHECK(engine->owned_epoch(20) == 0);
  {
    std::lock_guard<std::mutex> lock(mutex);
    CHECK(log.empty());  // the entity write still waits for its acknowledgement
  }
  sink->answer(0, status::ok());
  wait_logged(log, mutex, 1);
  std::lock_guard<std::mutex> lock(mutex);
  REQUIRE(log.size() == 1);
  CHECK(log[0] == "a:ok");
}

TEST_CASE("replication: at most max_unacked_batches are held and replica operations still pass",
          "[persistence][replication]") {
  temp_dir dir;
  auto sink = std::make_shared<manual_sink>();
  storage_options o = with_sink(dir, sink);
  o.max_unacked_batches = 3;
  o.max_queued_writes = 5;
  auto engine = open_engine(o);
  answer_on_exit closer{*sink};
  ack_counter acks;
  for (uint64_t seq = 1; seq <= 3; ++seq) {
    REQUIRE(engine->submit(events_request({1, 1, "o"}, seq, {"e"}), acks.callback()));
    REQUIRE(sink->wait_calls(seq));  // one batch each, taken before the next is submitted
  }
  for (uint64_t seq = 4; seq <= 8; ++seq) {
    REQUIRE(engine->submit(events_request({1, 1, "o"}, seq, {"e"}), acks.callback()));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  CHECK(sink->calls() == 3);  // the writer waits for an answer before taking more
  storage_stats s = engine->stats();
  CHECK(s.unacked == 3);
  CHECK(s.queued == 5);
  CHECK(engine->replica_position(1) == 3);
  status why;
  CHECK_FALSE(engine->submit(events_request({1, 1, "o"}, 9, {"e"}), acks.callback(), &why));
  CHECK(why.kind() == status::code::overloaded);  // the queue bound now pushes back
  // A follower role on another shard is not stuck behind the primary role's held batches.
  CHECK(engine->apply_replicated(delta(2, 1, 1, 0, "f")).is_ok());
  CHECK(engine->fence_replica(2, 3).is_ok());
  CHECK(engine->replica(2).fence == 3);

  for (size_t i = 0; i < 8; ++i) {
    REQUIRE(sink->wait_calls(i + 1));
    CHECK(engine->stats().unacked <= 3);
    sink->answer(i, status::ok());
  }
  REQUIRE(acks.wait_for(8));
  CHECK(acks.errors() == 0);
  CHECK(engine->replica_position(1) == 8);
  CHECK(sink->calls() == 8);
}

TEST_CASE("replication: a lower epoch is refused forever", "[persistence][replication]") {
  temp_dir dir;
  storage_options o = checked_options(dir);
  {
    auto f = open_engine(o);
    REQUIRE(f->apply_replicated(delta(4, 2, 1, 0, "a")).is_ok());
    status st = f->apply_replicated(delta(4, 1, 2, 2, "a"));
    CHECK(st.kind() == status::code::invalid);
    CHECK(st.message().find("below the fence 2") != std::string::npos);
    CHECK(f->replica_position(4) == 1);
    REQUIRE(f->fence_replica(4, 5).is_ok());
    CHECK(f->fence_replica(4, 3).is_ok());  // lower: nothing changes
    CHECK(f->replica(4).fence == 5);
    CHECK(f->apply_replicated(delta(4, 4, 2, 2, "a")).kind() == status::code::invalid);
    // Ownership never goes below what the node has seen as a follower.
    CHECK(f->own_shard(4, 4).kind() == status::code::invalid);
  }
  auto f = open_engine(o);
  CHECK(f->replica(4).fence == 5);
  CHECK(f->replica(4).epoch == 2);
  CHECK(f->apply_replicated(delta(4, 2, 2, 2, "a")).kind() == status::code::invalid);
  CHECK(f->apply_replicated(delta(4, 4, 2, 2, "a")).kind() == status::code::invalid);
  CHECK(f->own_shard(4, 4).kind() == status::code::invalid);
  CHECK(f->apply_replicated(delta(4, 5, 2, 2, "a")).is_ok());
  // A node that owned the shard at epoch 6 has seen 6: after release, 5 is refused too.
  REQUIRE(f->own_shard(4, 6).is_ok());
  REQUIRE(f->release_shard(4).is_ok());
  CHECK(f->apply_replicated(delta(4, 5, 3, 5, "a")).kind() == status::code::invalid);
  // delete_shard drops the data and the position, never the fence.
  REQUIRE(f->delete_shard(4).is_ok());
  CHECK(f->replica(4).position == 0);
  CHECK(f->replica(4).fence == 6);
  CHECK(f->apply_replicated(delta(4, 5, 1, 0, "a")).kind() == status::code::invalid);
}

TEST_CASE("replication: fences queued without waiting hold like synced ones, in queue order",
          "[persistence][replication]") {
  temp_dir dir;
  storage_options o = checked_options(dir);
  {
    auto f = open_engine(o);
    REQUIRE(f->apply_replicated(delta(4, 2, 1, 0, "a")).is_ok());
    // Many shards fenced at once (a promotion's pulls), then a deposed primary's delta of the
    // old epoch queued right behind the fence: refused, though nobody waited for the fence.
    std::vector<std::promise<status>> fenced(8);
    for (uint16_t shard = 4; shard < 12; ++shard)
      f->fence_replica_async(
          shard, 5, [&fenced, shard](const status& st) { fenced[shard - 4].set_value(st); });
    std::promise<status> late;
    REQUIRE(f->submit_replicated(delta(4, 2, 2, 1, "a"),
                                 [&late](const status& st) { late.set_value(st); }));
    for (auto& p : fenced)
      CHECK(p.get_future().get().is_ok());
    CHECK(late.get_future().get().kind() == status::code::invalid);
    CHECK(f->replica(4).fence == 5);
    CHECK(f->replica(11).fence == 5);
    CHECK(f->replica_position(4) == 1);
    // Refused like fence_replica: epoch 0, and a shard this node owns.
    std::promise<status> zero;
    f->fence_replica_async(6, 0, [&zero](const status& st) { zero.set_value(st); });
    CHECK(zero.get_future().get().kind() == status::code::invalid);
  }
  auto f = open_engine(o);  // synced: the fences survive a restart
  CHECK(f->replica(4).fence == 5);
  CHECK(f->replica(11).fence == 5);
}

TEST_CASE("replication: forget_replica deletes a copy only below the fence",
          "[persistence][replication]") {
  temp_dir dir;
  storage_options o = checked_options(dir);
  auto records = [](storage_engine& e, uint16_t shard) {
    shard_chunk c;
    REQUIRE(e.export_shard(shard, std::string{}, 1u << 20, c).is_ok());
    return c.records.size();
  };
  {
    auto f = open_engine(o);
    REQUIRE(f->apply_replicated(delta(4, 2, 1, 0, "a")).is_ok());  // fence 2
    // A primary of epoch 2 may hold this copy's ack: it stays.
    CHECK(f->forget_replica(4, 2).kind() == status::code::invalid);
    CHECK(f->replica_position(4) == 1);
    CHECK(records(*f, 4) == 1);
    CHECK(f->forget_replica(4, 0).kind() == status::code::invalid);
    // Epoch 3 was never seen here: the copy goes with its position; the fence stays.
    REQUIRE(f->forget_replica(4, 3).is_ok());
    CHECK(f->replica_position(4) == 0);
    CHECK(f->replica(4).fence == 2);
    CHECK(records(*f, 4) == 0);
    // A sender of epoch 3 heard since (its copy applied, or only its epoch recorded): kept.
    REQUIRE(f->apply_replicated(delta(4, 3, 1, 0, "b")).is_ok());
    CHECK(f->forget_replica(4, 3).kind() == status::code::invalid);
    REQUIRE(f->fence_replica(4, 4).is_ok());
    CHECK(f->forget_replica(4, 4).kind() == status::code::invalid);
    CHECK(f->replica_position(4) == 1);
  }
  auto f = open_engine(o);
  CHECK(f->replica_position(4) == 1);
  CHECK(f->replica(4).fence == 4);
  CHECK(records(*f, 4) == 1);
  REQUIRE(f->own_shard(4, 5).is_ok());
  CHECK(f->forget_replica(4, 6).kind() == status::code::invalid);  // owned: never
  CHECK(records(*f, 4) == 1);
}

TEST_CASE("replication: a new primary catches a replica up on batches of an older epoch",
          "[persistence][replication]") {
  temp_dir dir;
  storage_options o = checked_options(dir);
  {
    auto f = open_engine(o);
    REQUIRE(f->apply_replicated(delta(4, 1, 1, 0, "a")).is_ok());
    // Position 2 was written at epoch 1; the primary of epoch 3 sends it: the fence is checked
    // against, and raised to, the sender's epoch.
    auto old = delta(4, 1, 2, 1, "a");
    old.sent_at_epoch = 3;
    REQUIRE(f->apply_replicated(old).is_ok());
    CHECK(f->replica(4).fence == 3);
    CHECK(f->replica(4).epoch == 1);  // the batch's own epoch, for log matching
    // The deposed primary of epoch 1 (or 2) is refused from now on.
    auto deposed = delta(4, 1, 3, 1, "a");
    CHECK(f->apply_replicated(deposed).kind() == status::code::invalid);
    deposed.sent_at_epoch = 2;
    CHECK(f->apply_replicated(deposed).kind() == status::code::invalid);
    auto next = delta(4, 3, 3, 1, "a");
    REQUIRE(f->apply_replicated(next).is_ok());
  }
  auto f = open_engine(o);  // the raised fence is durable
  CHECK(f->replica(4).fence == 3);
  CHECK(f->replica(4).position == 3);
}

TEST_CASE("replication: queued applies answer like apply_replicated and share synced batches",
          "[persistence][replication]") {
  temp_dir dir;
  storage_options o = checked_options(dir);
  auto f = open_engine(o);
  std::mutex mu;
  std::vector<std::pair<int, status::code>> answers;
  auto record = [&](int i) {
    return [&, i](const status& st) {
      std::lock_guard<std::mutex> lock(mu);
      answers.emplace_back(i, st.kind());
    };
  };
  auto before = f->stats().batches;
  REQUIRE(f->submit_replicated(delta(4, 1, 1, 0, "a"), record(1)));
  REQUIRE(f->submit_replicated(delta(5, 1, 1, 0, "b"), record(2)));
  REQUIRE(f->submit_replicated(delta(4, 1, 2, 1, "a"), record(3)));
  REQUIRE(f->submit_replicated(delta(4, 1, 5, 1, "a"), record(4)));  // a gap
  REQUIRE(f->submit_replicated(delta(4, 1, 2, 1, "a"), record(5)));  // held already
  // A barrier queued after them: once it answers, every apply above has answered.
  write_request barrier;
  barrier.key.shard = 4;
  std::promise<void> through;
  REQUIRE(f->submit(barrier, [&](const status&) { through.set_value(); }));
  through.get_future().wait();
  std::lock_guard<std::mutex> lock(mu);
  REQUIRE(answers.size() == 5);
  std::map<int, status::code> by;
  for (auto& [i, c] : answers)
    by[i] = c;
  CHECK(by[1] == status::code::ok);
  CHECK(by[2] == status::code::ok);
  CHECK(by[3] == status::code::ok);
  CHECK(by[4] == status::code::out_of_order);
  CHECK(by[5] == status::code::duplicate);
  CHECK(f->replica_position(4) == 2);
  CHECK(f->replica_position(5) == 1);
  // Five applies queued together do not cost five synced writes.
  CHECK(f->stats().batches - before < 5);
}

TEST_CASE("replication: gaps duplicates and divergence are reported distinctly",
          "[persistence][replication]") {
  temp_dir dir;
  auto f = open_engine(checked_options(dir));
  REQUIRE(f->apply_replicated(delta(6, 1, 1, 0, "a")).is_ok());
  REQUIRE(f->apply_replicated(delta(6, 1, 2, 1, "a")).is_ok());

  status st = f->apply_replicated(delta(6, 1, 4, 1, "a"));
  CHECK(st.kind() == status::code::out_of_order);
  CHECK(st.message().find("catch up from 3") != std::string::npos);
  CHECK(f->apply_replicated(delta(6, 1, 2, 1, "a")).kind() == status::code::duplicate);
  CHECK(f->apply_replicated(delta(6, 1, 1, 0, "a")).kind() == status::code::duplicate);
  // A newer primary's batch at a position this node already holds from an older epoch.
  CHECK(f->apply_replicated(delta(6, 2, 2, 1, "a")).kind() == status::code::diverged);
  // The next position, but after a batch this node does not have.
  CHECK(f->apply_replicated(delta(6, 2, 3, 2, "a")).kind() == status::code::diverged);
  CHECK(f->replica_position(6) == 2);
  CHECK(export_records(*f, 6).size() == 2);  // nothing of the refused deltas was written
  // Malformed: position 0, a key of another shard.
  CHECK(f->apply_replicated(delta(6, 1, 0, 0, "a")).kind() == status::code::invalid);
  shard_delta foreign = delta(6, 1, 3, 1, "a");
  foreign.records.push_back(
      replica_record{replica_record::op::put, keys::event({7, 1, "x"}, 1), ""});
  CHECK(f->apply_replicated(foreign).kind() == status::code::invalid);
  // The newer primary continuing after position 2 of epoch 1 is in order.
  CHECK(f->apply_replicated(delta(6, 2, 3, 1, "a")).is_ok());
  CHECK(f->replica(6).epoch == 2);
  CHECK(f->replica(6).fence == 2);
  // Deletes are applied too.
  shard_delta erase{6, 2, 4, 2, {}};
  erase.records.push_back(
      replica_record{replica_record::op::erase, keys::event({6, 1, "a"}, 1), ""});
  REQUIRE(f->apply_replicated(erase).is_ok());
  CHECK(export_records(*f, 6).size() == 2);
}

TEST_CASE("replication: a follower refuses while it owns the shard", "[persistence][replication]") {
  temp_dir dir;
  auto f = open_engine(checked_options(dir));
  REQUIRE(f->apply_replicated(delta(5, 1, 1, 0, "a")).is_ok());
  REQUIRE(f->own_shard(5, 2).is_ok());  // promoted: the position carries on
  CHECK(f->replica_position(5) == 1);
  status st = f->apply_replicated(delta(5, 2, 2, 1, "a"));
  CHECK(st.kind() == status::code::invalid);
  CHECK(st.message().find("owned by this node") != std::string::npos);
  CHECK(f->fence_replica(5, 3).kind() == status::code::invalid);
  CHECK(f->reset_replica(5, 3, 9).kind() == status::code::invalid);
  CHECK(f->replica_position(5) == 1);
  CHECK(export_records(*f, 5).size() == 1);
  // Its own writes continue the position, under its epoch, after the follower's last batch.
  REQUIRE(write_sync(*f, at_epoch(events_request({5, 1, "b"}, 1, {"x"}), 2)).is_ok());
  CHECK(f->replica(5).position == 2);
  CHECK(f->replica(5).epoch == 2);
}

TEST_CASE("replication: a full copy and reset re-seed a follower that was ahead",
          "[persistence][replication]") {
  constexpr uint16_t shard = 11;
  temp_dir adir;
  temp_dir bdir;
  temp_dir cdir;
  auto alog = std::make_shared<log_sink>();
  auto blog = std::make_shared<log_sink>();
  storage_options ao = checked_options(adir);
  ao.replication = alog;
  storage_options bo = checked_options(bdir);
  bo.replication = blog;
  auto a = open_engine(ao);
  auto b = open_engine(bo);
  auto c = open_engine(checked_options(cdir));

  // A leads at epoch 1; B gets batches 1..3, C gets 1..5 (A's tail, never acknowledged by B).
  REQUIRE(a->own_shard(shard, 1).is_ok());
  for (uint64_t seq = 1; seq <= 5; ++seq) {
    write_request w =
        at_epoch(events_request({shard, 1, "o"}, seq, {"a" + std::to_string(seq)}), 1);
    w.snapshot = "A" + std::to_string(seq);
    REQUIRE(write_sync(*a, std::move(w)).is_ok());
  }
  const std::vector<shard_delta> from_a = alog->log();
  REQUIRE(from_a.size() == 5);
  for (size_t i = 0; i < 5; ++i) {
    if (i < 3) {
      REQUIRE(b->apply_replicated(from_a[i]).is_ok());
    }
    REQUIRE(c->apply_replicated(from_a[i]).is_ok());
  }

  // B is promoted at epoch 2 and writes on from its position 3.
  REQUIRE(b->own_shard(shard, 2).is_ok());
  REQUIRE(write_sync(*b, at_epoch(events_request({shard, 1, "o"}, 4, {"b4"}), 2)).is_ok());
  std::vector<shard_delta> from_b = blog->log();
  REQUIRE(from_b.size() == 1);
  CHECK(from_b[0].position == 4);
  CHECK(from_b[0].epoch == 2);
  CHECK(from_b[0].prev_epoch == 1);
  CHECK(c->apply_replicated(from_b[0]).kind() == status::code::diverged);
  CHECK(c->fence_replica(shard, 2).is_ok());
  // The deposed A can no longer collect an ack from C.
  REQUIRE(write_sync(*a, at_epoch(events_request({shard, 1, "o"}, 6, {"a6"}), 1)).is_ok());
  CHECK(c->apply_replicated(alog->log().back()).kind() == status::code::invalid);

  // Re-seed C from one snapshot of B while B keeps writing.
  status st;
  auto reader = b->begin_export(shard, &st);
  REQUIRE(reader != nullptr);
  REQUIRE(write_sync(*b, at_epoch(events_request({shard, 1, "o"}, 5, {"b5"}), 2)).is_ok());
  CHECK(reader->position() == 4);
  CHECK(reader->epoch() == 2);
  REQUIRE(c->delete_shard(shard).is_ok());
  for (int i = 0; i < 1000; ++i) {
    shard_chunk chunk;
    REQUIRE(reader->next(64, chunk).is_ok());
    CHECK(chunk.position == 4);
    REQUIRE(import_sync(*c, shard, chunk.records).is_ok());
    if (chunk.done) {
      break;
    }
  }
  REQUIRE(c->reset_replica(shard, reader->epoch(), reader->position()).is_ok());
  CHECK(c->replica(shard).position == 4);
  CHECK(c->replica(shard).fence == 2);
  reader.reset();

  // B's deltas after the copy's position apply; the one inside the copy is a duplicate.
  from_b = blog->log();
  REQUIRE(from_b.size() == 2);
  CHECK(c->apply_replicated(from_b[0]).kind() == status::code::duplicate);
  REQUIRE(c->apply_replicated(from_b[1]).is_ok());
  CHECK(export_records(*c, shard) == export_records(*b, shard));
  CHECK(c->replica(shard).position == b->replica(shard).position);
  recovered_entity r;
  REQUIRE(c->load({shard, 1, "o"}, r).is_ok());
  CHECK(r.last_seq == 5);
  CHECK(r.snapshot == "A3");  // A's unacknowledged snapshots at 4 and 5 are gone with its tail
  REQUIRE(r.events.size() == 2);
  CHECK(r.events[0].bytes == "b4");
}
