// What only the etcd session has to show, against a real etcd that each case starts on
// 127.0.0.1 (tests/etcd/etcd_process.hpp; a missing /usr/bin/etcd fails, never skips): the keys
// and values as stored, races decided by etcd's txns, real lease expiry, the watch behind
// wait_change, values that do not decode, bootstraps above etcd's txn op limit, an etcd out
// of reach, and the departure records of a dead member.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <thread>

#include <nlohmann/json.hpp>

#include "cluster/coordination/coordination_codec.hpp"
#include "tests/coordination/etcd_fixture.hpp"

using namespace ordermesh::cluster::coordination;
using namespace ordermesh::cluster::coordination::test;
using namespace std::chrono_literals;
namespace etcd = ordermesh::etcd;
using json = nlohmann::json;
using steady = std::chrono::steady_clock;

namespace {

member_info info(const std::string& id) {
  return {id, "127.0.0.1:75" + id.substr(1), "127.0.0.1:74" + id.substr(1)};
}

cluster_config config(uint16_t shards) {
  return {"c1", shards, 1, 1};
}

std::optional<etcd::key_value> raw_get(etcd_fixture& fx, const std::string& rest) {
  etcd::range_request r;
  r.key = fx.key(rest);
  auto got = fx.raw().range(r, etcd::deadline_after(2s));
  REQUIRE(got.ok());
  if (got->kvs.empty())
    return std::nullopt;
  return got->kvs.front();
}

void raw_put(etcd_fixture& fx, const std::string& rest, const std::string& value) {
  etcd::put_request p;
  p.key = fx.key(rest);
  p.value = value;
  REQUIRE(fx.raw().put(p, etcd::deadline_after(2s)).ok());
}

}  // namespace

TEST_CASE("etcd session: keys, values and leases as documented") {
  etcd_fixture fx("layout");
  auto n1 = fx.connect();
  CHECK(n1->kind() == "etcd");
  auto joined = n1->join(info("n1"), 3s);
  REQUIRE(joined);
  REQUIRE(n1->campaign().value().node_id == "n1");
  REQUIRE(n1->bootstrap(config(3), initial_assignments({"n1"}, config(3))).value());

  auto member = raw_get(fx, "members/n1");
  REQUIRE(member);
  CHECK(member->create_revision == joined.value().incarnation);
  CHECK(member->lease != 0);
  auto m = json::parse(member->value);
  CHECK(m["node_id"] == "n1");
  CHECK(m["cluster_address"] == "127.0.0.1:751");
  CHECK(m["client_address"] == "127.0.0.1:741");
  CHECK(m["leaving"] == false);

  auto controller = raw_get(fx, "controller");
  REQUIRE(controller);
  CHECK(controller->lease == member->lease);  // goes with the controller's membership
  auto c = json::parse(controller->value);
  CHECK(c["node_id"] == "n1");
  CHECK(c["incarnation"] == joined.value().incarnation);

  auto cfg = raw_get(fx, "config");
  REQUIRE(cfg);
  CHECK(cfg->lease == 0);
  auto cj = json::parse(cfg->value);
  CHECK(cj["cluster_id"] == "c1");
  CHECK(cj["shard_count"] == 3);
  CHECK(cj["replication_factor"] == 1);
  CHECK(cj["min_insync"] == 1);

  auto shard = raw_get(fx, "shards/00002");
  REQUIRE(shard);
  CHECK(shard->lease == 0);
  auto sj = json::parse(shard->value);
  CHECK(sj["shard"] == 2);
  CHECK(sj["epoch"] == 1);
  CHECK(sj["primary"] == "n1");
  CHECK(sj["replicas"] == json::array({"n1"}));
  CHECK(sj["isr"] == json::array({"n1"}));
  CHECK(sj["target"] == "");
  CHECK(n1->read().value().shards[2].mod_revision == shard->mod_revision);

  // A TTL below etcd's minimum is raised to it; keepalive reports the TTL in milliseconds.
  auto n2 = fx.connect();
  REQUIRE(n2->join(info("n2"), 100ms));
  auto ttl = n2->keepalive();
  REQUIRE(ttl);
  CHECK(ttl.value() >= 1000ms);
  CHECK(ttl.value() <= 10000ms);
}

TEST_CASE("etcd session: two sessions racing a shard write on one revision, exactly one wins") {
  etcd_fixture fx("race");
  auto n1 = fx.connect();
  auto n2 = fx.connect();
  REQUIRE(n1->join(info("n1"), 3s));
  REQUIRE(n2->join(info("n2"), 3s));
  REQUIRE(n1->bootstrap(config(1), initial_assignments({"n1"}, config(1))).value());
  for (int round = 0; round < 5; ++round) {
    INFO("round " << round);
    auto seen1 = n1->read().value().shards[0];
    auto seen2 = n2->read().value().shards[0];
    REQUIRE(seen1.mod_revision == seen2.mod_revision);
    auto to_n1 = seen1;
    to_n1.epoch += 1;
    to_n1.primary = "n1";
    auto to_n2 = seen2;
    to_n2.epoch += 1;
    to_n2.primary = "n2";
    std::atomic<bool> go{false};
    std::optional<result<bool>> r1;
    std::optional<result<bool>> r2;
    std::thread t1([&] {
      while (!go.load())  // bounded: `go` is set right after both threads start
        std::this_thread::yield();
      r1 = n1->write_shard(to_n1, seen1.mod_revision);
    });
    std::thread t2([&] {
      while (!go.load())
        std::this_thread::yield();
      r2 = n2->write_shard(to_n2, seen2.mod_revision);
    });
    go = true;
    t1.join();
    t2.join();
    REQUIRE(r1->ok());
    REQUIRE(r2->ok());
    CHECK(r1->value() != r2->value());  // exactly one true
    auto now = n1->read().value().shards[0];
    CHECK(now.epoch == seen1.epoch + 1);
    CHECK(now.primary == (r1->value() ? "n1" : "n2"));
  }
}

TEST_CASE("etcd session: a rejoin under the same node id fences the old session") {
  etcd_fixture fx("rejoin");
  auto old_life = fx.connect();
  auto other = fx.connect();
  auto first = old_life->join(info("n1"), 3s);
  REQUIRE(first);
  REQUIRE(other->join(info("n2"), 3s));
  REQUIRE(old_life->campaign().value().node_id == "n1");
  REQUIRE(old_life->bootstrap(config(2), initial_assignments({"n1"}, config(2))).value());
  auto seen = old_life->read().value().shards[1];

  auto new_life = fx.connect();
  auto second = new_life->join(info("n1"), 3s);
  REQUIRE(second);
  CHECK(second.value().incarnation > first.value().incarnation);
  // The earlier life's lease is revoked: its controller key went with it.
  auto st = other->read().value();
  CHECK_FALSE(st.controller.has_value());
  REQUIRE(st.members.size() == 2);
  CHECK(st.members[0].incarnation == second.value().incarnation);

  auto next = seen;
  next.epoch += 1;
  auto w = old_life->write_shard(next, seen.mod_revision);
  REQUIRE_FALSE(w);
  CHECK(w.err().code == errc::fenced);
  CHECK(old_life->campaign().err().code == errc::fenced);
  CHECK(old_life->keepalive().err().code == errc::lease_lost);
  CHECK(old_life->bootstrap(config(2), initial_assignments({"n1"}, config(2))).err().code ==
        errc::fenced);
  // The new life is the member now.
  CHECK(new_life->campaign().value().incarnation == second.value().incarnation);
  CHECK(new_life->write_shard(next, seen.mod_revision).value());
  CHECK(new_life->keepalive());
}

TEST_CASE("etcd session: a member whose lease expires disappears and loses the controller key") {
  etcd_fixture fx("expiry");
  auto n1 = fx.connect();
  auto n2 = fx.connect();
  REQUIRE(n1->join(info("n1"), 2s));  // etcd's minimum TTL
  REQUIRE(n2->join(info("n2"), 3s));
  REQUIRE(n1->campaign().value().node_id == "n1");
  auto before = n2->read().value();
  REQUIRE(before.members.size() == 2);
  int64_t rev = before.revision;

  // n1 stops renewing; n2 keeps renewing and watches: the expiry is a change it wakes up for.
  bool gone = false;
  const auto give_up = steady::now() + 20s;
  while (!gone && steady::now() < give_up) {  // bounded by give_up
    REQUIRE(n2->keepalive());
    auto w = n2->wait_change(rev, 500ms);
    REQUIRE(w);
    if (w.value() == rev)
      continue;
    rev = w.value();
    auto st = n2->read().value();
    gone = st.members.size() == 1;
  }
  REQUIRE(gone);
  auto st = n2->read().value();
  CHECK(st.members[0].node_id == "n2");
  CHECK_FALSE(st.controller.has_value());
  CHECK_FALSE(raw_get(fx, "controller").has_value());
  CHECK(n1->keepalive().err().code == errc::lease_lost);
  CHECK(n1->campaign().err().code == errc::fenced);
  CHECK(n2->campaign().value().node_id == "n2");
}

TEST_CASE("etcd session: waiting for a change returns after a change by another session") {
  etcd_fixture fx("watch");
  auto n1 = fx.connect();
  auto n2 = fx.connect();
  REQUIRE(n1->join(info("n1"), 3s));
  REQUIRE(n2->join(info("n2"), 3s));
  int64_t rev = n1->read().value().revision;

  // Nothing changes: a timeout returns `after`, and takes about the timeout.
  auto t0 = steady::now();
  CHECK(n1->wait_change(rev, 300ms).value() == rev);
  CHECK(steady::now() - t0 >= 250ms);
  CHECK(steady::now() - t0 < 5s);

  std::thread changer([&] {
    std::this_thread::sleep_for(200ms);
    auto leaving = info("n2");
    leaving.leaving = true;
    REQUIRE(n2->update(leaving));
  });
  t0 = steady::now();
  auto woke = n1->wait_change(rev, 10s);
  changer.join();
  REQUIRE(woke);
  CHECK(woke.value() > rev);
  CHECK(steady::now() - t0 < 8s);
  auto st = n1->read().value();
  CHECK(st.revision >= woke.value());
  CHECK(st.members[1].leaving);

  // Asked again from the old revision, the answer is at once; from the new one, a timeout.
  t0 = steady::now();
  CHECK(n1->wait_change(rev, 10s).value() > rev);
  CHECK(steady::now() - t0 < 2s);
  CHECK(n1->wait_change(st.revision, 100ms).value() == st.revision);

  // Changes outside the cluster's prefix wake nobody.
  etcd::put_request elsewhere;
  elsewhere.key = "/ordermesh/another-cluster/config";
  elsewhere.value = "{}";
  REQUIRE(fx.raw().put(elsewhere, etcd::deadline_after(2s)).ok());
  CHECK(n1->wait_change(st.revision, 300ms).value() == st.revision);

  // etcd restarts: the watch breaks; the session reports the current revision or unavailable,
  // never blocks past the timeout plus one call's deadline, and watches again once etcd is back.
  fx.process().kill();
  t0 = steady::now();
  auto broken = n1->wait_change(st.revision, 1s);
  CHECK(steady::now() - t0 < 1s + 2s + 1s);
  if (broken)
    CHECK(broken.value() >= st.revision);
  else
    CHECK(broken.err().code == errc::unavailable);
  fx.process().restart();
  // etcd needs a moment to elect itself again; bounded retries.
  std::optional<int64_t> after_restart;
  for (int i = 0; i < 50 && !after_restart; ++i) {
    auto r = n1->read();
    if (r)
      after_restart = r.value().revision;
    else
      std::this_thread::sleep_for(200ms);
  }
  REQUIRE(after_restart);
  std::thread again([&] {
    std::this_thread::sleep_for(200ms);
    REQUIRE(n2->update(info("n2")));
  });
  bool woke_again = false;
  for (int i = 0; i < 10 && !woke_again; ++i) {  // the first call may still see the old stream
    auto w = n1->wait_change(*after_restart, 5s);
    woke_again = w && w.value() > *after_restart;
  }
  again.join();
  CHECK(woke_again);
}

TEST_CASE("etcd session: a value that does not decode makes read invalid, naming the key") {
  etcd_fixture fx("garbage");
  auto n1 = fx.connect();
  REQUIRE(n1->join(info("n1"), 3s));
  REQUIRE(n1->bootstrap(config(4), initial_assignments({"n1"}, config(4))).value());
  REQUIRE(n1->read());

  raw_put(fx, "shards/00002", "not json at all");
  auto r = n1->read();
  REQUIRE_FALSE(r);
  CHECK(r.err().code == errc::invalid);
  CHECK(r.err().message.find(fx.key("shards/00002")) != std::string::npos);
  // A shard write from an expected revision the session did not read decodes the key too.
  auto shard = initial_assignments({"n1"}, config(4))[2];
  shard.epoch = 2;
  auto stored = raw_get(fx, "shards/00002");
  REQUIRE(stored);
  auto w = n1->write_shard(shard, stored->mod_revision);
  REQUIRE_FALSE(w);
  CHECK(w.err().code == errc::invalid);

  raw_put(fx, "shards/00002", codec::encode_shard(initial_assignments({"n1"}, config(4))[2]));
  REQUIRE(n1->read());
  raw_put(fx, "controller", R"({"node_id":"n1"})");
  auto c = n1->read();
  REQUIRE_FALSE(c);
  CHECK(c.err().code == errc::invalid);
  CHECK(c.err().message.find(fx.key("controller")) != std::string::npos);
  auto camp = n1->campaign();
  REQUIRE_FALSE(camp);
  CHECK(camp.err().code == errc::invalid);
}

TEST_CASE("etcd session: a bootstrap of 300 shards, above the txn op limit of etcd, works") {
  etcd_fixture fx("big");
  auto n1 = fx.connect();
  auto n2 = fx.connect();
  REQUIRE(n1->join(info("n1"), 3s));
  REQUIRE(n2->join(info("n2"), 3s));
  auto shards = initial_assignments({"n1", "n2"}, config(300));
  REQUIRE(n1->bootstrap(config(300), shards).value());
  CHECK_FALSE(n2->bootstrap(config(300), shards).value());
  auto st = n2->read().value();
  REQUIRE(st.config);
  CHECK(st.config->shard_count == 300);
  REQUIRE(st.shards.size() == 300);
  for (uint16_t i = 0; i < 300; ++i) {
    CHECK(st.shards[i].shard == i);
    CHECK(st.shards[i].primary == (i % 2 == 0 ? "n1" : "n2"));
  }
  auto next = st.shards[299];
  next.epoch += 1;
  next.primary = "n1";
  CHECK(n2->write_shard(next, st.shards[299].mod_revision).value());
  CHECK(n1->read().value().shards[299].primary == "n1");

  // A bootstrap that crashed between its shard txns and its config txn left shard keys and no
  // config: read shows no shards, and the next bootstrap overwrites them.
  auto c = fx.connect_other_cluster();
  REQUIRE(c->join(info("n1"), 3s));
  etcd::put_request leftover;
  leftover.key = "/ordermesh/big-other/shards/00005";
  leftover.value = codec::encode_shard(initial_assignments({"zz"}, config(6))[5]);
  REQUIRE(fx.raw().put(leftover, etcd::deadline_after(2s)).ok());
  CHECK(c->read().value().shards.empty());
  REQUIRE(c->bootstrap(config(2), initial_assignments({"n1"}, config(2))).value());
  auto other = c->read().value();
  CHECK(other.shards.size() == 2);  // shard 5 is beyond the count: ignored
}

TEST_CASE("etcd session: an etcd out of reach gives unavailable within the deadline") {
  etcd_session_config cfg;
  cfg.endpoints = {etcd::endpoint{"127.0.0.1", etcd::test::unused_port()}};
  cfg.cluster = "nowhere";
  cfg.call_timeout = 1s;
  auto s = make_etcd_session(cfg);
  auto t0 = steady::now();
  CHECK(s->join(info("n1"), 3s).err().code == errc::unavailable);
  CHECK(s->read().err().code == errc::unavailable);
  CHECK(s->wait_change(5, 200ms).err().code == errc::unavailable);
  CHECK(steady::now() - t0 < 10s);

  cfg.endpoints.clear();
  CHECK(make_etcd_session(cfg)->read().err().code == errc::unavailable);

  cfg.cluster = "a/b";
  auto bad = make_etcd_session(cfg);
  CHECK(bad->read().err().code == errc::invalid);
  CHECK(bad->join(info("n1"), 3s).err().code == errc::invalid);
  CHECK(bad->wait_change(1, 10ms).err().code == errc::invalid);
}

TEST_CASE("etcd session: the first secret fingerprint stays, before any member joined") {
  etcd_fixture fx("fingerprint");
  auto n1 = fx.connect();
  auto n2 = fx.connect();
  // No membership needed: a node checks before it takes its member key.
  auto first = n1->claim_secret_fingerprint("fp-one");
  REQUIRE(first);
  CHECK(first.value() == "fp-one");
  auto other = n2->claim_secret_fingerprint("fp-two");
  REQUIRE(other);
  CHECK(other.value() == "fp-one");  // the caller sees the mismatch and refuses
  auto same = n2->claim_secret_fingerprint("fp-one");
  REQUIRE(same);
  CHECK(same.value() == "fp-one");
  auto stored = raw_get(fx, "secret_fingerprint");
  REQUIRE(stored);
  CHECK(stored->value == "fp-one");
  CHECK(stored->lease == 0);  // outlives every member
  CHECK_FALSE(n1->claim_secret_fingerprint(""));
  // Nodes ignore the key: a read with it present decodes.
  REQUIRE(n1->join(info("n1"), 3s));
  REQUIRE(n1->read());
}

// The departure records of a dead member (coordination.hpp, departure_record): the guards of
// their txns (never of a live member, once, only by a current member), the removal's hold on a
// rejoin of the same id, and their codec.
TEST_CASE("departure records: never of a live member - a removed id cannot join until it ends") {
  etcd_fixture fx("departures");
  auto n1 = fx.connect();
  REQUIRE(n1->join(info("n1"), 3s));
  auto n2 = fx.connect();
  REQUIRE(n2->join(info("n2"), 3s));

  // n2 holds a lease: neither record can be written about it.
  departure_record r{"n2", 1234, "", 0};
  CHECK_FALSE(n1->write_departure(departure_kind::absent, r).value());
  CHECK_FALSE(n1->write_departure(departure_kind::removed, r).value());
  REQUIRE(n2->leave().value());

  // Gone: its absence clock, as stored, then the removal, which stops the clock.
  REQUIRE(n1->write_departure(departure_kind::absent, r).value());
  CHECK(n1->write_departure(departure_kind::absent, r).value());  // asked twice: there already
  CHECK(raw_get(fx, "absent/n2")->version == 1);                  // and written once
  auto clock = raw_get(fx, "absent/n2");
  REQUIRE(clock);
  CHECK(clock->lease == 0);  // outlives every member's lease: a new controller reads it
  CHECK(json::parse(clock->value) == json{{"node_id", "n2"}, {"since_ms", 1234}});
  auto st = n1->read().value();
  REQUIRE(st.absent.size() == 1);
  CHECK(st.absent[0].since_ms == 1234);
  CHECK(st.absent[0].mod_revision == clock->mod_revision);

  departure_record removal{"n2", 5678, "operator", 0};
  REQUIRE(n1->write_departure(departure_kind::removed, removal).value());
  CHECK_FALSE(raw_get(fx, "absent/n2"));
  st = n1->read().value();
  CHECK(st.absent.empty());
  REQUIRE(st.removed.size() == 1);
  CHECK(st.removed[0].by == "operator");

  // n2 comes back while it is being removed: refused, and it holds no lease (serves nothing).
  auto back = fx.connect();
  auto refused = back->join(info("n2"), 3s);
  REQUIRE_FALSE(refused);
  CHECK(refused.err().code == errc::invalid);
  CHECK(refused.err().message.find("removed") != std::string::npos);
  CHECK(n1->read().value().members.size() == 1);

  // A stale revision deletes nothing; the current one ends the removal; then n2 joins anew.
  CHECK_FALSE(
      n1->forget_departure(departure_kind::removed, "n2", st.removed[0].mod_revision - 1).value());
  REQUIRE(n1->forget_departure(departure_kind::removed, "n2", st.removed[0].mod_revision).value());
  CHECK_FALSE(raw_get(fx, "removed/n2"));
  REQUIRE(back->join(info("n2"), 3s));
  CHECK(n1->read().value().members.size() == 2);
}

TEST_CASE("departure records: only a current member writes them") {
  etcd_fixture fx("departures-fenced");
  auto old_life = fx.connect();
  REQUIRE(old_life->join(info("n1"), 3s));
  auto new_life = fx.connect();
  REQUIRE(new_life->join(info("n1"), 3s));  // fences the old life
  departure_record r{"n9", 1, "", 0};
  CHECK(old_life->write_departure(departure_kind::absent, r).err().code == errc::fenced);
  CHECK(old_life->forget_departure(departure_kind::absent, "n9", 1).err().code == errc::fenced);
  CHECK(new_life->write_departure(departure_kind::absent, r).value());
}

TEST_CASE("departure records: codec - keys - and values that do not decode") {
  codec::key_layout keys("prod");
  CHECK(keys.departure(departure_kind::absent, "n3") == "/ordermesh/prod/absent/n3");
  CHECK(keys.departure(departure_kind::removed, "n3") == "/ordermesh/prod/removed/n3");
  auto p = keys.parse("/ordermesh/prod/removed/n3");
  CHECK(p.what == codec::key_layout::kind::removed);
  CHECK(p.node_id == "n3");
  CHECK(keys.parse("/ordermesh/prod/absent/n4").what == codec::key_layout::kind::absent);
  CHECK(keys.parse("/ordermesh/prod/absent/").what == codec::key_layout::kind::other);

  departure_record d{"n3", 42, "timeout", 0};
  auto back = codec::decode_departure(codec::encode_departure(d));
  REQUIRE(back);
  CHECK(back.value().node_id == "n3");
  CHECK(back.value().since_ms == 42);
  CHECK(back.value().by == "timeout");
  CHECK_FALSE(codec::decode_departure(R"({"since_ms":1})"));
  CHECK_FALSE(codec::decode_departure(R"({"node_id":"n3","since_ms":-1})"));
  CHECK_FALSE(codec::decode_departure("[]"));

  // A record whose value names another node than its key is refused by decode_state.
  etcd::key_value kv;
  kv.key = "/ordermesh/prod/removed/n3";
  kv.value = codec::encode_departure({"n4", 1, "operator", 0});
  auto st = codec::decode_state(keys, 10, {kv});
  REQUIRE_FALSE(st);
  CHECK(st.err().message.find("removed/n3") != std::string::npos);
}
