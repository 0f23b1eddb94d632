// The etcd session's key layout and JSON values (cluster/coordination/coordination_codec.hpp),
// without etcd: round trips, and malformed values that must give errc::invalid, never a throw.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "cluster/coordination/coordination_codec.hpp"

using namespace ordermesh::cluster::coordination;
namespace codec = ordermesh::cluster::coordination::codec;
namespace etcd = ordermesh::etcd;

namespace {

etcd::key_value kv(std::string key, std::string value, int64_t create, int64_t mod) {
  etcd::key_value k;
  k.key = std::move(key);
  k.value = std::move(value);
  k.create_revision = create;
  k.mod_revision = mod;
  k.version = 1;
  return k;
}

shard_assignment shard(uint16_t n, uint64_t epoch, std::string primary) {
  shard_assignment s;
  s.shard = n;
  s.epoch = epoch;
  s.primary = primary;
  s.replicas = {primary};
  s.isr = {primary};
  return s;
}

}  // namespace

TEST_CASE("coordination codec: the key layout under the cluster prefix") {
  codec::key_layout keys("prod-1");
  CHECK(keys.prefix() == "/ordermesh/prod-1/");
  CHECK(keys.config() == "/ordermesh/prod-1/config");
  CHECK(keys.controller() == "/ordermesh/prod-1/controller");
  CHECK(keys.member("n7") == "/ordermesh/prod-1/members/n7");
  CHECK(keys.shard(0) == "/ordermesh/prod-1/shards/00000");
  CHECK(keys.shard(42) == "/ordermesh/prod-1/shards/00042");
  CHECK(keys.shard(65535) == "/ordermesh/prod-1/shards/65535");

  using kind = codec::key_layout::kind;
  CHECK(keys.parse(keys.config()).what == kind::config);
  CHECK(keys.parse(keys.controller()).what == kind::controller);
  auto m = keys.parse(keys.member("n7"));
  CHECK(m.what == kind::member);
  CHECK(m.node_id == "n7");
  auto s = keys.parse(keys.shard(42));
  CHECK(s.what == kind::shard);
  CHECK(s.shard == 42);
  CHECK(keys.parse("/ordermesh/prod-1/shards/42").bad_shard_key);
  CHECK(keys.parse("/ordermesh/prod-1/shards/9999x").bad_shard_key);
  CHECK(keys.parse("/ordermesh/prod-1/shards/99999").bad_shard_key);  // above uint16
  CHECK(keys.parse("/ordermesh/prod-1/members/").what == kind::other);
  CHECK(keys.parse("/ordermesh/prod-1/unknown").what == kind::other);
  CHECK(keys.parse("/ordermesh/prod-2/config").what == kind::other);

  CHECK(codec::key_layout::valid_cluster_name("default"));
  CHECK(codec::key_layout::valid_cluster_name("a.b_c-1"));
  CHECK_FALSE(codec::key_layout::valid_cluster_name(""));
  CHECK_FALSE(codec::key_layout::valid_cluster_name("a/b"));
  CHECK_FALSE(codec::key_layout::valid_cluster_name("a b"));
  CHECK_FALSE(codec::key_layout::valid_cluster_name(std::string(129, 'a')));
}

TEST_CASE("coordination codec: member, controller, config and shard values round trip") {
  member_record m{"n1", "127.0.0.1:7501", "127.0.0.1:7401", true, 99, 4611686018427387905};
  auto md = codec::decode_member(codec::encode_member(m));
  REQUIRE(md);
  CHECK(md.value().node_id == "n1");
  CHECK(md.value().cluster_address == "127.0.0.1:7501");
  CHECK(md.value().client_address == "127.0.0.1:7401");
  CHECK(md.value().leaving);
  CHECK(md.value().incarnation == 0);  // the key's create revision, not in the value
  CHECK(md.value().disk == 4611686018427387905);
  // The disk is optional (0: none), a positive decimal string when present.
  auto no_disk = codec::decode_member(R"({"node_id":"n2"})");
  REQUIRE(no_disk);
  CHECK(no_disk.value().disk == 0);
  CHECK_FALSE(codec::decode_member(R"({"node_id":"n2","disk":"-4"})"));
  CHECK_FALSE(codec::decode_member(R"({"node_id":"n2","disk":"12x"})"));
  CHECK_FALSE(codec::decode_member(R"({"node_id":"n2","disk":12})"));
  // draining: absent when false (older nodes read the same records), a boolean when present.
  CHECK_FALSE(md.value().draining);
  CHECK(codec::encode_member(m).find("draining") == std::string::npos);
  m.draining = true;
  auto dd = codec::decode_member(codec::encode_member(m));
  REQUIRE(dd);
  CHECK(dd.value().draining);
  CHECK_FALSE(codec::decode_member(R"({"node_id":"n2","draining":"yes"})"));

  auto cd = codec::decode_controller(codec::encode_controller({"n2", 1234567890123}));
  REQUIRE(cd);
  CHECK(cd.value().node_id == "n2");
  CHECK(cd.value().incarnation == 1234567890123);

  cluster_config c{"id-1", 300, 3, 2};
  auto cfd = codec::decode_config(codec::encode_config(c));
  REQUIRE(cfd);
  CHECK(cfd.value().cluster_id == "id-1");
  CHECK(cfd.value().shard_count == 300);
  CHECK(cfd.value().replication_factor == 3);
  CHECK(cfd.value().min_insync == 2);

  shard_assignment s;
  s.shard = 65535;
  s.epoch = UINT64_MAX;
  s.primary = "n1";
  s.replicas = {"n1", "n2", "n3"};
  s.isr = {"n1", "n3"};
  s.isr_disks = {9007199254740993, 12};  // above 2^53: must not pass through a double
  s.target = "n2";
  s.mod_revision = 77;
  CHECK(codec::encode_shard(s).find(R"("isr_disks":["9007199254740993","12"])") !=
        std::string::npos);
  auto sd = codec::decode_shard(codec::encode_shard(s));
  REQUIRE(sd);
  CHECK(sd.value().shard == 65535);
  CHECK(sd.value().epoch == UINT64_MAX);
  CHECK(sd.value().primary == "n1");
  CHECK(sd.value().replicas == s.replicas);
  CHECK(sd.value().isr == s.isr);
  CHECK(sd.value().isr_disks == s.isr_disks);
  CHECK(sd.value().target == "n2");
  CHECK(sd.value().mod_revision == 0);  // the key's mod revision, not in the value

  // Optional fields may be absent; unknown fields are ignored (a later version may add some).
  auto minimal = codec::decode_shard(R"({"shard":1,"epoch":2,"primary":"a","later":[1]})");
  REQUIRE(minimal);
  CHECK(minimal.value().replicas.empty());
  CHECK(minimal.value().isr_disks.empty());
  // Without incarnations the field is left out: values from before replication stay as they were.
  shard_assignment plain;
  plain.shard = 1;
  plain.epoch = 2;
  plain.primary = "a";
  plain.isr = {"a"};
  CHECK(codec::encode_shard(plain).find("isr_disks") == std::string::npos);
  CHECK(minimal.value().target.empty());
  auto bare = codec::decode_member(R"({"node_id":"n3"})");
  REQUIRE(bare);
  CHECK_FALSE(bare.value().leaving);
}

TEST_CASE("coordination codec: malformed values are invalid, never a throw") {
  const std::vector<std::string> not_objects = {
      "",
      " ",
      "{",
      "}",
      "[]",
      "null",
      "42",
      "\"text\"",
      "{\"node_id\":\"n1\"",
      "{}x",
      std::string("{\"node_id\":\"\xff\xfe\"}"),  // not UTF-8
      std::string(100000, '['),
      std::string(5000, '{'),
      std::string(2 << 20, ' ') + "{}"};
  for (const auto& v : not_objects) {
    INFO("value: " << v.substr(0, 40));
    auto m = codec::decode_member(v);
    CHECK_FALSE(m);
    if (!m)
      CHECK(m.err().code == errc::invalid);
    CHECK_FALSE(codec::decode_controller(v));
    CHECK_FALSE(codec::decode_config(v));
    CHECK_FALSE(codec::decode_shard(v));
  }

  const std::vector<std::string> bad_members = {R"({})", R"({"node_id":5})", R"({"node_id":null})",
                                                R"({"node_id":"n","leaving":"yes"})",
                                                R"({"node_id":"n","cluster_address":[]})"};
  for (const auto& v : bad_members) {
    INFO(v);
    auto r = codec::decode_member(v);
    REQUIRE_FALSE(r);
    CHECK(r.err().code == errc::invalid);
    CHECK(r.err().message.find("member") != std::string::npos);
  }
  const std::vector<std::string> bad_controllers = {
      R"({"node_id":"n1"})",
      R"({"node_id":"n1","incarnation":0})",
      R"({"node_id":"n1","incarnation":-3})",
      R"({"node_id":"n1","incarnation":"7"})",
      R"({"node_id":"","incarnation":7})",
      R"({"incarnation":7})",
      R"({"node_id":"n1","incarnation":1.5})",
      R"({"node_id":"n1","incarnation":99999999999999999999})"};
  for (const auto& v : bad_controllers) {
    INFO(v);
    CHECK_FALSE(codec::decode_controller(v));
  }
  const std::vector<std::string> bad_configs = {
      R"({"shard_count":4,"replication_factor":1,"min_insync":1})",
      R"({"cluster_id":"c","shard_count":0,"replication_factor":1,"min_insync":1})",
      R"({"cluster_id":"c","shard_count":65536,"replication_factor":1,"min_insync":1})",
      R"({"cluster_id":"c","shard_count":4,"replication_factor":0,"min_insync":1})",
      R"({"cluster_id":"c","shard_count":4,"replication_factor":1})",
      R"({"cluster_id":7,"shard_count":4,"replication_factor":1,"min_insync":1})"};
  for (const auto& v : bad_configs) {
    INFO(v);
    CHECK_FALSE(codec::decode_config(v));
  }
  const std::vector<std::string> bad_shards = {
      R"({"shard":1,"epoch":0,"primary":"a"})",
      R"({"shard":1,"epoch":-1,"primary":"a"})",
      R"({"shard":70000,"epoch":1,"primary":"a"})",
      R"({"shard":1,"epoch":1,"primary":""})",
      R"({"shard":1,"epoch":1})",
      R"({"epoch":1,"primary":"a"})",
      R"({"shard":1,"epoch":1,"primary":"a","replicas":"a"})",
      R"({"shard":1,"epoch":1,"primary":"a","isr":[1]})",
      R"({"shard":1,"epoch":1,"primary":"a","target":false})",
      R"({"shard":1,"epoch":1,"primary":"a","isr":["a","b"],"isr_disks":["3"]})",
      R"({"shard":1,"epoch":1,"primary":"a","isr":["a"],"isr_disks":[3]})",
      R"({"shard":1,"epoch":1,"primary":"a","isr":["a"],"isr_disks":["0"]})",
      R"({"shard":1,"epoch":1,"primary":"a","isr":["a"],"isr_disks":["-4"]})",
      R"({"shard":1,"epoch":1,"primary":"a","isr":["a"],"isr_disks":["4x"]})",
      R"({"shard":1,"epoch":1,"primary":"a","isr":["a"],"isr_disks":[""]})",
      R"({"shard":1,"epoch":1,"primary":"a","isr":["a"],"isr_disks":"4"})",
      R"({"shard":1,"epoch":1,"primary":"a","isr":["a"],
          "isr_disks":["99999999999999999999"]})"};
  for (const auto& v : bad_shards) {
    INFO(v);
    CHECK_FALSE(codec::decode_shard(v));
  }
}

TEST_CASE("coordination codec: the cluster state from one range over the prefix") {
  codec::key_layout keys("c");
  cluster_config cfg{"id", 2, 1, 1};
  std::vector<etcd::key_value> kvs = {
      kv(keys.config(), codec::encode_config(cfg), 10, 10),
      kv(keys.controller(), codec::encode_controller({"n2", 5}), 12, 12),
      kv(keys.member("n2"), codec::encode_member({"n2", "a2", "c2", false, 0}), 5, 9),
      kv(keys.member("n1"), codec::encode_member({"n1", "a1", "c1", true, 0}), 3, 3),
      kv(keys.shard(1), codec::encode_shard(shard(1, 4, "n2")), 8, 11),
      kv(keys.shard(0), codec::encode_shard(shard(0, 1, "n1")), 8, 8),
      kv(keys.shard(7), codec::encode_shard(shard(7, 1, "n9")), 6, 6),  // a crashed bootstrap's
      kv(keys.prefix() + "something-newer", "not ours to read", 2, 2),
  };
  auto st = codec::decode_state(keys, 20, kvs);
  REQUIRE(st);
  CHECK(st.value().revision == 20);
  REQUIRE(st.value().config);
  CHECK(st.value().config->cluster_id == "id");
  REQUIRE(st.value().members.size() == 2);
  CHECK(st.value().members[0].node_id == "n1");   // ordered by node id
  CHECK(st.value().members[0].incarnation == 3);  // the create revision
  CHECK(st.value().members[0].leaving);
  CHECK(st.value().members[1].incarnation == 5);
  REQUIRE(st.value().shards.size() == 2);  // shard 7 is beyond the config's count
  CHECK(st.value().shards[0].mod_revision == 8);
  CHECK(st.value().shards[1].epoch == 4);
  CHECK(st.value().shards[1].mod_revision == 11);
  REQUIRE(st.value().controller);
  CHECK(st.value().controller->node_id == "n2");
  CHECK(st.value().controller->cluster_address == "a2");

  SECTION("a controller of a gone incarnation is just its id and incarnation") {
    kvs[1] = kv(keys.controller(), codec::encode_controller({"n1", 2}), 12, 12);
    auto s = codec::decode_state(keys, 20, kvs);
    REQUIRE(s);
    REQUIRE(s.value().controller);
    CHECK(s.value().controller->node_id == "n1");
    CHECK(s.value().controller->incarnation == 2);
    CHECK(s.value().controller->cluster_address.empty());
  }
  SECTION("no config: no shards, whatever shard keys a crashed bootstrap left") {
    kvs.erase(kvs.begin());
    auto s = codec::decode_state(keys, 20, kvs);
    REQUIRE(s);
    CHECK_FALSE(s.value().config);
    CHECK(s.value().shards.empty());
  }
  SECTION("a value that does not decode is invalid, naming its key") {
    kvs[4].value = "garbage";
    auto s = codec::decode_state(keys, 20, kvs);
    REQUIRE_FALSE(s);
    CHECK(s.err().code == errc::invalid);
    CHECK(s.err().message.find(keys.shard(1)) != std::string::npos);
  }
  SECTION("a value that names another member or shard than its key is invalid") {
    kvs[2].value = codec::encode_member({"n3", "", "", false, 0});
    auto s = codec::decode_state(keys, 20, kvs);
    REQUIRE_FALSE(s);
    CHECK(s.err().message.find(keys.member("n2")) != std::string::npos);
    kvs[2].value = codec::encode_member({"n2", "", "", false, 0});
    kvs[5].value = codec::encode_shard(shard(1, 1, "n1"));
    auto s2 = codec::decode_state(keys, 20, kvs);
    REQUIRE_FALSE(s2);
    CHECK(s2.err().message.find(keys.shard(0)) != std::string::npos);
  }
  SECTION("a missing shard under a config is invalid, naming the key") {
    kvs.erase(kvs.begin() + 4);
    auto s = codec::decode_state(keys, 20, kvs);
    REQUIRE_FALSE(s);
    CHECK(s.err().message.find(keys.shard(1)) != std::string::npos);
  }
  SECTION("a key under shards that is not a shard key is invalid") {
    kvs.push_back(kv(keys.shards_prefix() + "x", "{}", 2, 2));
    auto s = codec::decode_state(keys, 20, kvs);
    REQUIRE_FALSE(s);
    CHECK(s.err().message.find(keys.shards_prefix() + "x") != std::string::npos);
  }
}
