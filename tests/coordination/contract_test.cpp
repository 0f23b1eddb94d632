// The coordination contract (cluster/coordination/coordination.hpp), written once and run
// against the in-memory store and against the etcd session on a real etcd: incarnations, one
// controller, leases that end memberships, compare-and-set on shard assignments, fencing of an
// earlier life, and a member cut off from the store that changes nothing.
#include <catch2/catch.hpp>

#include <chrono>
#include <thread>

#include "tests/coordination/contract_fixture.hpp"

using namespace ordermesh::cluster::coordination;
using namespace ordermesh::cluster::coordination::test;
using namespace std::chrono_literals;

namespace {

member_info info(const std::string& id) {
  return {id, "127.0.0.1:75" + id.substr(1), "127.0.0.1:74" + id.substr(1)};
}

cluster_config config(uint16_t shards, uint16_t rf = 1) {
  return {"c1", shards, rf, 1};
}

void rejoin_fences_the_earlier_life(contract_fixture& fx) {
  auto first = fx.connect();
  auto a1 = first->join(info("n1"), 3s);
  REQUIRE(a1);
  auto second = fx.connect();
  auto b = second->join(info("n2"), 3s);
  REQUIRE(b);
  CHECK(b.value().incarnation > a1.value().incarnation);
  REQUIRE(first->bootstrap(config(4), initial_assignments({"n1"}, config(4))).value());

  // n1 restarts: a new handle joins under the same id and gets a new incarnation.
  auto restarted = fx.connect();
  auto a2 = restarted->join(info("n1"), 3s);
  REQUIRE(a2);
  CHECK(a2.value().incarnation > b.value().incarnation);

  // The earlier life can no longer change anything.
  auto st = restarted->read().value();
  auto next = st.shards[0];
  next.epoch += 1;
  auto stale = first->write_shard(next, st.shards[0].mod_revision);
  REQUIRE_FALSE(stale);
  CHECK(stale.err().code == errc::fenced);
  CHECK(first->campaign().err().code == errc::fenced);
  // The current life can.
  CHECK(restarted->write_shard(next, st.shards[0].mod_revision).value());
  auto members = restarted->read().value().members;
  REQUIRE(members.size() == 2);
  CHECK(members[0].incarnation == a2.value().incarnation);
}

void one_controller_and_a_successor(contract_fixture& fx) {
  auto n1 = fx.connect();
  auto n2 = fx.connect();
  REQUIRE(n1->join(info("n1"), 3s));
  REQUIRE(n2->join(info("n2"), 3s));
  auto c1 = n1->campaign();
  auto c2 = n2->campaign();
  REQUIRE(c1);
  REQUIRE(c2);
  CHECK(c1.value().node_id == "n1");
  CHECK(c2.value().node_id == "n1");  // n2 lost, and learns who won
  CHECK(n2->read().value().controller->node_id == "n1");

  // n2 keeps its lease alive, n1 does not: after the TTL n1 is gone, with its controller key.
  fx.let_lease_run_out("n1", *n2);
  auto st = n2->read().value();
  CHECK_FALSE(st.controller.has_value());
  REQUIRE(st.members.size() == 1);
  CHECK(st.members[0].node_id == "n2");
  CHECK(n2->campaign().value().node_id == "n2");
  auto lost = n1->keepalive();
  REQUIRE_FALSE(lost);
  CHECK(lost.err().code == errc::lease_lost);
}

void bootstrap_once(contract_fixture& fx) {
  auto n1 = fx.connect();
  auto n2 = fx.connect();
  REQUIRE(n1->join(info("n1"), 3s));
  REQUIRE(n2->join(info("n2"), 3s));
  CHECK(n1->bootstrap(config(8, 3), initial_assignments({"n1", "n2"}, config(8, 3))).value());
  CHECK_FALSE(n2->bootstrap(config(16), initial_assignments({"n2"}, config(16))).value());
  auto st = n2->read().value();
  REQUIRE(st.config.has_value());
  CHECK(st.config->shard_count == 8);
  REQUIRE(st.shards.size() == 8);
  CHECK(st.shards[3].primary == "n2");
  CHECK(st.shards[3].replicas == std::vector<std::string>{"n2", "n1"});  // rf 3, only 2 members
  // The bootstrap's revision: after both members' incarnations, before a later member's.
  auto n2_incarnation = st.members.back().incarnation;
  CHECK(st.config_revision > n2_incarnation);
  auto n3 = fx.connect();
  auto joined = n3->join(info("n3"), 3s);
  REQUIRE(joined);
  CHECK(joined.value().incarnation > st.config_revision);
  CHECK(n3->read().value().config_revision == st.config_revision);

  // Malformed first assignments are refused and write nothing.
  auto n = fx.connect_other_cluster();
  REQUIRE(n->join(info("n1"), 3s));
  auto bad = initial_assignments({"n1"}, config(4));
  bad[2].epoch = 0;
  CHECK(n->bootstrap(config(4), bad).err().code == errc::invalid);
  CHECK(n->bootstrap(config(4), {}).err().code == errc::invalid);
  CHECK_FALSE(n->read().value().config.has_value());
}

void shard_compare_and_set(contract_fixture& fx) {
  auto n1 = fx.connect();
  auto n2 = fx.connect();
  REQUIRE(n1->join(info("n1"), 3s));
  REQUIRE(n2->join(info("n2"), 3s));
  REQUIRE(n1->bootstrap(config(2), initial_assignments({"n1"}, config(2))).value());
  auto seen = n1->read().value().shards[1];

  // Both read the same revision; the first write wins, the second is told to read again.
  auto to_n2 = seen;
  to_n2.epoch = seen.epoch + 1;
  to_n2.primary = "n2";
  auto to_n1 = seen;
  to_n1.epoch = seen.epoch + 1;
  CHECK(n2->write_shard(to_n2, seen.mod_revision).value());
  CHECK_FALSE(n1->write_shard(to_n1, seen.mod_revision).value());
  auto now = n1->read().value().shards[1];
  CHECK(now.primary == "n2");
  CHECK(now.epoch == 2);
  CHECK(now.mod_revision > seen.mod_revision);

  // A new primary without a new epoch, an epoch that goes down, an unknown shard, no primary:
  // refused, nothing changes.
  auto same_epoch = now;
  same_epoch.primary = "n1";
  CHECK(n1->write_shard(same_epoch, now.mod_revision).err().code == errc::invalid);
  auto lower = now;
  lower.epoch = 1;
  CHECK(n1->write_shard(lower, now.mod_revision).err().code == errc::invalid);
  auto unknown = now;
  unknown.shard = 9;
  unknown.epoch = 9;
  CHECK(n1->write_shard(unknown, now.mod_revision).err().code == errc::invalid);
  auto nobody = now;
  nobody.epoch = 3;
  nobody.primary.clear();
  CHECK(n1->write_shard(nobody, now.mod_revision).err().code == errc::invalid);
  CHECK(n1->read().value().shards[1].mod_revision == now.mod_revision);

  // A move intent keeps primary and epoch; the target's flip raises the epoch; an abort clears
  // the intent; the loser of the two finds the shard changed.
  auto intent = now;
  intent.target = "n1";
  REQUIRE(n1->write_shard(intent, now.mod_revision).value());
  auto pending = n2->read().value().shards[1];
  CHECK(pending.target == "n1");
  CHECK(pending.epoch == 2);
  auto flip = pending;
  flip.primary = "n1";
  flip.epoch = 3;
  flip.target.clear();
  auto abort = pending;
  abort.target.clear();
  CHECK(n1->write_shard(flip, pending.mod_revision).value());
  CHECK_FALSE(n2->write_shard(abort, pending.mod_revision).value());
  CHECK(n2->read().value().shards[1].primary == "n1");
}

void update_keeps_the_incarnation(contract_fixture& fx) {
  auto n1 = fx.connect();
  auto n2 = fx.connect();
  auto joined = n1->join(info("n1"), 3s);
  REQUIRE(joined);
  REQUIRE(n2->join(info("n2"), 3s));
  auto leaving = info("n1");
  leaving.leaving = true;
  auto updated = n1->update(leaving);
  REQUIRE(updated);
  CHECK(updated.value().leaving);
  CHECK(updated.value().incarnation == joined.value().incarnation);
  CHECK(n2->read().value().members[0].leaving);
  CHECK_FALSE(n2->read().value().members[0].draining);
  auto draining = info("n1");
  draining.draining = true;  // SIGTERM with --drain: leadership moves, replicas stay
  REQUIRE(n1->update(draining));
  CHECK(n2->read().value().members[0].draining);
  CHECK_FALSE(n2->read().value().members[0].leaving);
  CHECK(n2->update(leaving).err().code == errc::invalid);  // not its own record
  auto again = fx.connect();
  REQUIRE(again->join(info("n1"), 3s));  // a new life fences the old handle
  CHECK(n1->update(leaving).err().code == errc::fenced);
}

void cut_off_member_changes_nothing(contract_fixture& fx) {
  auto n1 = fx.connect_as("n1");
  auto n2 = fx.connect();
  REQUIRE(n1->join(info("n1"), 3s));
  REQUIRE(n2->join(info("n2"), 3s));
  REQUIRE(n1->bootstrap(config(2), initial_assignments({"n1"}, config(2))).value());
  auto seen = n1->read().value();
  int64_t before = fx.revision();

  fx.set_reachable("n1", false);
  auto next = seen.shards[0];
  next.epoch += 1;
  CHECK(n1->write_shard(next, next.mod_revision).err().code == errc::unavailable);
  CHECK(n1->campaign().err().code == errc::unavailable);
  CHECK(n1->keepalive().err().code == errc::unavailable);
  CHECK(n1->read().err().code == errc::unavailable);
  CHECK(fx.revision() == before);

  // Its lease runs out meanwhile: back in reach, it is no longer a member.
  fx.let_lease_run_out("n1", *n2);
  fx.set_reachable("n1", true);
  CHECK(n1->keepalive().err().code == errc::lease_lost);
  CHECK(n1->write_shard(next, next.mod_revision).err().code == errc::fenced);
  REQUIRE(n1->join(info("n1"), 3s));  // a new life
  CHECK(n1->write_shard(next, next.mod_revision).value());
}

void leave_removes_member_and_controller(contract_fixture& fx) {
  auto n1 = fx.connect();
  auto n2 = fx.connect();
  REQUIRE(n1->join(info("n1"), 3s));
  REQUIRE(n2->join(info("n2"), 3s));
  REQUIRE(n1->campaign().value().node_id == "n1");
  REQUIRE(n1->leave().value());
  auto st = n2->read().value();
  CHECK_FALSE(st.controller.has_value());
  CHECK(st.members.size() == 1);
  CHECK(n1->campaign().err().code == errc::not_joined);
  CHECK(n2->campaign().value().node_id == "n2");
}

void an_expired_lease_ends_the_membership(contract_fixture& fx) {
  auto n1 = fx.connect();
  auto n2 = fx.connect();
  auto joined = n1->join(info("n1"), 3s);
  REQUIRE(joined);
  REQUIRE(n2->join(info("n2"), 3s));
  REQUIRE(n1->campaign().value().node_id == "n1");
  REQUIRE(n1->bootstrap(config(2), initial_assignments({"n1"}, config(2))).value());
  auto seen = n1->read().value().shards[0];

  fx.expire_lease("n1");
  auto st = n2->read().value();
  CHECK_FALSE(st.controller.has_value());
  REQUIRE(st.members.size() == 1);
  CHECK(st.members[0].node_id == "n2");
  // The expired life learns it at its next renewal, and can change nothing meanwhile.
  CHECK(n1->keepalive().err().code == errc::lease_lost);
  auto next = seen;
  next.epoch += 1;
  CHECK(n1->write_shard(next, seen.mod_revision).err().code == errc::fenced);
  CHECK(n1->campaign().err().code == errc::fenced);
  auto leaving = info("n1");
  leaving.leaving = true;
  CHECK(n1->update(leaving).err().code == errc::fenced);
  CHECK(n2->campaign().value().node_id == "n2");
  // Joining again is a new life.
  auto again = n1->join(info("n1"), 3s);
  REQUIRE(again);
  CHECK(again.value().incarnation > joined.value().incarnation);
  CHECK(n1->write_shard(next, seen.mod_revision).value());
}

void wait_for_a_change(contract_fixture& fx) {
  auto n1 = fx.connect();
  auto n2 = fx.connect();
  REQUIRE(n1->join(info("n1"), 3s));
  REQUIRE(n2->join(info("n2"), 3s));
  int64_t rev = n1->read().value().revision;
  CHECK(n1->wait_change(rev, 20ms).value() == rev);  // nothing happened
  std::thread other([&] {
    std::this_thread::sleep_for(20ms);
    REQUIRE(n2->campaign());
  });
  auto woke = n1->wait_change(rev, 10s);
  other.join();
  REQUIRE(woke);
  CHECK(woke.value() > rev);
  CHECK(n1->read().value().controller->node_id == "n2");
}

void calls_before_join(contract_fixture& fx) {
  auto n = fx.connect();
  CHECK(n->campaign().err().code == errc::not_joined);
  CHECK(n->keepalive().err().code == errc::not_joined);
  CHECK(n->leave().err().code == errc::not_joined);
  CHECK(n->update(info("n1")).err().code == errc::not_joined);
  CHECK(n->bootstrap(config(1), initial_assignments({"n1"}, config(1))).err().code ==
        errc::not_joined);
  CHECK(n->write_shard(initial_assignments({"n1"}, config(1))[0], 1).err().code ==
        errc::not_joined);
  CHECK(n->join(member_info{"", "127.0.0.1:1", "127.0.0.1:2"}, 3s).err().code == errc::invalid);
  CHECK(n->join(info("n1"), 0s).err().code == errc::invalid);
  // Reading needs no membership.
  auto st = n->read();
  REQUIRE(st);
  CHECK(st.value().members.empty());
  CHECK_FALSE(st.value().config.has_value());
}

void a_silent_controller_is_deposed(contract_fixture& fx) {
  auto n1 = fx.connect();
  auto n2 = fx.connect();
  auto n3 = fx.connect();
  REQUIRE(n1->join(info("n1"), 3s));
  auto m2 = n2->join(info("n2"), 3s);
  REQUIRE(m2);
  REQUIRE(n3->join(info("n3"), 3s));
  auto ctl = n1->campaign();
  REQUIRE(ctl);
  REQUIRE(ctl.value().node_id == "n1");

  // Only that very controller is deposed: a record naming another member, or another life of
  // n1, changes nothing.
  auto other_life = ctl.value();
  other_life.incarnation += 1000;
  CHECK_FALSE(n2->depose_controller(other_life).value());
  CHECK_FALSE(n2->depose_controller(m2.value()).value());
  CHECK(n3->read().value().controller->node_id == "n1");

  // n2 deposes n1 while n1's lease lives: the key goes, n1 stays a member, anyone may campaign.
  CHECK(n2->depose_controller(ctl.value()).value());
  auto st = n3->read().value();
  CHECK_FALSE(st.controller.has_value());
  CHECK(st.members.size() == 3);
  CHECK_FALSE(n3->depose_controller(ctl.value()).value());  // gone already
  CHECK(n3->campaign().value().node_id == "n3");
  CHECK(n1->campaign().value().node_id == "n3");  // the deposed one learns who leads now

  // A member whose life is over cannot depose anyone.
  auto n2_again = fx.connect();
  REQUIRE(n2_again->join(info("n2"), 3s));
  auto fenced = n2->depose_controller(n3->read().value().controller.value());
  REQUIRE_FALSE(fenced);
  CHECK(fenced.err().code == errc::fenced);
  CHECK(n1->read().value().controller->node_id == "n3");
}

}  // namespace

// Each contract case once per implementation: "coordination memory: ..." and
// "coordination etcd: ..." (the etcd one starts a private etcd on 127.0.0.1 and fails, never
// skips, when /usr/bin/etcd is missing).
#define CONTRACT_CASE(title, fn)             \
  TEST_CASE("coordination memory: " title) { \
    auto fx = make_memory_fixture();         \
    fn(*fx);                                 \
  }                                          \
  TEST_CASE("coordination etcd: " title) {   \
    auto fx = make_etcd_fixture();           \
    fn(*fx);                                 \
  }

CONTRACT_CASE("each join is a new incarnation, and a rejoin fences the earlier life",
              rejoin_fences_the_earlier_life)
CONTRACT_CASE("exactly one controller, and a successor once its lease expires",
              one_controller_and_a_successor)
CONTRACT_CASE("bootstrap happens once and never overwrites", bootstrap_once)
CONTRACT_CASE("a shard changes only from the revision last read, with a growing epoch",
              shard_compare_and_set)
CONTRACT_CASE("update rewrites the member under the same incarnation", update_keeps_the_incarnation)
CONTRACT_CASE("a member cut off from the store gets unavailable and changes nothing",
              cut_off_member_changes_nothing)
CONTRACT_CASE("leave removes the member and its controller key at once",
              leave_removes_member_and_controller)
CONTRACT_CASE("a lease expired now ends the membership and fences that life",
              an_expired_lease_ends_the_membership)
CONTRACT_CASE("waiting for a change wakes on one and times out without one", wait_for_a_change)
CONTRACT_CASE("calls that need membership fail before join, reading does not", calls_before_join)
CONTRACT_CASE("a member deposes a silent controller, only that very one, while it is current",
              a_silent_controller_is_deposed)
