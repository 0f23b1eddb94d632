// Watches against a real etcd: events in order with revisions, lease expiry as DELETE,
// compaction, close() from another thread, timeouts, broken streams and bounds.
#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "cluster/etcd/etcd_client.hpp"
#include "etcd_process.hpp"

using namespace ordermesh::etcd;
using ordermesh::etcd::test::etcd_process;
using ordermesh::etcd::test::unused_port;
using namespace std::chrono_literals;

namespace {

deadline soon() {
  return deadline_after(5s);
}

put_request kv(std::string key, std::string value, int64_t lease = 0) {
  put_request p;
  p.key = std::move(key);
  p.value = std::move(value);
  p.lease = lease;
  return p;
}

watch_request on_prefix(const std::string& p, int64_t start_revision = 0) {
  watch_request w;
  w.key = p;
  w.range_end = prefix_end(p);
  w.start_revision = start_revision;
  return w;
}

template <class T>
T ok(result<T> r) {
  INFO((r.ok() ? std::string("ok") : to_string(r.err())));
  REQUIRE(r.ok());
  return std::move(r.value());
}

/// Opens a watch and consumes its `created` line.
std::unique_ptr<watch_stream> open_watch(client& c, const watch_request& r) {
  auto w = ok(c.watch(r, soon()));
  const auto created = ok(w->next(soon()));
  REQUIRE(created.type == watch_response::kind::created);
  return w;
}

/// Reads until `count` events arrived (bounded by `by`; REQUIREs them all).
std::vector<watch_event> collect(watch_stream& w, std::size_t count, deadline by) {
  std::vector<watch_event> out;
  // Bounded by the deadline: each next() returns by `by`.
  while (out.size() < count) {
    auto r = w.next(by);
    INFO((r.ok() ? std::string("ok") : to_string(r.err())) << " after " << out.size());
    REQUIRE(r.ok());
    if (r->type == watch_response::kind::events) {
      for (auto& e : r->events) {
        out.push_back(std::move(e));
      }
    }
  }
  return out;
}

}  // namespace

TEST_CASE("etcd watch on a prefix sees puts and deletes in order", "[etcd][watch]") {
  etcd_process etcd;
  client c({etcd.client_endpoint()});
  auto w = open_watch(c, on_prefix("/w/"));

  const auto p1 = ok(c.put(kv("/w/a", "1"), soon()));
  ok(c.put(kv("/other", "not watched"), soon()));
  const auto p2 = ok(c.put(kv("/w/b", std::string("\0\xff", 2)), soon()));
  delete_request d;
  d.key = "/w/a";
  const auto d1 = ok(c.delete_range(d, soon()));
  txn_request t;  // two events in one revision
  t.success.push_back(kv("/w/c", "3"));
  t.success.push_back(delete_request{"/w/b", "", false});
  const auto t1 = ok(c.txn(t, soon()));

  const auto events = collect(*w, 5, soon());
  REQUIRE(events.size() == 5);
  CHECK(events[0].type == watch_event::kind::put);
  CHECK(events[0].kv.key == "/w/a");
  CHECK(events[0].kv.value == "1");
  CHECK(events[0].kv.mod_revision == p1.revision);
  CHECK(events[0].kv.create_revision == p1.revision);
  CHECK(events[0].kv.version == 1);
  CHECK(events[1].type == watch_event::kind::put);
  CHECK(events[1].kv.key == "/w/b");
  CHECK(events[1].kv.value == std::string("\0\xff", 2));
  CHECK(events[1].kv.mod_revision == p2.revision);
  CHECK(events[2].type == watch_event::kind::del);
  CHECK(events[2].kv.key == "/w/a");
  CHECK(events[2].kv.mod_revision == d1.revision);
  CHECK(events[3].type == watch_event::kind::put);
  CHECK(events[3].kv.key == "/w/c");
  CHECK(events[3].kv.mod_revision == t1.revision);
  CHECK(events[4].type == watch_event::kind::del);
  CHECK(events[4].kv.key == "/w/b");
  CHECK(events[4].kv.mod_revision == t1.revision);

  // Many events: every one arrives, in revision order, whatever the chunking.
  int64_t last = t1.revision;
  constexpr int many = 300;
  for (int i = 0; i < many; ++i) {
    ok(c.put(kv("/w/n" + std::to_string(i), std::string(100, 'v')), soon()));
  }
  const auto bulk = collect(*w, many, deadline_after(20s));
  REQUIRE(bulk.size() == static_cast<std::size_t>(many));
  for (int i = 0; i < many; ++i) {
    CHECK(bulk[i].kv.key == "/w/n" + std::to_string(i));
    CHECK(bulk[i].kv.mod_revision == last + 1);
    last = bulk[i].kv.mod_revision;
  }
}

TEST_CASE("etcd watch from a past revision replays history with prev kv", "[etcd][watch]") {
  etcd_process etcd;
  client c({etcd.client_endpoint()});
  const auto p1 = ok(c.put(kv("/h/a", "1"), soon()));
  ok(c.put(kv("/h/a", "2"), soon()));
  watch_request r = on_prefix("/h/", p1.revision);
  r.prev_kv = true;
  auto w = open_watch(c, r);
  const auto events = collect(*w, 2, soon());
  CHECK(events[0].kv.value == "1");
  CHECK_FALSE(events[0].prev_kv.has_value());
  CHECK(events[1].kv.value == "2");
  REQUIRE(events[1].prev_kv.has_value());
  CHECK(events[1].prev_kv->value == "1");
}

TEST_CASE("etcd watch sees a lease expiry as delete", "[etcd][watch]") {
  etcd_process etcd;
  client c({etcd.client_endpoint()});
  auto w = open_watch(c, on_prefix("/m/"));
  const auto lease = ok(c.lease_grant(2, 0, soon()));
  const auto put = ok(c.put(kv("/m/n1", "me", lease.id), soon()));
  const auto events = collect(*w, 2, deadline_after(15s));  // 2 s TTL: generous bound
  CHECK(events[0].type == watch_event::kind::put);
  CHECK(events[0].kv.lease == lease.id);
  CHECK(events[0].kv.create_revision == put.revision);
  CHECK(events[1].type == watch_event::kind::del);
  CHECK(events[1].kv.key == "/m/n1");
  CHECK(events[1].kv.mod_revision > put.revision);
}

TEST_CASE("etcd watch close from another thread unblocks next", "[etcd][watch]") {
  etcd_process etcd;
  client c({etcd.client_endpoint()});
  auto w = open_watch(c, on_prefix("/q/"));
  std::atomic<bool> closing{false};
  std::thread closer([&] {
    std::this_thread::sleep_for(300ms);
    closing = true;
    w->close();
  });
  const auto start = clock::now();
  const auto r = w->next(deadline_after(20s));
  const auto elapsed = clock::now() - start;
  closer.join();
  REQUIRE_FALSE(r.ok());
  CHECK(r.code() == errc::closed);
  CHECK(closing.load());
  CHECK(elapsed < 10s);  // woke by close(), not by the 20 s deadline
  CHECK(w->next(soon()).code() == errc::closed);
  w->close();  // idempotent
}

TEST_CASE("etcd watch next times out and stays usable", "[etcd][watch]") {
  etcd_process etcd;
  client c({etcd.client_endpoint()});
  auto w = open_watch(c, on_prefix("/t/"));
  const auto start = clock::now();
  const auto r = w->next(deadline_after(300ms));
  CHECK(clock::now() - start < 10s);
  REQUIRE_FALSE(r.ok());
  CHECK(r.code() == errc::timeout);
  const auto p = ok(c.put(kv("/t/a", "1"), soon()));
  const auto events = collect(*w, 1, soon());
  CHECK(events[0].kv.mod_revision == p.revision);
}

TEST_CASE("etcd watch from a compacted revision reports compacted", "[etcd][watch]") {
  etcd_process etcd;
  client c({etcd.client_endpoint()});
  const auto first = ok(c.put(kv("/c/a", "1"), soon()));
  ok(c.put(kv("/c/a", "2"), soon()));
  const auto third = ok(c.put(kv("/c/a", "3"), soon()));
  ok(c.compact(third.revision, soon()));

  auto w = ok(c.watch(on_prefix("/c/", first.revision), soon()));
  bool canceled = false;
  // Bounded: etcd sends created, then canceled; allow a few lines.
  for (int i = 0; i < 5 && !canceled; ++i) {
    const auto r = ok(w->next(soon()));
    if (r.type == watch_response::kind::canceled) {
      canceled = true;
      CHECK(r.compact_revision == third.revision);
    } else {
      CHECK(r.type == watch_response::kind::created);
    }
  }
  REQUIRE(canceled);
  CHECK(w->next(soon()).code() == errc::closed);
}

TEST_CASE("etcd watch reports unavailable when etcd dies", "[etcd][watch]") {
  etcd_process etcd;
  client c({etcd.client_endpoint()});
  auto w = open_watch(c, on_prefix("/d/"));
  etcd.kill();
  const auto start = clock::now();
  const auto r = w->next(deadline_after(5s));
  CHECK(clock::now() - start < 10s);
  REQUIRE_FALSE(r.ok());
  CHECK(r.code() == errc::unavailable);
  CHECK(w->next(soon()).code() == errc::unavailable);  // stays finished
  // Opening a watch with no etcd fails, by its deadline.
  const auto again = c.watch(on_prefix("/d/"), deadline_after(2s));
  REQUIRE_FALSE(again.ok());
  CHECK((again.code() == errc::unavailable || again.code() == errc::timeout));
}

TEST_CASE("etcd watch fails over from a dead endpoint", "[etcd][watch]") {
  etcd_process etcd;
  client c({endpoint{"127.0.0.1", unused_port()}, etcd.client_endpoint()});
  auto w = open_watch(c, on_prefix("/f/"));
  const auto p = ok(c.put(kv("/f/a", "1"), soon()));
  CHECK(collect(*w, 1, soon())[0].kv.mod_revision == p.revision);
}

TEST_CASE("etcd watch bounds the line size", "[etcd][watch]") {
  etcd_process etcd;
  client_options small;
  small.max_watch_line_bytes = 512;
  client c({etcd.client_endpoint()}, small);
  auto w = open_watch(c, on_prefix("/l/"));
  ok(c.put(kv("/l/big", std::string(2048, 'x')), soon()));
  const auto r = w->next(soon());
  REQUIRE_FALSE(r.ok());
  CHECK(r.code() == errc::too_large);
  CHECK(w->next(soon()).code() == errc::too_large);
}
