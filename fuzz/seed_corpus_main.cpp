// Writes the fuzz targets' seed corpus: real values encoded by the project's own encoders (and a
// few real request lines and etcd answers), one file per value, under <dir>/<target>/. The
// committed fuzz/corpus/ was made with `fuzz_seed_corpus fuzz/corpus`; run it again after a
// format change so the seeds stay valid records (the fuzzer starts from them). Only the real
// session token (session_token_fuzz/seed-1) differs from run to run: its nonce is random.
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <string>
#include <utility>
#include <vector>

#include "cluster/coordination/coordination_codec.hpp"
#include "cluster/etcd/etcd_base64.hpp"
#include "domain/inventory.hpp"
#include "domain/order.hpp"
#include "domain/product.hpp"
#include "domain/user.hpp"
#include "nodes/session_tokens.hpp"
#include "persistence/keys.hpp"
#include "persistence/replica_meta.hpp"

namespace {

namespace domain = ordermesh::domain;
namespace persistence = ordermesh::persistence;
namespace codec = ordermesh::cluster::coordination::codec;
namespace coordination = ordermesh::cluster::coordination;

/// Writes `values` as <dir>/<target>/seed-<n>; false on an I/O error.
bool write_seeds(const std::string& dir, const std::string& target,
                 const std::vector<std::string>& values) {
  const std::string folder = dir + "/" + target;
  if (std::system(("mkdir -p '" + folder + "'").c_str()) != 0)
    return false;
  for (size_t i = 0; i < values.size(); ++i) {
    std::ofstream out(folder + "/seed-" + std::to_string(i), std::ios::binary);
    out << values[i];
    if (!out)
      return false;
  }
  return true;
}

/// Each event of `events` encoded, and the snapshot of `s` after applying it: a real history.
template <class State, class Event, class Apply, class Encode, class EncodeSnapshot>
std::vector<std::string> history_seeds(State s, const std::vector<Event>& events, Apply apply,
                                       Encode encode, EncodeSnapshot encode_snapshot) {
  std::vector<std::string> out;
  for (const auto& e : events) {
    out.push_back(encode(e));
    apply(s, e);
    out.push_back(encode_snapshot(s));
  }
  return out;
}

std::vector<std::string> user_seeds() {
  namespace user = domain::user;
  std::vector<user::event> events{
      user::registered{"Alice", "$argon2id$v=19$m=65536,t=2,p=1$c2FsdA$aGFzaA", 1700000000000},
      user::deposited{"dep-1", 1000},
      user::debited{"o1", 500},
      user::refunded{"o1", 500},
      user::order_linked{"o1"},
      user::slot_opened{"o2", 3, 1700000060000, 1700000000000},
      user::slot_closed{"o2"}};
  user::state s;
  s.user_id = "alice";
  return history_seeds(s, events, user::apply, user::encode, user::encode_snapshot);
}

std::vector<std::string> product_seeds() {
  namespace product = domain::product;
  const product::event e = product::created{"Widget", 250, 1700000000000};
  product::state s;
  s.product_id = "p1";
  std::vector<std::string> out{product::encode(e), product::encode_snapshot(s)};
  product::apply(s, e);
  out.push_back(product::encode_snapshot(s));
  return out;
}

std::vector<std::string> inventory_seeds() {
  namespace inventory = domain::inventory;
  std::vector<inventory::event> events{
      inventory::stock_added{"r1", 10}, inventory::reserved{"o1", 2}, inventory::committed{"o1"},
      inventory::returned{"o1"},        inventory::reserved{"o2", 3}, inventory::released{"o2"}};
  inventory::state s;
  s.product_id = "p1";
  return history_seeds(s, events, inventory::apply, inventory::encode, inventory::encode_snapshot);
}

std::vector<std::string> order_seeds() {
  namespace order = domain::order;
  std::vector<order::event> events{
      order::placed{"alice", {{"p1", 2, 250}, {"p2", 1, 999}}, 1499, 1700000000000},
      order::reserved{1700000000100, 1700000900000},
      order::payment_started{1700000000200},
      order::debited{1700000000300},
      order::paid{1700000000400},
      order::cancel_started{"cancelled by client", 1700000000500},
      order::refunded{1700000000600},
      order::cancelled{1700000000700},
      order::reservation_failed{"insufficient stock", 1},
      order::payment_refused{"insufficient funds", 2},
      order::rejected{3}};
  order::state s;
  s.order_id = "o1";
  return history_seeds(s, events, order::apply, order::encode, order::encode_snapshot);
}

/// session_token_fuzz: an expiry (8 bytes, host order) and a user id, and a real token.
std::vector<std::string> session_token_seeds() {
  const int64_t expires_ms = 1800000000000;
  std::string minted_input(sizeof expires_ms, '\0');
  std::memcpy(minted_input.data(), &expires_ms, sizeof expires_ms);
  const ordermesh::node::session_tokens tokens("seed-admin-token");
  return {minted_input + "alice", tokens.mint("alice", expires_ms)};
}

std::vector<std::string> protocol_seeds() {
  return {
      R"({"id":1,"op":"user.register","args":{"user_id":"alice","password":"s3cret","name":"Alice"}})",
      R"({"id":2,"op":"user.login","args":{"user_id":"alice","password":"s3cret"}})",
      R"({"id":"r3","op":"user.deposit","token":"t","args":{"user_id":"alice","amount_cents":1000,"request_id":"dep-1"}})",
      R"({"id":4,"op":"product.create","token":"t","args":{"product_id":"p1","name":"Widget","price_cents":250}})",
      R"({"id":5,"op":"inventory.add","token":"t","args":{"product_id":"p1","quantity":10,"request_id":"r1"}})",
      R"({"id":6,"op":"order.place","token":"t","args":{"order_id":"o1","user_id":"alice","items":[{"product_id":"p1","quantity":2}]}})",
      R"({"id":7,"op":"order.pay","token":"t","args":{"order_id":"o1"}})",
      R"({"id":8,"op":"order.list","token":"t","args":{"user_id":"alice"}})",
      R"({"id":9,"op":"admin.crash","token":"t","args":{"entity":"order/o1"}})",
      R"({"id":10,"op":"cluster.force-primary","token":"t","args":{"node_id":"n2","shard":3}})",
      R"({"id":11,"op":"admin.backup","token":"t","args":{"dir":"/tmp/b"}})",
      R"({"id":13,"op":"cluster.remove-member","token":"t","args":{"node_id":"n4"}})",
      R"({"id":12,"op":"cluster.status"})"};
}

std::vector<std::string> persistence_seeds() {
  // persistence_meta_fuzz: byte 0 splits a replica record into name and value.
  const persistence::replica_state r{42, 3, 4};
  const std::string value = persistence::detail::encode_replica(r);
  const std::string record = std::string(1, static_cast<char>(2)) + "17" + value;
  const persistence::entity_key k{17, 3, "o-123"};
  return {record, persistence::keys::wakeup(k)};
}

std::vector<std::string> coordination_seeds() {
  const codec::key_layout keys("c1");
  coordination::member_record m;
  m.node_id = "n1";
  m.cluster_address = "127.0.0.1:7500";
  m.client_address = "127.0.0.1:7400";
  coordination::cluster_config c;
  c.cluster_id = "3f2a";
  c.shard_count = 64;
  c.replication_factor = 3;
  c.min_insync = 2;
  coordination::shard_assignment s;
  s.shard = 5;
  s.epoch = 7;
  s.primary = "n1";
  s.replicas = {"n1", "n2", "n3"};
  s.isr = {"n1", "n2"};
  s.isr_disks = {11, 12};
  return {codec::encode_member(m), codec::encode_controller({"n1", 9}),
          codec::encode_config(c), codec::encode_shard(s),
          keys.member("n1"),       keys.shard(5)};
}

/// An etcd range answer over one cluster's prefix: every key of a bootstrapped 2-shard cluster.
std::vector<std::string> state_seeds() {
  using ordermesh::etcd::base64_encode;
  const codec::key_layout keys("c1");
  coordination::cluster_config c;
  c.cluster_id = "3f2a";
  c.shard_count = 2;
  coordination::member_record m;
  m.node_id = "n1";
  m.cluster_address = "127.0.0.1:7500";
  std::vector<std::pair<std::string, std::string>> kvs{
      {keys.config(), codec::encode_config(c)},
      {keys.member("n1"), codec::encode_member(m)},
      {keys.controller(), codec::encode_controller({"n1", 3})}};
  for (uint16_t shard = 0; shard < 2; ++shard) {
    coordination::shard_assignment s;
    s.shard = shard;
    s.epoch = 1;
    s.primary = "n1";
    s.replicas = {"n1"};
    s.isr = {"n1"};
    kvs.emplace_back(keys.shard(shard), codec::encode_shard(s));
  }
  std::string body = R"({"header":{"revision":"12"},"kvs":[)";
  for (size_t i = 0; i < kvs.size(); ++i) {
    body += (i == 0 ? "" : ",") + std::string(R"({"key":")") + base64_encode(kvs[i].first) +
            R"(","value":")" + base64_encode(kvs[i].second) +
            R"(","create_revision":"3","mod_revision":")" + std::to_string(4 + i) + R"("})";
  }
  return {body + R"(],"count":")" + std::to_string(kvs.size()) + R"("})"};
}

std::vector<std::string> etcd_seeds() {
  using ordermesh::etcd::base64_encode;
  const std::string kv = R"({"key":")" + base64_encode("/ordermesh/c1/members/n1") +
                         R"(","value":")" + base64_encode(R"({"node_id":"n1"})") +
                         R"(","create_revision":"3","mod_revision":"4","version":"2","lease":"7"})";
  return {
      R"({"header":{"cluster_id":"1","member_id":"2","revision":"9","raft_term":"2"},"kvs":[)" +
          kv + R"(],"count":"1"})",
      R"({"header":{"revision":"3"},"succeeded":true,"responses":[{"response_range":{"header":{"revision":"3"},"kvs":[)" +
          kv + R"(],"count":"1"}},{"response_put":{"header":{"revision":"3"}}}]})",
      R"({"header":{"revision":"4"},"ID":"411112","TTL":"5"})",
      R"({"result":{"header":{"revision":"4"},"ID":"1234","TTL":"5"}})",
      R"({"header":{},"ID":"1234","TTL":"4","grantedTTL":"5","keys":["YQ=="]})",
      R"({"result":{"header":{"revision":"7"},"events":[{"type":"DELETE","kv":)" + kv + "}]}}",
      R"({"result":{"header":{"revision":"4"},"created":true}})",
      R"({"result":{"header":{"revision":"9"},"canceled":true,"compact_revision":"3"}})",
      R"({"error":{"grpc_code":14,"http_code":503,"message":"no leader","http_status":"Service Unavailable"}})",
      R"({"error":"etcdserver: mvcc: required revision has been compacted","code":11})",
      base64_encode("/ordermesh/c1/shards/00005")};
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: fuzz_seed_corpus DIR (writes DIR/<target>/seed-N)\n";
    return 2;
  }
  const std::string dir = argv[1];
  const bool ok = write_seeds(dir, "user_codec_fuzz", user_seeds()) &&
                  write_seeds(dir, "product_codec_fuzz", product_seeds()) &&
                  write_seeds(dir, "inventory_codec_fuzz", inventory_seeds()) &&
                  write_seeds(dir, "order_codec_fuzz", order_seeds()) &&
                  write_seeds(dir, "protocol_request_fuzz", protocol_seeds()) &&
                  write_seeds(dir, "session_token_fuzz", session_token_seeds()) &&
                  write_seeds(dir, "persistence_meta_fuzz", persistence_seeds()) &&
                  write_seeds(dir, "coordination_codec_fuzz", coordination_seeds()) &&
                  write_seeds(dir, "coordination_state_fuzz", state_seeds()) &&
                  write_seeds(dir, "etcd_response_fuzz", etcd_seeds());
  if (!ok) {
    std::cerr << "fuzz_seed_corpus: cannot write under " << dir << "\n";
    return 1;
  }
  return 0;
}
