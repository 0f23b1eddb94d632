// The writer thread: callback order, grouping under load, the queue bound, failure for good.
#include <atomic>
#include <future>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "persistence/storage_engine.hpp"
#include "tests/persistence/test_support.hpp"

using namespace ordermesh::persistence;
using namespace ordermesh::persistence::test;

namespace {

entity_key numbered(const std::string& prefix, int i) {
  return {static_cast<uint16_t>(i % 16), 1, prefix + std::to_string(i)};
}

}  // namespace

TEST_CASE("group commit: callbacks run once, in submission order, after the write",
          "[persistence][group_commit]") {
  temp_dir dir;
  constexpr int n = 600;
  std::vector<int> order;           // appended on the writer thread only
  std::atomic<int> not_visible{0};  // callbacks that ran before their data was readable
  std::atomic<int> not_ok{0};
  {
    auto engine = open_engine(options_for(dir));
    storage_engine* raw = engine.get();
    std::vector<uint64_t> next_seq(7, 1);
    for (int i = 0; i < n; ++i) {
      const entity_key k{0, 1, "e" + std::to_string(i % 7)};
      const uint64_t seq = next_seq[static_cast<size_t>(i % 7)]++;
      REQUIRE(engine->submit(events_request(k, seq, {"w" + std::to_string(i)}),
                             [&order, &not_visible, &not_ok, raw, k, seq, i](const status& s) {
                               order.push_back(i);
                               if (!s.is_ok()) {
                                 ++not_ok;
                               }
                               recovered_entity r;
                               if (!raw->load(k, r).is_ok() || r.last_seq < seq) {
                                 ++not_visible;
                               }
                             }));
    }
  }  // the destructor drains; afterwards no callback may run again
  REQUIRE(order.size() == static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    REQUIRE(order[static_cast<size_t>(i)] == i);
  }
  CHECK(not_visible == 0);
  CHECK(not_ok == 0);
}

TEST_CASE("group commit: concurrent submitters are all acknowledged and grouped",
          "[persistence][group_commit]") {
  temp_dir dir;
  const storage_options o = options_for(dir);
  constexpr int threads = 8;
  constexpr int per_thread = 2000;
  const entity_key shared{9, 2, "shared"};
  ack_counter acks;
  std::atomic<int> refused{0};
  storage_stats stats;
  {
    auto engine = open_engine(o);
    std::mutex shared_mutex;  // seq assignment and submission of the shared entity stay in order
    uint64_t shared_seq = 1;
    std::vector<std::thread> workers;
    for (int t = 0; t < threads; ++t) {
      workers.emplace_back([&, t] {
        const entity_key own{static_cast<uint16_t>(t), 1, "own-" + std::to_string(t)};
        uint64_t own_seq = 1;
        for (int i = 0; i < per_thread; ++i) {
          const std::string payload = std::to_string(t) + ":" + std::to_string(i);
          if (i % 2 == 0) {
            if (!engine->submit(events_request(own, own_seq++, {payload}), acks.callback())) {
              ++refused;
            }
          } else {
            std::lock_guard<std::mutex> lock(shared_mutex);
            if (!engine->submit(events_request(shared, shared_seq++, {payload}), acks.callback())) {
              ++refused;
            }
          }
        }
      });
    }
    for (auto& w : workers) {
      w.join();
    }
    REQUIRE(refused == 0);
    REQUIRE(acks.wait_for(threads * per_thread));
    stats = engine->stats();
  }
  CHECK(acks.errors() == 0);
  CHECK(stats.writes == static_cast<uint64_t>(threads * per_thread));
  CHECK(stats.events == static_cast<uint64_t>(threads * per_thread));
  CHECK(stats.batches < stats.writes);
  CHECK(stats.max_batch > 1);
  INFO("writes=" << stats.writes << " batches=" << stats.batches
                 << " max_batch=" << stats.max_batch);

  // Everything is there after a reopen, contiguous, and each thread's events in its own order.
  auto engine = open_engine(o);
  for (int t = 0; t < threads; ++t) {
    recovered_entity r;
    REQUIRE(engine->load({static_cast<uint16_t>(t), 1, "own-" + std::to_string(t)}, r).is_ok());
    REQUIRE(r.events.size() == static_cast<size_t>(per_thread / 2));
    for (size_t j = 0; j < r.events.size(); ++j) {
      REQUIRE(r.events[j].bytes == std::to_string(t) + ":" + std::to_string(2 * j));
    }
  }
  recovered_entity r;
  REQUIRE(engine->load(shared, r).is_ok());
  REQUIRE(r.events.size() == static_cast<size_t>(threads * per_thread / 2));
  CHECK(r.last_seq == static_cast<uint64_t>(threads * per_thread / 2));
  std::vector<int> next(threads, 1);
  for (const auto& e : r.events) {
    const auto colon = e.bytes.find(':');
    const int t = std::stoi(e.bytes.substr(0, colon));
    const int i = std::stoi(e.bytes.substr(colon + 1));
    REQUIRE(i == next[static_cast<size_t>(t)]);
    next[static_cast<size_t>(t)] += 2;
  }
}

TEST_CASE("group commit: a full queue refuses writes, and refused writes are never written",
          "[persistence][group_commit]") {
  temp_dir dir;
  storage_options o = options_for(dir);
  o.max_queued_writes = 4;
  constexpr int n = 100;
  std::vector<int> accepted;
  std::vector<int> refused;
  std::atomic<int> refused_callbacks{0};
  ack_counter acks;
  {
    auto engine = open_engine(o);
    writer_gate gate;
    REQUIRE(engine->submit(events_request({0, 1, "first"}, 1, {"x"}), gate.blocking_callback()));
    gate.wait_until_writer_blocked();  // from here on nothing leaves the queue

    for (int i = 0; i < n; ++i) {
      status why;
      const bool ok = engine->submit(
          events_request(numbered("q", i), 1, {"x"}),
          [&acks, &refused_callbacks, &refused, i, cb = acks.callback()](const status& s) {
            for (int r : refused) {
              if (r == i) {
                ++refused_callbacks;
              }
            }
            cb(s);
          },
          &why);
      if (ok) {
        accepted.push_back(i);
      } else {
        CHECK(why.kind() == status::code::overloaded);
        refused.push_back(i);
      }
    }
    CHECK(accepted.size() == o.max_queued_writes);
    CHECK(refused.size() == n - o.max_queued_writes);
    const storage_stats s = engine->stats();
    CHECK(s.queued == o.max_queued_writes);
    CHECK(s.refused == refused.size());
    gate.open();
    REQUIRE(acks.wait_for(accepted.size()));
    CHECK(engine->health().is_ok());  // overload is back-pressure, not a failure
  }
  CHECK(acks.acks() == accepted.size());
  CHECK(acks.errors() == 0);
  CHECK(refused_callbacks == 0);

  auto engine = open_engine(o);
  for (int i : accepted) {
    recovered_entity r;
    REQUIRE(engine->load(numbered("q", i), r).is_ok());
    CHECK(r.last_seq == 1);
  }
  for (int i : refused) {
    recovered_entity r;
    REQUIRE(engine->load(numbered("q", i), r).is_ok());
    CHECK(r.last_seq == 0);
  }
}

TEST_CASE("group commit: queued writes are merged up to max_batch_writes",
          "[persistence][group_commit]") {
  temp_dir dir;
  storage_options o = options_for(dir);
  o.max_batch_writes = 8;
  constexpr int n = 50;
  ack_counter acks;
  auto engine = open_engine(o);
  writer_gate gate;
  REQUIRE(engine->submit(events_request({0, 1, "first"}, 1, {"x"}), gate.blocking_callback()));
  gate.wait_until_writer_blocked();
  for (int i = 0; i < n; ++i) {
    REQUIRE(engine->submit(events_request(numbered("m", i), 1, {"x"}), acks.callback()));
  }
  gate.open();
  REQUIRE(acks.wait_for(n));
  const storage_stats s = engine->stats();
  CHECK(s.writes == n + 1);
  CHECK(s.max_batch == o.max_batch_writes);  // the 50 queued writes went out 8 at a time
  CHECK(s.batches == 1 + (n + 7) / 8);       // the first write alone, then ceil(50 / 8)
  CHECK(s.queued == 0);
}

TEST_CASE("group commit: a failed write fails the engine for good", "[persistence][group_commit]") {
  temp_dir dir;
  storage_options o = options_for(dir);
  o.fail_writes_after = 2;  // test hook: batches 1 and 2 are written, batch 3 fails (only it)
  o.max_batch_writes = 1;   // one write per batch, so "batch 3" is exactly write 3
  const entity_key k{4, 1, "doomed"};
  std::vector<std::string> results;  // writer thread only, read after the engine is gone
  {
    auto engine = open_engine(o);
    REQUIRE(write_sync(*engine, events_request(k, 1, {"e1"})).is_ok());

    writer_gate gate;
    REQUIRE(engine->submit(events_request(k, 2, {"e2"}), [&](const status& s) {
      results.push_back("2:" + s.to_string());
      gate.blocking_callback()(s);
    }));
    gate.wait_until_writer_blocked();
    // Queued while the writer is held: 3 is the failing batch, 4 and 5 are still queued then.
    for (uint64_t seq = 3; seq <= 5; ++seq) {
      REQUIRE(engine->submit(events_request(k, seq, {"e" + std::to_string(seq)}),
                             [&results, seq](const status& s) {
                               results.push_back(std::to_string(seq) + ":" +
                                                 std::to_string(static_cast<int>(s.kind())));
                             }));
    }
    gate.open();
    // put_meta waits for its own turn in the queue, so when it returns 3..5 have been answered.
    const status meta = engine->put_meta("after", "failure");
    CHECK(meta.kind() == status::code::io_error);

    const status health = engine->health();
    CHECK(health.kind() == status::code::io_error);
    status why;
    bool ran = false;
    CHECK_FALSE(engine->submit(
        events_request(k, 6, {"e6"}), [&ran](const status&) { ran = true; }, &why));
    CHECK(why.kind() == status::code::io_error);
    CHECK(why.message() == health.message());
    CHECK_FALSE(ran);
    CHECK(engine->stats().batches == 2);

    recovered_entity r;  // reads still work after a write failure
    REQUIRE(engine->load(k, r).is_ok());
    CHECK(r.last_seq == 2);
  }
  const std::string io = std::to_string(static_cast<int>(status::code::io_error));
  CHECK(results == std::vector<std::string>{"2:ok", "3:" + io, "4:" + io, "5:" + io});

  o.fail_writes_after.reset();
  auto engine = open_engine(o);
  recovered_entity r;
  REQUIRE(engine->load(k, r).is_ok());
  CHECK(r.last_seq == 2);  // nothing from the failed batch or after it reached the disk
  std::string v;
  CHECK(engine->get_meta("after", &v).kind() == status::code::not_found);
  CHECK(engine->health().is_ok());  // a fresh engine starts healthy
}

TEST_CASE("group commit: put_meta from a write callback is refused instead of deadlocking",
          "[persistence][group_commit]") {
  temp_dir dir;
  auto engine = open_engine(options_for(dir));
  storage_engine* raw = engine.get();
  std::promise<status> inner;
  REQUIRE(engine->submit(events_request({0, 1, "a"}, 1, {"x"}), [raw, &inner](const status&) {
    inner.set_value(raw->put_meta("k", "v"));
  }));
  CHECK(inner.get_future().get().kind() == status::code::invalid);
}
