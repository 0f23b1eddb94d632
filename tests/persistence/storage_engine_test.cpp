// Storage engine against a real RocksDB: load, snapshots, durability, wakeups, meta, corruption.
#include <future>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "persistence/keys.hpp"
#include "persistence/storage_engine.hpp"
#include "tests/persistence/test_support.hpp"

using namespace ordermesh::persistence;
using namespace ordermesh::persistence::test;

namespace {
std::vector<uint64_t> seqs(const std::vector<stored_event>& events) {
  std::vector<uint64_t> out;
  for (const auto& e : events) {
    out.push_back(e.seq);
  }
  return out;
}

std::vector<std::string> payloads(const std::vector<stored_event>& events) {
  std::vector<std::string> out;
  for (const auto& e : events) {
    out.push_back(e.bytes);
  }
  return out;
}
}  // namespace

TEST_CASE("engine: open fails cleanly on a bad path", "[persistence][engine]") {
  temp_dir dir;
  storage_options o = options_for(dir);
  o.path = "/proc/ordermesh-no-such-dir/db";
  status st;
  CHECK(storage_engine::open(o, &st) == nullptr);
  CHECK_FALSE(st.is_ok());
}

TEST_CASE("engine: write then load returns exactly the events", "[persistence][engine]") {
  temp_dir dir;
  auto engine = open_engine(options_for(dir));
  const entity_key k{5, 1, "order-1"};

  recovered_entity fresh;
  REQUIRE(engine->load(k, fresh).is_ok());
  CHECK(fresh.last_seq == 0);
  CHECK(fresh.events.empty());

  const std::string binary("\x00\xFF\x01", 3);  // opaque bytes, zeros included
  REQUIRE(write_sync(*engine, events_request(k, 1, {"created", binary})).is_ok());
  REQUIRE(write_sync(*engine, events_request(k, 3, {"paid"})).is_ok());

  recovered_entity r;
  REQUIRE(engine->load(k, r).is_ok());
  CHECK(r.snapshot_seq == 0);
  CHECK(r.snapshot.empty());
  CHECK(seqs(r.events) == std::vector<uint64_t>{1, 2, 3});
  CHECK(payloads(r.events) == std::vector<std::string>{"created", binary, "paid"});
  CHECK(r.last_seq == 3);

  std::vector<stored_event> tail;
  REQUIRE(engine->read_events(k, 2, 10, tail).is_ok());
  CHECK(seqs(tail) == std::vector<uint64_t>{2, 3});
  REQUIRE(engine->read_events(k, 1, 2, tail).is_ok());
  CHECK(seqs(tail) == std::vector<uint64_t>{1, 2});
}

TEST_CASE("engine: ids that prefix each other never mix", "[persistence][engine]") {
  temp_dir dir;
  auto engine = open_engine(options_for(dir));
  const entity_key a{0, 1, "a"};
  const entity_key ab{0, 1, "ab"};
  const entity_key a_other_kind{0, 2, "a"};
  const entity_key a_other_shard{1, 1, "a"};
  REQUIRE(write_sync(*engine, events_request(a, 1, {"a1", "a2"})).is_ok());
  REQUIRE(write_sync(*engine, events_request(ab, 1, {"ab1"})).is_ok());
  REQUIRE(write_sync(*engine, events_request(a_other_kind, 1, {"k1"})).is_ok());
  REQUIRE(write_sync(*engine, events_request(a_other_shard, 1, {"s1"})).is_ok());

  recovered_entity r;
  REQUIRE(engine->load(a, r).is_ok());
  CHECK(payloads(r.events) == std::vector<std::string>{"a1", "a2"});
  REQUIRE(engine->load(ab, r).is_ok());
  CHECK(payloads(r.events) == std::vector<std::string>{"ab1"});
  REQUIRE(engine->load(a_other_kind, r).is_ok());
  CHECK(payloads(r.events) == std::vector<std::string>{"k1"});
  REQUIRE(engine->load(a_other_shard, r).is_ok());
  CHECK(payloads(r.events) == std::vector<std::string>{"s1"});
  std::vector<stored_event> all;
  REQUIRE(engine->read_events(a, 0, 100, all).is_ok());
  CHECK(payloads(all) == std::vector<std::string>{"a1", "a2"});
}

TEST_CASE("engine: load returns the latest snapshot and only later events",
          "[persistence][engine]") {
  temp_dir dir;
  auto engine = open_engine(options_for(dir));
  const entity_key k{2, 3, "inv-9"};

  write_request w1 = events_request(k, 1, {"e1", "e2", "e3"});
  w1.snapshot = "S3";
  REQUIRE(write_sync(*engine, std::move(w1)).is_ok());
  REQUIRE(write_sync(*engine, events_request(k, 4, {"e4", "e5"})).is_ok());

  recovered_entity r;
  REQUIRE(engine->load(k, r).is_ok());
  CHECK(r.snapshot_seq == 3);
  CHECK(r.snapshot == "S3");
  CHECK(seqs(r.events) == std::vector<uint64_t>{4, 5});
  CHECK(r.last_seq == 5);

  write_request w2 = events_request(k, 6, {"e6", "e7"});
  w2.snapshot = "S7";
  REQUIRE(write_sync(*engine, std::move(w2)).is_ok());
  REQUIRE(engine->load(k, r).is_ok());
  CHECK(r.snapshot_seq == 7);
  CHECK(r.snapshot == "S7");
  CHECK(r.events.empty());
  CHECK(r.last_seq == 7);

  // A snapshot without events is stored at first_seq - 1.
  write_request w3;
  w3.key = k;
  w3.first_seq = 8;
  w3.snapshot = "S7b";
  REQUIRE(write_sync(*engine, std::move(w3)).is_ok());
  REQUIRE(engine->load(k, r).is_ok());
  CHECK(r.snapshot_seq == 7);
  CHECK(r.snapshot == "S7b");

  // The whole journal is still there for audits.
  std::vector<stored_event> all;
  REQUIRE(engine->read_events(k, 0, 100, all).is_ok());
  CHECK(seqs(all) == std::vector<uint64_t>{1, 2, 3, 4, 5, 6, 7});
}

TEST_CASE("engine: acknowledged writes survive close and reopen", "[persistence][engine]") {
  temp_dir dir;
  const storage_options o = options_for(dir);
  constexpr int entities = 20;
  constexpr int per_entity = 25;
  ack_counter acks;
  {
    auto engine = open_engine(o);
    for (int seq = 1; seq <= per_entity; ++seq) {
      for (int e = 0; e < entities; ++e) {
        write_request r = events_request({static_cast<uint16_t>(e % 4), 1, "e" + std::to_string(e)},
                                         static_cast<uint64_t>(seq), {"v" + std::to_string(seq)});
        if (seq == per_entity) {
          r.wakeup_due_ms = 1000 + e;
        }
        REQUIRE(engine->submit(std::move(r), acks.callback()));
      }
    }
    REQUIRE(engine->put_meta("shards", "4").is_ok());
    // No waiting: the destructor must commit everything queued and run its callbacks.
  }
  CHECK(acks.acks() == static_cast<size_t>(entities * per_entity));
  CHECK(acks.errors() == 0);

  auto engine = open_engine(o);
  for (int e = 0; e < entities; ++e) {
    recovered_entity r;
    REQUIRE(engine->load({static_cast<uint16_t>(e % 4), 1, "e" + std::to_string(e)}, r).is_ok());
    REQUIRE(r.events.size() == static_cast<size_t>(per_entity));
    CHECK(r.last_seq == static_cast<uint64_t>(per_entity));
    CHECK(r.events.back().bytes == "v" + std::to_string(per_entity));
  }
  size_t wakeups = 0;
  REQUIRE(engine->scan_wakeups([&](const wakeup_entry&) { ++wakeups; }).is_ok());
  CHECK(wakeups == static_cast<size_t>(entities));
  std::string shards;
  REQUIRE(engine->get_meta("shards", &shards).is_ok());
  CHECK(shards == "4");
}

TEST_CASE("engine: wakeups set, overwrite, erase, scan", "[persistence][engine]") {
  temp_dir dir;
  auto engine = open_engine(options_for(dir));
  auto set = [&](entity_key k, int64_t due) {
    write_request r;
    r.key = std::move(k);
    r.wakeup_due_ms = due;
    return write_sync(*engine, std::move(r));
  };
  auto erase = [&](entity_key k) {
    write_request r;
    r.key = std::move(k);
    r.erase_wakeup = true;
    return write_sync(*engine, std::move(r));
  };
  // Journals in between the wakeup ranges, so the scan has to skip them.
  for (uint16_t shard : {0, 1, 2, 3, 7}) {
    REQUIRE(write_sync(*engine, events_request({shard, 1, "j"}, 1, {"x"})).is_ok());
  }
  REQUIRE(set({3, 1, "b"}, 200).is_ok());
  REQUIRE(set({0, 1, "a"}, 100).is_ok());
  REQUIRE(set({3, 2, "c"}, -5).is_ok());  // negative due times survive the i64 encoding
  REQUIRE(set({0xFFFE, 0, "last"}, INT64_MAX).is_ok());
  REQUIRE(set({7, 1, "gone"}, 1).is_ok());
  REQUIRE(set({0, 1, "a"}, 150).is_ok());  // overwrite
  REQUIRE(erase({7, 1, "gone"}).is_ok());
  REQUIRE(erase({9, 1, "never-set"}).is_ok());  // erasing nothing is fine

  // An event write can carry the wakeup change in the same batch.
  write_request with_events = events_request({3, 1, "j"}, 2, {"y"});
  with_events.wakeup_due_ms = 300;
  REQUIRE(write_sync(*engine, std::move(with_events)).is_ok());

  std::vector<std::string> seen;
  REQUIRE(engine
              ->scan_wakeups([&](const wakeup_entry& w) {
                seen.push_back(std::to_string(w.key.shard) + "/" + std::to_string(w.key.kind) +
                               "/" + w.key.id + "=" + std::to_string(w.due_ms));
              })
              .is_ok());
  CHECK(seen == std::vector<std::string>{"0/1/a=150", "3/1/b=200", "3/1/j=300", "3/2/c=-5",
                                         "65534/0/last=" + std::to_string(INT64_MAX)});

  // Wakeups do not show up as journal entries.
  recovered_entity r;
  REQUIRE(engine->load({3, 1, "j"}, r).is_ok());
  CHECK(seqs(r.events) == std::vector<uint64_t>{1, 2});
}

TEST_CASE("engine: meta get, put, not found", "[persistence][engine]") {
  temp_dir dir;
  auto engine = open_engine(options_for(dir));
  std::string v = "untouched";
  CHECK(engine->get_meta("cluster_id", &v).kind() == status::code::not_found);
  CHECK(engine->get_meta("cluster_id", nullptr).kind() == status::code::invalid);
  REQUIRE(engine->put_meta("cluster_id", "c-1").is_ok());
  REQUIRE(engine->get_meta("cluster_id", &v).is_ok());
  CHECK(v == "c-1");
  REQUIRE(engine->put_meta("cluster_id", "c-2").is_ok());
  REQUIRE(engine->get_meta("cluster_id", &v).is_ok());
  CHECK(v == "c-2");
  CHECK(engine->get_meta("cluster", &v).kind() ==
        status::code::not_found);  // a prefix is not a hit
  // Meta lives outside every shard: a full wakeup scan does not see it.
  size_t wakeups = 0;
  REQUIRE(engine->scan_wakeups([&](const wakeup_entry&) { ++wakeups; }).is_ok());
  CHECK(wakeups == 0);
}

TEST_CASE("engine: a gap in the journal is reported as corruption", "[persistence][engine]") {
  temp_dir dir;
  auto engine = open_engine(options_for(dir));
  const entity_key k{1, 1, "gappy"};
  REQUIRE(write_sync(*engine, events_request(k, 1, {"e1", "e2"})).is_ok());
  recovered_entity r;
  REQUIRE(engine->load(k, r).is_ok());
  REQUIRE(write_sync(*engine, events_request(k, 4, {"e4"})).is_ok());  // seq 3 missing

  const status st = engine->load(k, r);
  CHECK(st.kind() == status::code::corruption);
  INFO(st.to_string());
  CHECK(st.message().find("expected seq 3") != std::string::npos);

  // A journal that does not start at 1 (and has no snapshot) is a gap too.
  const entity_key late{1, 1, "late"};
  REQUIRE(write_sync(*engine, events_request(late, 2, {"e2"})).is_ok());
  CHECK(engine->load(late, r).kind() == status::code::corruption);

  // So is a journal that resumes after a snapshot with a hole.
  const entity_key snap{1, 1, "snap"};
  write_request w = events_request(snap, 1, {"e1"});
  w.snapshot = "S1";
  REQUIRE(write_sync(*engine, std::move(w)).is_ok());
  REQUIRE(write_sync(*engine, events_request(snap, 3, {"e3"})).is_ok());
  CHECK(engine->load(snap, r).kind() == status::code::corruption);

  // read_events stays raw, for audits.
  std::vector<stored_event> raw;
  REQUIRE(engine->read_events(k, 0, 10, raw).is_ok());
  CHECK(seqs(raw) == std::vector<uint64_t>{1, 2, 4});
}

TEST_CASE("engine: malformed requests are refused alone", "[persistence][engine]") {
  temp_dir dir;
  auto engine = open_engine(options_for(dir));
  bool ran = false;
  auto cb = [&ran](const status&) { ran = true; };
  status why;

  CHECK_FALSE(engine->submit(events_request({0, 1, "bad/id"}, 1, {"x"}), cb, &why));
  CHECK(why.kind() == status::code::invalid);
  CHECK_FALSE(engine->submit(events_request({0, keys::wakeup_tag, "a"}, 1, {"x"}), cb, &why));
  CHECK(why.kind() == status::code::invalid);
  CHECK_FALSE(engine->submit(events_request({0, 1, "a"}, 0, {"x"}), cb, &why));
  CHECK(why.kind() == status::code::invalid);
  write_request both;
  both.key = {0, 1, "a"};
  both.wakeup_due_ms = 5;
  both.erase_wakeup = true;
  CHECK_FALSE(engine->submit(std::move(both), cb, &why));
  CHECK(why.kind() == status::code::invalid);
  CHECK_FALSE(ran);

  // The engine is not harmed.
  CHECK(engine->health().is_ok());
  CHECK(write_sync(*engine, events_request({0, 1, "a"}, 1, {"x"})).is_ok());
  CHECK(engine->stats().refused == 4);
}

TEST_CASE("engine: a barrier needs only a shard and waits for every earlier write",
          "[persistence][engine]") {
  temp_dir dir;
  auto engine = open_engine(options_for(dir));
  std::vector<std::string> order;  // writer thread only; read after the barrier's callback
  std::promise<void> barrier_done;
  {
    writer_gate gate;
    REQUIRE(engine->submit(events_request({3, 1, "held"}, 1, {"x"}), gate.blocking_callback()));
    gate.wait_until_writer_blocked();
    REQUIRE(engine->submit(events_request({3, 1, "queued"}, 1, {"x"}), [&order](const status& s) {
      order.push_back("write:" + s.to_string());
    }));
    // As the shard supervisor submits it: no id, no kind, only the shard.
    write_request barrier;
    barrier.key.shard = 3;
    status why;
    const bool queued = engine->submit(
        std::move(barrier),
        [&](const status& s) {
          order.push_back("barrier:" + s.to_string());
          barrier_done.set_value();
        },
        &why);
    INFO(why.to_string());
    REQUIRE(queued);
    gate.open();
  }
  barrier_done.get_future().wait();
  CHECK(order == std::vector<std::string>{"write:ok", "barrier:ok"});
  CHECK(engine->stats().refused == 0);
  // A malformed key is still refused as soon as the write has something to store under it.
  write_request bad;
  bad.key.shard = 3;
  bad.wakeup_due_ms = 1;
  status why;
  CHECK_FALSE(engine->submit(std::move(bad), nullptr, &why));
  CHECK(why.kind() == status::code::invalid);
}
