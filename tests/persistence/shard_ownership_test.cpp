// Shard ownership and handoff: the epoch check on writes (at submit and at commit), own/release
// rules and their durability, and moving a shard's key range with export/import/delete.
#include <atomic>
#include <chrono>
#include <future>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <rocksdb/db.h>
#include <catch2/catch.hpp>

#include "persistence/keys.hpp"
#include "persistence/storage_engine.hpp"
#include "persistence/value_format.hpp"
#include "tests/persistence/test_support.hpp"

using namespace ordermesh::persistence;
using namespace ordermesh::persistence::test;

namespace {

write_request snapshot_only(entity_key k, uint64_t first_seq, std::string state, uint64_t epoch) {
  write_request r;
  r.key = std::move(k);
  r.first_seq = first_seq;
  r.snapshot = std::move(state);
  r.shard_epoch = epoch;
  return r;
}

write_request wakeup_only(entity_key k, int64_t due_ms, uint64_t epoch) {
  write_request r;
  r.key = std::move(k);
  r.wakeup_due_ms = due_ms;
  r.shard_epoch = epoch;
  return r;
}

write_request erase_only(entity_key k, uint64_t epoch) {
  write_request r;
  r.key = std::move(k);
  r.erase_wakeup = true;
  r.shard_epoch = epoch;
  return r;
}

/// Expects submit() to refuse `r` without running its callback; returns why.
status refused(storage_engine& engine, write_request r) {
  bool ran = false;
  status why;
  CHECK_FALSE(engine.submit(
      std::move(r), [&ran](const status&) { ran = true; }, &why));
  CHECK_FALSE(ran);
  return why;
}

/// Everything load() returns, as one comparable string.
std::string loaded(const storage_engine& engine, const entity_key& k) {
  recovered_entity r;
  const status st = engine.load(k, r);
  std::string out = st.to_string() + " snap@" + std::to_string(r.snapshot_seq) + "=" + r.snapshot +
                    " last=" + std::to_string(r.last_seq) + " events:";
  for (const auto& e : r.events) {
    out += " " + std::to_string(e.seq) + "=" + e.bytes;
  }
  return out;
}

std::vector<std::string> wakeups(const storage_engine& engine) {
  std::vector<std::string> out;
  REQUIRE(engine
              .scan_wakeups([&](const wakeup_entry& w) {
                out.push_back(std::to_string(w.key.shard) + "/" + std::to_string(w.key.kind) + "/" +
                              w.key.id + "=" + std::to_string(w.due_ms));
              })
              .is_ok());
  return out;
}

/// Exports the whole shard in chunks of `max_bytes`, checking each chunk on the way.
std::vector<shard_chunk> export_all(const storage_engine& engine, uint16_t shard,
                                    size_t max_bytes) {
  std::vector<shard_chunk> chunks;
  std::string after;
  while (true) {
    shard_chunk c;
    const status st = engine.export_shard(shard, after, max_bytes, c);
    INFO(st.to_string());
    REQUIRE(st.is_ok());
    REQUIRE(c.shard == shard);
    size_t bytes = 0;
    for (const auto& [key, value] : c.records) {
      CHECK(keys::in_shard(key, shard));
      CHECK(key > after);  // strictly after the previous chunk, in key order
      after = key;
      bytes += key.size() + value.size();
    }
    CHECK((bytes <= max_bytes || c.records.size() == 1));
    CHECK(c.last_key == after);
    const bool done = c.done;
    REQUIRE((done || !c.records.empty()));  // an unfinished chunk must make progress
    chunks.push_back(std::move(c));
    if (done) {
      return chunks;
    }
    REQUIRE(chunks.size() < 10000);  // hang guard
  }
}

shard_records flatten(const std::vector<shard_chunk>& chunks) {
  shard_records out;
  for (const auto& c : chunks) {
    out.insert(out.end(), c.records.begin(), c.records.end());
  }
  return out;
}

/// Entities of one shard with journals, snapshots and wakeups (one set, one erased).
std::vector<entity_key> populate(storage_engine& engine, uint16_t shard, uint64_t epoch) {
  std::vector<entity_key> ks = {{shard, 1, "order-1"},
                                {shard, 1, "order-10"},
                                {shard, 2, "inv-7"},
                                {shard, 0xEF, "x"},
                                {shard, 0xFF, "zz"}};
  const std::string tag = std::to_string(shard);
  for (size_t i = 0; i < ks.size(); ++i) {
    const entity_key& k = ks[i];
    const std::string binary = std::string("\x00\xFF", 2) + tag;  // opaque bytes, zeros too
    write_request w = at_epoch(events_request(k, 1, {"a" + tag, binary, "c" + k.id}), epoch);
    w.snapshot = "S3-" + k.id;
    REQUIRE(write_sync(engine, std::move(w)).is_ok());
    REQUIRE(write_sync(engine, at_epoch(events_request(k, 4, {"d", "e" + tag}), epoch)).is_ok());
    REQUIRE(write_sync(engine, wakeup_only(k, 1000 * static_cast<int64_t>(i) - 1, epoch)).is_ok());
  }
  REQUIRE(write_sync(engine, erase_only(ks[1], epoch)).is_ok());
  return ks;
}

}  // namespace

TEST_CASE("shards: with check_shard_epochs writes need the owned epoch", "[persistence][shards]") {
  temp_dir dir;
  auto engine = open_engine(checked_options(dir));
  const entity_key k{12, 1, "order-1"};

  CHECK(engine->owned_epoch(12) == 0);
  CHECK(engine->owned_shards().empty());
  status why = refused(*engine, at_epoch(events_request(k, 1, {"e1"}), 0));
  CHECK(why.kind() == status::code::invalid);
  CHECK(why.message() == "shard 12 is not owned by this node (write has epoch 0)");
  // Every kind of change is checked, not only events.
  CHECK(refused(*engine, snapshot_only(k, 2, "S", 3)).kind() == status::code::invalid);
  CHECK(refused(*engine, wakeup_only(k, 5, 3)).kind() == status::code::invalid);
  CHECK(refused(*engine, erase_only(k, 3)).kind() == status::code::invalid);

  REQUIRE(engine->own_shard(12, 3).is_ok());
  CHECK(engine->owned_epoch(12) == 3);
  CHECK(engine->owned_epoch(13) == 0);
  CHECK(engine->owned_shards() == std::vector<std::pair<uint16_t, uint64_t>>{{12, 3}});

  CHECK(write_sync(*engine, at_epoch(events_request(k, 1, {"e1"}), 3)).is_ok());
  why = refused(*engine, at_epoch(events_request(k, 2, {"old"}), 2));
  CHECK(why.kind() == status::code::invalid);
  CHECK(why.message() == "stale shard epoch: shard 12 is owned at epoch 3, write has 2");
  why = refused(*engine, at_epoch(events_request(k, 2, {"future"}), 4));
  CHECK(why.message() == "stale shard epoch: shard 12 is owned at epoch 3, write has 4");
  // The epoch is per shard: owning 12 at 3 does not let epoch 3 write to 13.
  CHECK(refused(*engine, at_epoch(events_request({13, 1, "o"}, 1, {"x"}), 3)).kind() ==
        status::code::invalid);
  CHECK(write_sync(*engine, wakeup_only(k, 77, 3)).is_ok());

  REQUIRE(engine->release_shard(12).is_ok());
  CHECK(engine->owned_epoch(12) == 0);
  CHECK(engine->owned_shards().empty());
  why = refused(*engine, at_epoch(events_request(k, 2, {"after-release"}), 3));
  CHECK(why.message() == "shard 12 is not owned by this node (write has epoch 3)");
  CHECK(engine->release_shard(12).is_ok());  // releasing again: nothing to do

  // Never back: the released epoch is still the last known one.
  why = engine->own_shard(12, 2);
  CHECK(why.kind() == status::code::invalid);
  CHECK(why.message().find("older than the recorded epoch 3") != std::string::npos);
  CHECK(engine->owned_epoch(12) == 0);
  REQUIRE(engine->own_shard(12, 3).is_ok());  // the same epoch again: resuming is allowed
  CHECK(write_sync(*engine, at_epoch(events_request(k, 2, {"e2"}), 3)).is_ok());
  REQUIRE(engine->own_shard(12, 5).is_ok());  // a new epoch while owned: old writes now stale
  CHECK(refused(*engine, at_epoch(events_request(k, 3, {"x"}), 3)).message() ==
        "stale shard epoch: shard 12 is owned at epoch 5, write has 3");
  CHECK(engine->own_shard(12, 4).kind() == status::code::invalid);
  CHECK(engine->owned_epoch(12) == 5);

  CHECK(engine->own_shard(12, 0).kind() == status::code::invalid);
  CHECK(engine->own_shard(keys::meta_shard, 9).kind() == status::code::invalid);
  CHECK(engine->release_shard(keys::meta_shard).kind() == status::code::invalid);

  // Only the accepted writes reached the disk; refusals did not harm the engine.
  CHECK(loaded(*engine, k) == "ok snap@0= last=2 events: 1=e1 2=e2");
  CHECK(wakeups(*engine) == std::vector<std::string>{"12/1/order-1=77"});
  CHECK(engine->health().is_ok());
  CHECK(engine->stats().refused == 9);
  CHECK(engine->stats().refused_at_commit == 0);
}

TEST_CASE("shards: barriers are never refused for their epoch", "[persistence][shards]") {
  temp_dir dir;
  auto engine = open_engine(checked_options(dir));
  const entity_key k{12, 1, "a"};
  write_request barrier;
  barrier.key = k;
  CHECK(write_sync(*engine, barrier).is_ok());  // not owned, epoch 0
  barrier.shard_epoch = 7;
  CHECK(write_sync(*engine, barrier).is_ok());  // not owned, some epoch
  REQUIRE(engine->own_shard(12, 3).is_ok());
  barrier.shard_epoch = 2;
  CHECK(write_sync(*engine, barrier).is_ok());  // owned, stale epoch
  REQUIRE(engine->release_shard(12).is_ok());
  CHECK(write_sync(*engine, barrier).is_ok());  // released

  // Still a barrier: its callback runs after every write queued before it.
  REQUIRE(engine->own_shard(12, 4).is_ok());
  std::vector<std::string> order;  // writer thread only, read after the barrier's callback
  std::promise<void> barrier_done;
  REQUIRE(engine->submit(at_epoch(events_request(k, 1, {"x"}), 4),
                         [&order](const status& s) { order.push_back("write:" + s.to_string()); }));
  barrier.shard_epoch = 1;
  REQUIRE(engine->submit(barrier, [&](const status& s) {
    order.push_back("barrier:" + s.to_string());
    barrier_done.set_value();
  }));
  barrier_done.get_future().wait();
  CHECK(order == std::vector<std::string>{"write:ok", "barrier:ok"});
  CHECK(engine->stats().refused == 0);
}

TEST_CASE("shards: without check_shard_epochs writes are not checked", "[persistence][shards]") {
  temp_dir dir;
  auto engine = open_engine(options_for(dir));  // the default: single-node mode
  REQUIRE_FALSE(options_for(dir).check_shard_epochs);
  const entity_key k{12, 1, "a"};
  CHECK(write_sync(*engine, events_request(k, 1, {"e1"})).is_ok());  // not owned, epoch 0
  CHECK(write_sync(*engine, at_epoch(events_request(k, 2, {"e2"}), 9)).is_ok());
  REQUIRE(engine->own_shard(12, 3).is_ok());  // ownership is still recorded...
  CHECK(engine->owned_epoch(12) == 3);
  CHECK(write_sync(*engine, at_epoch(events_request(k, 3, {"e3"}), 2)).is_ok());  // ...not checked
  REQUIRE(engine->release_shard(12).is_ok());
  CHECK(write_sync(*engine, at_epoch(wakeup_only(k, 5, 0), 0)).is_ok());
  CHECK(loaded(*engine, k) == "ok snap@0= last=3 events: 1=e1 2=e2 3=e3");
  CHECK(engine->own_shard(12, 2).kind() == status::code::invalid);  // never back, still
  CHECK(engine->stats().refused == 0);
}

TEST_CASE("shards: ownership survives reopen", "[persistence][shards]") {
  temp_dir dir;
  const storage_options o = checked_options(dir);
  {
    auto engine = open_engine(o);
    REQUIRE(engine->own_shard(12, 3).is_ok());
    REQUIRE(engine->own_shard(14, 5).is_ok());
    REQUIRE(engine->release_shard(14).is_ok());
    REQUIRE(engine->own_shard(0, 1).is_ok());
    REQUIRE(engine->own_shard(0xFFFE, 8).is_ok());
    // The records are the engine's own: put_meta cannot forge or roll one back.
    CHECK(engine->put_meta("shard_epoch/12", "owned 1").kind() == status::code::invalid);
    CHECK(engine->put_meta("shard_epoch/99", "owned 1").kind() == status::code::invalid);
  }
  auto engine = open_engine(o);
  CHECK(engine->owned_shards() ==
        std::vector<std::pair<uint16_t, uint64_t>>{{0, 1}, {12, 3}, {0xFFFE, 8}});
  CHECK(engine->owned_epoch(14) == 0);
  CHECK(engine->own_shard(14, 4).kind() == status::code::invalid);  // 5 is still the last known
  CHECK(engine->own_shard(12, 2).kind() == status::code::invalid);
  std::string v;
  REQUIRE(engine->get_meta("shard_epoch/12", &v).is_ok());
  CHECK(v == "owned 3");
  REQUIRE(engine->get_meta("shard_epoch/14", &v).is_ok());
  CHECK(v == "released 5");
  CHECK(engine->get_meta("shard_epoch/99", &v).kind() == status::code::not_found);
  CHECK(write_sync(*engine, at_epoch(events_request({12, 1, "a"}, 1, {"x"}), 3)).is_ok());
  CHECK(refused(*engine, at_epoch(events_request({14, 1, "a"}, 1, {"x"}), 5)).kind() ==
        status::code::invalid);
  REQUIRE(engine->own_shard(14, 5).is_ok());
  CHECK(write_sync(*engine, at_epoch(events_request({14, 1, "a"}, 1, {"x"}), 5)).is_ok());
}

TEST_CASE("shards: a malformed ownership record refuses to open", "[persistence][shards]") {
  temp_dir dir;
  const storage_options o = checked_options(dir);
  {
    auto engine = open_engine(o);
    REQUIRE(engine->own_shard(12, 3).is_ok());
  }
  for (const auto& [name, value] :
       std::vector<std::pair<std::string, std::string>>{{"shard_epoch/12", "owned 3x"},
                                                        {"shard_epoch/12", "owned 0"},
                                                        {"shard_epoch/12", "mine 3"},
                                                        {"shard_epoch/65535", "owned 3"},
                                                        {"shard_epoch/-1", "owned 3"},
                                                        {"shard_epoch/", "released 3"}}) {
    INFO(name << " = " << value);
    {
      rocksdb::DB* raw = nullptr;
      REQUIRE(rocksdb::DB::Open(rocksdb::Options(), o.path, &raw).ok());
      std::unique_ptr<rocksdb::DB> db(raw);
      REQUIRE(db->Put(rocksdb::WriteOptions(), keys::meta(name), value).ok());
      REQUIRE(db->Close().ok());
    }
    status st;
    CHECK(storage_engine::open(o, &st) == nullptr);
    CHECK(st.kind() == status::code::corruption);
    {
      rocksdb::DB* raw = nullptr;
      REQUIRE(rocksdb::DB::Open(rocksdb::Options(), o.path, &raw).ok());
      std::unique_ptr<rocksdb::DB> db(raw);
      REQUIRE(db->Delete(rocksdb::WriteOptions(), keys::meta(name)).ok());
      if (name == "shard_epoch/12") {
        REQUIRE(db->Put(rocksdb::WriteOptions(), keys::meta(name), "owned 3").ok());
      }
      REQUIRE(db->Close().ok());
    }
    CHECK(open_engine(o)->owned_epoch(12) == 3);  // repaired: opens again
  }
}

TEST_CASE("shards: a write whose shard is released before its commit fails alone",
          "[persistence][shards]") {
  temp_dir dir;
  auto engine = open_engine(checked_options(dir));
  REQUIRE(engine->own_shard(12, 3).is_ok());
  REQUIRE(engine->own_shard(13, 1).is_ok());
  const entity_key lost{12, 1, "lost"};
  const entity_key kept{13, 1, "kept"};

  std::vector<std::string> results;  // writer thread only; read after the release returned
  std::future<status> release;
  {
    writer_gate gate;
    REQUIRE(engine->submit(at_epoch(events_request({13, 1, "first"}, 1, {"x"}), 1),
                           gate.blocking_callback()));
    gate.wait_until_writer_blocked();  // from here on the writes below wait in the queue

    // Accepted at submit: shard 12 is still owned at epoch 3.
    REQUIRE(engine->submit(at_epoch(events_request(lost, 1, {"e1"}), 3),
                           [&results](const status& s) { results.push_back(s.to_string()); }));
    REQUIRE(engine->submit(at_epoch(events_request(kept, 1, {"e1"}), 1),
                           [&results](const status& s) { results.push_back(s.to_string()); }));
    write_request barrier;
    barrier.key = lost;
    REQUIRE(
        engine->submit(barrier, [&results](const status& s) { results.push_back(s.to_string()); }));

    // release_shard turns the shard off at once, then waits for its record behind the gate.
    release = std::async(std::launch::async, [&engine] { return engine->release_shard(12); });
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(1);
    while (engine->owned_epoch(12) != 0 && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    REQUIRE(engine->owned_epoch(12) == 0);
    CHECK(release.wait_for(std::chrono::milliseconds(0)) == std::future_status::timeout);
    gate.open();
  }
  REQUIRE(release.get().is_ok());

  REQUIRE(results.size() == 3);
  CHECK(results[0] == "invalid: shard 12 is not owned by this node (write has epoch 3)");
  CHECK(results[1] == "ok");  // the other shard's write in the same batch is committed
  CHECK(results[2] == "ok");  // barriers pass

  CHECK(loaded(*engine, lost) == "ok snap@0= last=0 events:");
  CHECK(loaded(*engine, kept) == "ok snap@0= last=1 events: 1=e1");
  CHECK(engine->health().is_ok());  // a stale write is not a disk failure
  CHECK(engine->stats().refused_at_commit == 1);
  CHECK(engine->stats().refused == 0);
  CHECK(write_sync(*engine, at_epoch(events_request(kept, 2, {"e2"}), 1)).is_ok());
  REQUIRE(engine->own_shard(12, 4).is_ok());
  CHECK(write_sync(*engine, at_epoch(events_request(lost, 1, {"e1"}), 4)).is_ok());
}

TEST_CASE("shards: after release_shard returns no acknowledged write is missing or late",
          "[persistence][shards]") {
  temp_dir dir;
  storage_options o = checked_options(dir);
  o.sync = false;  // many small writes; the release record itself is synced regardless
  auto engine = open_engine(o);
  REQUIRE(engine->own_shard(12, 1).is_ok());
  constexpr int threads = 4;
  std::mutex mutex;
  std::set<std::string> acked;  // ids whose write was reported ok
  std::atomic<int> accepted{0};
  ack_counter callbacks;
  std::atomic<bool> go{false};
  std::vector<std::thread> writers;
  for (int t = 0; t < threads; ++t) {
    writers.emplace_back([&, t] {
      while (!go) {
        std::this_thread::yield();
      }
      for (int i = 0;;) {
        const std::string id = "w" + std::to_string(t) + "-" + std::to_string(i);
        auto cb = callbacks.callback();
        status why;
        const bool ok = engine->submit(
            at_epoch(events_request({12, 1, id}, 1, {"x"}), 1),
            [&, id, cb](const status& s) {
              if (s.is_ok()) {
                std::lock_guard<std::mutex> lock(mutex);
                acked.insert(id);
              }
              cb(s);
            },
            &why);
        if (!ok && why.kind() == status::code::overloaded) {
          std::this_thread::yield();  // back-pressure: try the same write again
          continue;
        }
        if (!ok) {
          return;  // refused at submit: the shard is released
        }
        ++accepted;
        ++i;
      }
    });
  }
  go = true;
  // Release in the middle of the stream: after many writes were committed, while more are
  // queued, in a batch, or being submitted.
  while (callbacks.acks() < 500) {
    std::this_thread::yield();
  }
  REQUIRE(engine->release_shard(12).is_ok());
  // The range as the handoff would copy it right now...
  const shard_records exported = flatten(export_all(*engine, 12, 1u << 20));
  for (auto& w : writers) {
    w.join();
  }
  REQUIRE(callbacks.wait_for(static_cast<size_t>(accepted.load())));
  INFO("accepted=" << accepted << " acked=" << acked.size());
  // ...must hold every write ever acknowledged, and nothing may have landed since.
  std::set<std::string> on_disk;
  for (const auto& [key, value] : exported) {
    on_disk.insert(key.substr(3, key.find('\0', 3) - 3));
  }
  CHECK(acked.size() >= 500);
  CHECK(on_disk == acked);
  CHECK(flatten(export_all(*engine, 12, 1u << 20)) == exported);
  CHECK(acked.size() + engine->stats().refused_at_commit == static_cast<size_t>(accepted.load()));
  CHECK(engine->health().is_ok());
}

TEST_CASE("shards: export and import move a shard's whole range", "[persistence][shards]") {
  temp_dir dir_a;
  temp_dir dir_b;
  auto a = open_engine(checked_options(dir_a));
  auto b = open_engine(checked_options(dir_b));
  for (uint16_t shard : {11, 12, 13}) {
    REQUIRE(a->own_shard(shard, 1).is_ok());
  }
  // The neighbours share ids with shard 12, so a range that leaked would show up in b.
  const std::vector<entity_key> moved = populate(*a, 12, 1);
  const std::vector<entity_key> left = populate(*a, 11, 1);
  populate(*a, 13, 1);
  REQUIRE(a->put_meta("cluster_id", "c-1").is_ok());

  REQUIRE(a->release_shard(12).is_ok());
  const std::vector<shard_chunk> chunks = export_all(*a, 12, 64);
  CHECK(chunks.size() > 5);  // small chunks: the resumption from last_key is exercised
  const shard_records records = flatten(chunks);
  CHECK(records.size() == moved.size() * 7 - 1);  // 5 events, 1 snapshot, 1 wakeup; 1 erased
  CHECK(flatten(export_all(*a, 12, 0)).size() == records.size());  // one record per chunk
  CHECK(flatten(export_all(*a, 12, 1u << 30)) == records);         // one chunk
  REQUIRE(export_all(*a, 12, 1u << 30).size() == 1);

  for (const shard_chunk& c : chunks) {
    REQUIRE(import_sync(*b, 12, c.records).is_ok());
  }
  REQUIRE(b->own_shard(12, 2).is_ok());

  for (const entity_key& k : moved) {
    INFO(k.id);
    CHECK(loaded(*b, k) == loaded(*a, k));
    CHECK(loaded(*b, k).find("last=5") != std::string::npos);
    std::vector<stored_event> ea;
    std::vector<stored_event> eb;
    REQUIRE(a->read_events(k, 0, 100, ea).is_ok());
    REQUIRE(b->read_events(k, 0, 100, eb).is_ok());
    CHECK(ea.size() == eb.size());
  }
  std::vector<std::string> expected_wakeups;
  for (const std::string& w : wakeups(*a)) {
    if (w.rfind("12/", 0) == 0) {
      expected_wakeups.push_back(w);
    }
  }
  CHECK(expected_wakeups.size() == moved.size() - 1);
  CHECK(wakeups(*b) == expected_wakeups);
  CHECK(flatten(export_all(*b, 12, 1u << 20)) == records);
  // Nothing of the neighbours and no meta came along.
  for (const entity_key& k : left) {
    CHECK(loaded(*b, k) == "ok snap@0= last=0 events:");
  }
  CHECK(export_all(*b, 11, 1u << 20).front().records.empty());
  CHECK(export_all(*b, 13, 1u << 20).front().records.empty());
  std::string v;
  CHECK(b->get_meta("cluster_id", &v).kind() == status::code::not_found);

  // The new owner continues the journal; the old one cannot write any more.
  CHECK(write_sync(*b, at_epoch(events_request(moved[0], 6, {"f"}), 2)).is_ok());
  CHECK(refused(*a, at_epoch(events_request(moved[0], 6, {"f"}), 1)).kind() ==
        status::code::invalid);
}

TEST_CASE("shards: export stays inside its shard", "[persistence][shards]") {
  temp_dir dir;
  auto engine = open_engine(options_for(dir));
  populate(*engine, 0x0100, 0);
  populate(*engine, 0x0102, 0);
  populate(*engine, 0xFFFE, 0);
  REQUIRE(engine->put_meta("cluster_id", "c-1").is_ok());

  // Empty shard between two full ones.
  shard_chunk c;
  REQUIRE(engine->export_shard(0x0101, "", 1024, c).is_ok());
  CHECK(c.records.empty());
  CHECK(c.done);
  CHECK(c.last_key.empty());
  // The last entity shard ends before the meta range.
  const shard_records last = flatten(export_all(*engine, 0xFFFE, 100));
  CHECK(last.size() == 34);
  for (const auto& [key, value] : last) {
    CHECK(keys::in_shard(key, 0xFFFE));
  }
  // Resuming after the last key gives nothing more.
  REQUIRE(engine->export_shard(0xFFFE, last.back().first, 1024, c).is_ok());
  CHECK(c.records.empty());
  CHECK(c.done);
  CHECK(c.last_key == last.back().first);
  // Resuming from a key that is not stored (deleted meanwhile) continues after it.
  REQUIRE(engine->export_shard(0x0100, keys::event({0x0100, 1, "order-1"}, 2) + "x", 1 << 20, c)
              .is_ok());
  REQUIRE_FALSE(c.records.empty());
  CHECK(c.records.front().first == keys::event({0x0100, 1, "order-1"}, 3));

  CHECK(engine->export_shard(keys::meta_shard, "", 1024, c).kind() == status::code::invalid);
  CHECK(engine->export_shard(0x0100, keys::event({0x0102, 1, "a"}, 1), 1024, c).kind() ==
        status::code::invalid);
  CHECK(engine->export_shard(0x0100, keys::shard_prefix(0x0100), 1024, c).kind() ==
        status::code::invalid);
}

TEST_CASE("shards: import refuses foreign keys and owned shards", "[persistence][shards]") {
  temp_dir dir;
  auto engine = open_engine(checked_options(dir));
  const std::string good = keys::event({12, 1, "a"}, 1);
  auto try_import = [&](uint16_t shard, shard_records records) {
    bool ran = false;
    status why;
    CHECK_FALSE(engine->submit_import(
        shard, std::move(records), [&ran](const status&) { ran = true; }, &why));
    CHECK_FALSE(ran);
    return why;
  };
  status why =
      try_import(12, {{good, value_format::seal(good, "x")}, {keys::event({13, 1, "a"}, 1), "y"}});
  CHECK(why.kind() == status::code::invalid);
  CHECK(why.message() == "import into shard 12 has a key outside its range");
  CHECK(try_import(12, {{keys::meta("cluster_id"), "x"}}).kind() == status::code::invalid);
  CHECK(try_import(12, {{keys::shard_prefix(12), "x"}}).kind() == status::code::invalid);
  CHECK(try_import(12, {{"", "x"}}).kind() == status::code::invalid);
  CHECK(try_import(keys::meta_shard, {{keys::meta("shard_epoch/1"), "owned 9"}}).kind() ==
        status::code::invalid);

  REQUIRE(engine->own_shard(12, 1).is_ok());
  why = try_import(12, {{good, value_format::seal(good, "x")}});
  CHECK(why.kind() == status::code::invalid);
  CHECK(why.message().find("import refused: shard 12 is owned by this node at epoch 1") == 0);
  CHECK(engine->stats().refused == 6);

  // Nothing of the refused imports was written; the engine is fine.
  CHECK(export_all(*engine, 12, 1024).front().records.empty());
  CHECK(export_all(*engine, 13, 1024).front().records.empty());
  CHECK(engine->health().is_ok());
  REQUIRE(engine->release_shard(12).is_ok());
  CHECK(import_sync(*engine, 12, {{good, value_format::seal(good, "x")}}).is_ok());
  CHECK(loaded(*engine, {12, 1, "a"}) == "ok snap@0= last=1 events: 1=x");
  CHECK(import_sync(*engine, 12, {}).is_ok());  // nothing to import is fine
}

TEST_CASE("shards: an import is checked again at commit time", "[persistence][shards]") {
  temp_dir dir;
  storage_options o = checked_options(dir);
  o.max_batch_writes = 1;  // each entry its own batch: the record, then the import
  auto engine = open_engine(o);
  REQUIRE(engine->own_shard(12, 1).is_ok());
  storage_engine* raw = engine.get();
  std::promise<status> import_result;
  std::future<status> own;
  {
    writer_gate gate;
    REQUIRE(engine->submit(at_epoch(events_request({12, 1, "first"}, 1, {"x"}), 1),
                           gate.blocking_callback()));
    gate.wait_until_writer_blocked();
    // own_shard queues its record (behind the gate) and takes effect once it is committed.
    own = std::async(std::launch::async, [raw] { return raw->own_shard(20, 1); });
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(1);
    while (raw->stats().queued < 1 && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    REQUIRE(raw->stats().queued == 1);
    // Accepted: shard 20 is not owned yet. Committed after the record: it must be refused then.
    REQUIRE(engine->submit_import(
        20, {{keys::event({20, 1, "a"}, 1), value_format::seal(keys::event({20, 1, "a"}, 1), "x")}},
        [&import_result](const status& s) { import_result.set_value(s); }));
    gate.open();
  }
  REQUIRE(own.get().is_ok());
  const status st = import_result.get_future().get();
  CHECK(st.kind() == status::code::invalid);
  CHECK(st.message().find("import refused: shard 20 is owned by this node at epoch 1") == 0);
  CHECK(loaded(*engine, {20, 1, "a"}) == "ok snap@0= last=0 events:");
  CHECK(engine->stats().refused_at_commit == 1);
  CHECK(engine->health().is_ok());
}

TEST_CASE("shards: delete_shard removes exactly that range", "[persistence][shards]") {
  temp_dir dir;
  const storage_options o = checked_options(dir);
  shard_records before_11;
  shard_records before_13;
  std::vector<entity_key> gone;
  {
    auto engine = open_engine(o);
    for (uint16_t shard : {11, 12, 13, 0xFFFE}) {
      REQUIRE(engine->own_shard(shard, 2).is_ok());
    }
    populate(*engine, 11, 2);
    gone = populate(*engine, 12, 2);
    populate(*engine, 13, 2);
    populate(*engine, 0xFFFE, 2);
    REQUIRE(engine->put_meta("cluster_id", "c-1").is_ok());
    before_11 = flatten(export_all(*engine, 11, 1u << 20));
    before_13 = flatten(export_all(*engine, 13, 1u << 20));
    const shard_records before_12 = flatten(export_all(*engine, 12, 1u << 20));
    REQUIRE_FALSE(before_12.empty());

    // Owned: deleting would pull the data from under its writer.
    const status st = engine->delete_shard(12);
    CHECK(st.kind() == status::code::invalid);
    CHECK(st.message().find("delete_shard refused: shard 12 is owned") == 0);
    CHECK(flatten(export_all(*engine, 12, 1u << 20)) == before_12);
    CHECK(engine->delete_shard(keys::meta_shard).kind() == status::code::invalid);

    REQUIRE(engine->release_shard(12).is_ok());
    REQUIRE(engine->delete_shard(12).is_ok());
    REQUIRE(engine->release_shard(0xFFFE).is_ok());
    REQUIRE(engine->delete_shard(0xFFFE).is_ok());  // the last shard: meta stays
    CHECK(engine->delete_shard(77).is_ok());        // an empty range is fine
    CHECK(engine->health().is_ok());
  }
  auto engine = open_engine(o);  // synced: still gone after a reopen
  CHECK(flatten(export_all(*engine, 12, 1u << 20)).empty());
  CHECK(flatten(export_all(*engine, 0xFFFE, 1u << 20)).empty());
  for (const entity_key& k : gone) {
    CHECK(loaded(*engine, k) == "ok snap@0= last=0 events:");
  }
  CHECK(flatten(export_all(*engine, 11, 1u << 20)) == before_11);
  CHECK(flatten(export_all(*engine, 13, 1u << 20)) == before_13);
  for (const std::string& w : wakeups(*engine)) {
    CHECK((w.rfind("11/", 0) == 0 || w.rfind("13/", 0) == 0));
  }
  CHECK(wakeups(*engine).size() == 8);
  std::string v;
  CHECK(engine->get_meta("cluster_id", &v).is_ok());
  // The ownership record outlives the data: the old epoch is still the floor.
  CHECK(engine->owned_epoch(12) == 0);
  CHECK(engine->own_shard(12, 1).kind() == status::code::invalid);
  CHECK(engine->owned_epoch(11) == 2);
}

TEST_CASE("shards: blocking calls from a write callback are refused", "[persistence][shards]") {
  temp_dir dir;
  auto engine = open_engine(options_for(dir));
  REQUIRE(engine->own_shard(5, 1).is_ok());
  storage_engine* raw = engine.get();
  std::promise<std::vector<status::code>> inner;
  REQUIRE(engine->submit(events_request({0, 1, "a"}, 1, {"x"}), [raw, &inner](const status&) {
    inner.set_value(
        {raw->own_shard(4, 1).kind(), raw->release_shard(5).kind(), raw->delete_shard(6).kind()});
  }));
  CHECK(inner.get_future().get() == std::vector<status::code>{status::code::invalid,
                                                              status::code::invalid,
                                                              status::code::invalid});
  CHECK(engine->owned_epoch(5) == 1);  // the refused release changed nothing
  CHECK(engine->owned_epoch(4) == 0);
}

TEST_CASE("shards: an exposed write refused at commit fails the engine, not alone",
          "[persistence][shards]") {
  // Others acted on an exposed write before it was durable (write_request::exposed): refusing it
  // alone would commit what followed from it without it. The engine fails instead.
  temp_dir dir;
  auto engine = open_engine(checked_options(dir));
  REQUIRE(engine->own_shard(12, 3).is_ok());
  REQUIRE(engine->own_shard(13, 1).is_ok());
  const entity_key lost{12, 1, "lost"};
  const entity_key follower{13, 1, "follower"};

  std::vector<std::string> results;  // writer thread only; read after the release returned
  std::future<status> release;
  {
    writer_gate gate;
    REQUIRE(engine->submit(at_epoch(events_request({13, 1, "first"}, 1, {"x"}), 1),
                           gate.blocking_callback()));
    gate.wait_until_writer_blocked();

    write_request exposed = at_epoch(events_request(lost, 1, {"e1"}), 3);
    exposed.exposed = true;
    REQUIRE(
        engine->submit(exposed, [&results](const status& s) { results.push_back(s.to_string()); }));
    REQUIRE(engine->submit(at_epoch(events_request(follower, 1, {"e1"}), 1),
                           [&results](const status& s) { results.push_back(s.to_string()); }));

    release = std::async(std::launch::async, [&engine] { return engine->release_shard(12); });
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(1);
    while (engine->owned_epoch(12) != 0 && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    REQUIRE(engine->owned_epoch(12) == 0);
    gate.open();
  }
  CHECK_FALSE(release.get().is_ok());  // queued behind the failure: the engine is failed

  REQUIRE(results.size() == 2);
  CHECK(results[0] == "invalid: shard 12 is not owned by this node (write has epoch 3)");
  // the follower is not written either: it gets the engine's failure
  CHECK(results[1].rfind("io_error: a write others had already acted on was refused", 0) == 0);
  CHECK_FALSE(engine->health().is_ok());
  CHECK(loaded(*engine, follower) == "ok snap@0= last=0 events:");
}
