// The client against a real etcd started by the test: reads and writes, the txn guards the
// coordination will use, leases, failover, deadlines and bounds.
#include <chrono>
#include <string>
#include <thread>

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

range_request key_only(std::string key) {
  range_request r;
  r.key = std::move(key);
  return r;
}

range_request prefix(const std::string& p) {
  range_request r;
  r.key = p;
  r.range_end = prefix_end(p);
  return r;
}

put_request kv(std::string key, std::string value, int64_t lease = 0) {
  put_request p;
  p.key = std::move(key);
  p.value = std::move(value);
  p.lease = lease;
  return p;
}

/// REQUIREs success and returns the value.
template <class T>
T ok(result<T> r) {
  INFO((r.ok() ? std::string("ok") : to_string(r.err())));
  REQUIRE(r.ok());
  return std::move(r.value());
}

}  // namespace

TEST_CASE("etcd client put range prefix range and delete", "[etcd][client]") {
  etcd_process etcd;
  client c({etcd.client_endpoint()});

  const std::string binary_key("/t/bin\0\xff", 8);
  const std::string binary_value("\0\x01\xfe\xff", 4);
  const auto p1 = ok(c.put(kv(binary_key, binary_value), soon()));
  const auto p2 = ok(c.put(kv("/t/a", "1"), soon()));
  CHECK(p2.revision > p1.revision);
  put_request again = kv("/t/a", "2");
  again.prev_kv = true;
  const auto p3 = ok(c.put(again, soon()));
  REQUIRE(p3.prev_kv.has_value());
  CHECK(p3.prev_kv->value == "1");
  ok(c.put(kv("/u/other", "x"), soon()));

  const auto one = ok(c.range(key_only("/t/a"), soon()));
  REQUIRE(one.kvs.size() == 1);
  CHECK(one.kvs[0].value == "2");
  CHECK(one.kvs[0].create_revision == p2.revision);
  CHECK(one.kvs[0].mod_revision == p3.revision);
  CHECK(one.kvs[0].version == 2);
  CHECK(one.revision == p3.revision + 1);

  const auto bin = ok(c.range(key_only(binary_key), soon()));
  REQUIRE(bin.kvs.size() == 1);
  CHECK(bin.kvs[0].key == binary_key);
  CHECK(bin.kvs[0].value == binary_value);

  auto all = ok(c.range(prefix("/t/"), soon()));
  REQUIRE(all.kvs.size() == 2);
  CHECK(all.kvs[0].key == "/t/a");  // sorted by key
  CHECK(all.kvs[1].key == binary_key);
  CHECK(all.count == 2);

  range_request limited = prefix("/t/");
  limited.limit = 1;
  limited.keys_only = true;
  const auto first = ok(c.range(limited, soon()));
  REQUIRE(first.kvs.size() == 1);
  CHECK(first.more);
  CHECK(first.count == 2);
  CHECK(first.kvs[0].value.empty());

  range_request old = key_only("/t/a");
  old.revision = p2.revision;
  const auto past = ok(c.range(old, soon()));
  REQUIRE(past.kvs.size() == 1);
  CHECK(past.kvs[0].value == "1");

  CHECK(ok(c.range(key_only("/t/missing"), soon())).kvs.empty());

  delete_request d;
  d.key = "/t/";
  d.range_end = prefix_end("/t/");
  d.prev_kv = true;
  const auto deleted = ok(c.delete_range(d, soon()));
  CHECK(deleted.deleted == 2);
  CHECK(deleted.prev_kvs.size() == 2);
  CHECK(ok(c.range(prefix("/t/"), soon())).kvs.empty());
  CHECK(ok(c.delete_range(d, soon())).deleted == 0);
  CHECK(ok(c.range(key_only("/u/other"), soon())).kvs.size() == 1);
}

TEST_CASE("etcd client txn create if absent succeeds once", "[etcd][client]") {
  etcd_process etcd;
  client c({etcd.client_endpoint()});

  auto claim = [&](const std::string& who) {
    txn_request t;
    t.compares.push_back(compare::absent("/o/controller"));
    t.success.push_back(kv("/o/controller", who));
    t.failure.push_back(key_only("/o/controller"));
    return ok(c.txn(t, soon()));
  };
  const auto first = claim("n1");
  CHECK(first.succeeded);
  REQUIRE(first.responses.size() == 1);
  CHECK(std::holds_alternative<put_response>(first.responses[0]));

  const auto second = claim("n2");
  CHECK_FALSE(second.succeeded);
  REQUIRE(second.responses.size() == 1);
  const auto& holder = std::get<range_response>(second.responses[0]);
  REQUIRE(holder.kvs.size() == 1);
  CHECK(holder.kvs[0].value == "n1");
  CHECK(second.revision == first.revision);  // a failed txn writes nothing
}

TEST_CASE("etcd client txn guarded by mod revision fails after a concurrent change",
          "[etcd][client]") {
  etcd_process etcd;
  client c({etcd.client_endpoint()});
  client other({etcd.client_endpoint()});

  ok(c.put(kv("/o/shards/1", "epoch 1"), soon()));
  const auto seen = ok(c.range(key_only("/o/shards/1"), soon())).kvs.at(0);

  // Another writer gets in between the read and the write.
  ok(other.put(kv("/o/shards/1", "epoch 2 by other"), soon()));

  txn_request t;
  t.compares.push_back(compare::mod("/o/shards/1", compare_result::equal, seen.mod_revision));
  t.success.push_back(kv("/o/shards/1", "epoch 2 by me"));
  CHECK_FALSE(ok(c.txn(t, soon())).succeeded);
  CHECK(ok(c.range(key_only("/o/shards/1"), soon())).kvs.at(0).value == "epoch 2 by other");

  // With the current mod revision the same txn goes through.
  const auto now = ok(c.range(key_only("/o/shards/1"), soon())).kvs.at(0);
  t.compares[0] = compare::mod("/o/shards/1", compare_result::equal, now.mod_revision);
  CHECK(ok(c.txn(t, soon())).succeeded);
  CHECK(ok(c.range(key_only("/o/shards/1"), soon())).kvs.at(0).value == "epoch 2 by me");
}

TEST_CASE("etcd client txn guarded by the writer member key incarnation", "[etcd][client]") {
  etcd_process etcd;
  client c({etcd.client_endpoint()});

  const auto lease = ok(c.lease_grant(10, 0, soon()));
  const auto member = ok(c.put(kv("/o/members/n1", "addr", lease.id), soon()));
  const int64_t incarnation = member.revision;  // the key's create revision
  ok(c.put(kv("/o/shards/3", "v1"), soon()));
  const auto shard = ok(c.range(key_only("/o/shards/3"), soon())).kvs.at(0);

  auto guarded_write = [&](int64_t shard_mod, const std::string& value) {
    txn_request t;
    t.compares.push_back(compare::mod("/o/shards/3", compare_result::equal, shard_mod));
    t.compares.push_back(compare::create("/o/members/n1", compare_result::equal, incarnation));
    t.success.push_back(kv("/o/shards/3", value));
    return ok(c.txn(t, soon()));
  };
  const auto written = guarded_write(shard.mod_revision, "v2");
  REQUIRE(written.succeeded);

  // The member's lease goes and the member comes back: a new incarnation. Writes guarded by the
  // old incarnation must fail even though the shard key did not change.
  ok(c.lease_revoke(lease.id, soon()));
  const auto lease2 = ok(c.lease_grant(10, 0, soon()));
  ok(c.put(kv("/o/members/n1", "addr", lease2.id), soon()));
  CHECK_FALSE(guarded_write(written.revision, "v3").succeeded);
  CHECK(ok(c.range(key_only("/o/shards/3"), soon())).kvs.at(0).value == "v2");
}

TEST_CASE("etcd client lease grant keepalive and revoke", "[etcd][client]") {
  etcd_process etcd;
  client c({etcd.client_endpoint()});

  const auto lease = ok(c.lease_grant(10, 0, soon()));
  CHECK(lease.id != 0);
  CHECK(lease.ttl == 10);
  const auto chosen = ok(c.lease_grant(5, 424242, soon()));
  CHECK(chosen.id == 424242);
  const auto dup = c.lease_grant(5, 424242, soon());
  REQUIRE_FALSE(dup.ok());
  CHECK(dup.code() == errc::http_error);

  const auto put = ok(c.put(kv("/o/members/n1", "me", lease.id), soon()));
  const auto member = ok(c.range(key_only("/o/members/n1"), soon())).kvs.at(0);
  CHECK(member.lease == lease.id);
  CHECK(member.create_revision == put.revision);

  const int64_t ttl = ok(c.lease_keepalive(lease.id, soon()));
  CHECK(ttl > 0);
  CHECK(ttl <= 10);
  const auto info = ok(c.lease_time_to_live(lease.id, true, soon()));
  CHECK(info.id == lease.id);
  CHECK(info.ttl > 0);
  CHECK(info.granted_ttl == 10);
  REQUIRE(info.keys.size() == 1);
  CHECK(info.keys[0] == "/o/members/n1");

  ok(c.lease_revoke(lease.id, soon()));
  CHECK(ok(c.range(key_only("/o/members/n1"), soon())).kvs.empty());
  CHECK(ok(c.lease_keepalive(lease.id, soon())) == 0);
  CHECK(ok(c.lease_time_to_live(lease.id, false, soon())).ttl == 0);
  const auto again = c.lease_revoke(lease.id, soon());
  REQUIRE_FALSE(again.ok());
  CHECK(again.code() == errc::not_found);
  CHECK(again.err().http_status == 404);

  const auto orphan = c.put(kv("/o/members/n9", "x", lease.id), soon());
  REQUIRE_FALSE(orphan.ok());
  CHECK(orphan.code() == errc::not_found);
}

TEST_CASE("etcd client expired lease deletes its key and keepalive reports zero",
          "[etcd][client]") {
  etcd_process etcd;
  client c({etcd.client_endpoint()});

  const auto lease = ok(c.lease_grant(2, 0, soon()));
  ok(c.put(kv("/o/members/n1", "me", lease.id), soon()));
  const auto start = clock::now();
  bool gone = false;
  // Bounded: 2 s TTL, expiry checked by etcd every 500 ms; give it 15 s.
  while (!gone && clock::now() - start < 15s) {
    std::this_thread::sleep_for(200ms);
    gone = ok(c.range(key_only("/o/members/n1"), soon())).kvs.empty();
  }
  REQUIRE(gone);
  CHECK(clock::now() - start >= 1s);  // not before its TTL (generous: etcd rounds)
  CHECK(ok(c.lease_keepalive(lease.id, soon())) == 0);
  CHECK(ok(c.lease_time_to_live(lease.id, false, soon())).ttl == 0);
}

TEST_CASE("etcd client fails over from a dead endpoint to a live one", "[etcd][client]") {
  etcd_process etcd;
  const endpoint dead{"127.0.0.1", unused_port()};
  client c({dead, etcd.client_endpoint()});

  ok(c.put(kv("/f/a", "1"), soon()));
  CHECK(ok(c.range(key_only("/f/a"), soon())).kvs.at(0).value == "1");
  // Both endpoints dead: unavailable, naming each.
  etcd.kill();
  const auto r = c.range(key_only("/f/a"), soon());
  REQUIRE_FALSE(r.ok());
  CHECK(r.code() == errc::unavailable);
  CHECK(r.err().message.find(dead.url()) != std::string::npos);
  CHECK(r.err().message.find(etcd.url()) != std::string::npos);

  // From an endpoint string as orderd's --etcd flag gives it.
  etcd.restart();
  auto eps = parse_endpoints(dead.url() + "," + etcd.url());
  REQUIRE(eps.ok());
  client from_flag(*eps);
  CHECK(ok(from_flag.range(key_only("/f/a"), soon())).kvs.at(0).value == "1");
}

TEST_CASE("etcd client reconnects after etcd restarts", "[etcd][client]") {
  etcd_process etcd;
  client c({etcd.client_endpoint()});
  ok(c.put(kv("/r/a", "1"), soon()));  // leaves a keep-alive connection open
  etcd.restart();
  // The kept connection was closed by the restart: found stale before sending, not re-sent.
  ok(c.put(kv("/r/a", "2"), soon()));
  const auto a = ok(c.range(key_only("/r/a"), soon())).kvs.at(0);
  CHECK(a.value == "2");
  CHECK(a.version == 2);  // the put was applied exactly once
}

TEST_CASE("etcd client returns unavailable when etcd is stopped", "[etcd][client]") {
  etcd_process etcd;
  client c({etcd.client_endpoint()});
  ok(c.put(kv("/s/a", "1"), soon()));
  etcd.kill();
  const auto start = clock::now();
  const auto r = c.range(key_only("/s/a"), deadline_after(2s));
  const auto w = c.put(kv("/s/a", "2"), deadline_after(2s));
  CHECK(clock::now() - start < 10s);
  REQUIRE_FALSE(r.ok());
  REQUIRE_FALSE(w.ok());
  CHECK((r.code() == errc::unavailable || r.code() == errc::timeout));
  CHECK((w.code() == errc::unavailable || w.code() == errc::timeout));
}

TEST_CASE("etcd client returns timeout by the deadline when etcd is paused", "[etcd][client]") {
  etcd_process etcd;
  client c({etcd.client_endpoint()});
  ok(c.put(kv("/p/a", "1"), soon()));
  etcd.pause();
  const auto start = clock::now();
  const auto r = c.range(key_only("/p/a"), deadline_after(1s));
  const auto w = c.lease_keepalive(1, deadline_after(1s));
  const auto elapsed = clock::now() - start;
  etcd.resume();
  CHECK(elapsed < 10s);
  REQUIRE_FALSE(r.ok());
  CHECK(r.code() == errc::timeout);
  REQUIRE_FALSE(w.ok());
  CHECK(w.code() == errc::timeout);
  // And it works again once etcd does.
  CHECK(ok(c.range(key_only("/p/a"), soon())).kvs.at(0).value == "1");
}

TEST_CASE("etcd client range at a compacted revision reports compacted", "[etcd][client]") {
  etcd_process etcd;
  client c({etcd.client_endpoint()});
  const auto first = ok(c.put(kv("/k/a", "1"), soon()));
  ok(c.put(kv("/k/a", "2"), soon()));
  const auto third = ok(c.put(kv("/k/a", "3"), soon()));
  ok(c.compact(third.revision, soon()));
  range_request old = key_only("/k/a");
  old.revision = first.revision;
  const auto r = c.range(old, soon());
  REQUIRE_FALSE(r.ok());
  CHECK(r.code() == errc::compacted);
  CHECK(c.compact(first.revision, soon()).code() == errc::compacted);
  CHECK(ok(c.range(key_only("/k/a"), soon())).kvs.at(0).value == "3");
}

TEST_CASE("etcd client bounds the response size", "[etcd][client]") {
  etcd_process etcd;
  client_options small;
  small.max_response_bytes = 1024;
  client c({etcd.client_endpoint()}, small);
  ok(c.put(kv("/b/big", std::string(4096, 'x')), soon()));
  const auto r = c.range(key_only("/b/big"), soon());
  REQUIRE_FALSE(r.ok());
  CHECK(r.code() == errc::too_large);
  // The connection was dropped mid-answer; the next call reconnects.
  ok(c.put(kv("/b/small", "y"), soon()));
  CHECK(ok(c.range(key_only("/b/small"), soon())).kvs.at(0).value == "y");
}

TEST_CASE("etcd client reports http errors with etcd message", "[etcd][client]") {
  etcd_process etcd;
  client c({etcd.client_endpoint()});
  const auto r = c.put(kv("", "no key"), soon());
  REQUIRE_FALSE(r.ok());
  CHECK(r.code() == errc::http_error);
  CHECK(r.err().http_status == 400);
  CHECK(r.err().message.find("key is not provided") != std::string::npos);
  range_request future = key_only("/x");
  future.revision = 1000;
  CHECK(c.range(future, soon()).code() == errc::http_error);
  // No endpoints at all.
  client none({});
  CHECK(none.range(key_only("/x"), soon()).code() == errc::unavailable);
}
