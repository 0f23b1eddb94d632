// Tests for nodes/journal_dump: entities written through the real storage engine (temp dir), then
// dumped read-only: entries, contiguous seqs, ownership records and the replayed states.
#include <catch2/catch.hpp>

#include <filesystem>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "domain/inventory.hpp"
#include "domain/order.hpp"
#include "domain/user.hpp"
#include "nodes/journal_dump.hpp"
#include "nodes/protocol.hpp"
#include "persistence/storage_engine.hpp"
#include "tests/persistence/test_support.hpp"

namespace {

namespace fs = std::filesystem;
namespace domain = ordermesh::domain;
namespace persistence = ordermesh::persistence;
namespace ptest = ordermesh::persistence::test;
using nlohmann::json;
using ordermesh::node::dump_journal;
using ordermesh::node::journal_dump_options;

constexpr uint8_t user_kind = static_cast<uint8_t>(domain::entity_kind::user);
constexpr uint8_t inventory_kind = static_cast<uint8_t>(domain::entity_kind::inventory);
constexpr uint8_t order_kind = static_cast<uint8_t>(domain::entity_kind::order);

/// The node's data dir: the parent of the engine's database directory.
std::string data_dir_of(const ptest::temp_dir& dir) {
  return fs::path(dir.db_path()).parent_path().string();
}

json dump_ok(const ptest::temp_dir& dir, const std::string& node = "n1") {
  journal_dump_options opts;
  opts.data_dir = data_dir_of(dir);
  opts.node_id = node;
  json out;
  std::string error;
  INFO(error);
  REQUIRE(dump_journal(opts, &out, &error));
  return out;
}

/// Every file of the data dir with its size and modification time.
std::map<std::string, std::pair<uintmax_t, fs::file_time_type>> listing(const std::string& dir) {
  std::map<std::string, std::pair<uintmax_t, fs::file_time_type>> out;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (e.is_regular_file()) {
      out[e.path().string()] = {e.file_size(), e.last_write_time()};
    }
  }
  return out;
}

const json* find_replayed(const json& dump, const std::string& kind, const std::string& id) {
  for (const auto& r : dump["replayed"]) {
    if (r["kind"] == kind && r["id"] == id) {
      return &r;
    }
  }
  return nullptr;
}

/// The entries of one entity: (seq, snapshot?) in dump order.
std::vector<std::pair<uint64_t, bool>> seqs_of(const json& dump, const std::string& kind,
                                               const std::string& id) {
  std::vector<std::pair<uint64_t, bool>> out;
  for (const auto& e : dump["entries"]) {
    if (e["kind"] == kind && e["id"] == id) {
      out.emplace_back(e["seq"].get<uint64_t>(), e.value("snapshot", false));
    }
  }
  return out;
}

/// A shop of three entities: user u1 (3 events, a snapshot at seq 2) and order o1 (2 events) on
/// shard 3, owned at epoch 2; inventory p1 (2 events) on shard 5, released at epoch 1 (data left
/// behind by a handoff). Returns the states the writes lead to, rendered as the protocol does.
struct shop {
  json user;
  json order;
  json inventory;
};

shop write_shop(persistence::storage_engine& engine) {
  shop expected;
  REQUIRE(engine.put_meta("node_id", "n1").is_ok());
  REQUIRE(engine.own_shard(3, 2).is_ok());
  REQUIRE(engine.own_shard(5, 1).is_ok());

  namespace u = domain::user;
  u::state us;
  us.user_id = "u1";
  std::vector<u::event> uevents = {u::registered{"Alice", "hash", 1000}, u::deposited{"r1", 500},
                                   u::deposited{"r2", 250}};
  std::vector<std::string> ubytes;
  for (auto& e : uevents) {
    ubytes.push_back(u::encode(e));
  }
  u::apply(us, uevents[0]);
  u::apply(us, uevents[1]);
  auto first = ptest::events_request({3, user_kind, "u1"}, 1, {ubytes[0], ubytes[1]});
  first.snapshot = u::encode_snapshot(us);
  REQUIRE(ptest::write_sync(engine, std::move(first)).is_ok());
  u::apply(us, uevents[2]);
  REQUIRE(ptest::write_sync(engine, ptest::events_request({3, user_kind, "u1"}, 3, {ubytes[2]}))
              .is_ok());
  expected.user = ordermesh::protocol::to_json(u::view(us));

  namespace o = domain::order;
  o::state os;
  os.order_id = "o1";
  std::vector<o::event> oevents = {o::placed{"u1", {{"p1", 2, 100}}, 200, 2000},
                                   o::reserved{2100, 22100}};
  std::vector<std::string> obytes;
  for (auto& e : oevents) {
    obytes.push_back(o::encode(e));
    o::apply(os, e);
  }
  auto order_write = ptest::events_request({3, order_kind, "o1"}, 1, obytes);
  order_write.wakeup_due_ms = 22100;
  REQUIRE(ptest::write_sync(engine, std::move(order_write)).is_ok());
  expected.order = ordermesh::protocol::to_json(o::view(os));

  namespace i = domain::inventory;
  i::state is;
  is.product_id = "p1";
  std::vector<i::event> ievents = {i::stock_added{"a1", 4}, i::reserved{"o1", 2}};
  std::vector<std::string> ibytes;
  for (auto& e : ievents) {
    ibytes.push_back(i::encode(e));
    i::apply(is, e);
  }
  REQUIRE(ptest::write_sync(engine, ptest::events_request({5, inventory_kind, "p1"}, 1, ibytes))
              .is_ok());
  expected.inventory = ordermesh::protocol::to_json(i::view(is));
  REQUIRE(engine.release_shard(5).is_ok());
  return expected;
}

}  // namespace

TEST_CASE("journal dump: entries, ownership and replayed states of a closed node",
          "[journal_dump]") {
  ptest::temp_dir dir;
  shop expected;
  {
    auto engine = ptest::open_engine(ptest::options_for(dir));
    expected = write_shop(*engine);
  }
  const auto before = listing(data_dir_of(dir));
  const json dump = dump_ok(dir);
  CHECK(listing(data_dir_of(dir)) == before);  // read-only: not one file changed

  CHECK(dump["version"] == 1);
  CHECK(dump["node"] == "n1");
  CHECK(dump["errors"].empty());
  CHECK(dump["stats"]["events"] == 7);
  CHECK(dump["stats"]["snapshots"] == 1);
  CHECK(dump["stats"]["entities"] == 3);
  CHECK(dump["stats"]["wakeups"] == 1);
  REQUIRE(dump["entries"].size() == 8);

  SECTION("entries: every event once, seqs contiguous from 1, the snapshot flagged") {
    using seqs = std::vector<std::pair<uint64_t, bool>>;
    CHECK(seqs_of(dump, "user", "u1") == seqs{{1, false}, {2, false}, {3, false}, {2, true}});
    CHECK(seqs_of(dump, "order", "o1") == seqs{{1, false}, {2, false}});
    CHECK(seqs_of(dump, "inventory", "p1") == seqs{{1, false}, {2, false}});
    for (const auto& e : dump["entries"]) {
      CHECK(e["node"] == "n1");
      CHECK(e["shard"] == (e["kind"] == "inventory" ? 5 : 3));
      REQUIRE(e["digest"].is_string());
      CHECK(e["digest"].get<std::string>().size() == 16);
    }
    // the digest is that of the stored bytes: two different events never share one here
    CHECK(dump["entries"][0]["digest"] != dump["entries"][1]["digest"]);
    const json* placed = nullptr;
    for (const auto& e : dump["entries"]) {
      if (e["kind"] == "order" && e["seq"] == 1) {
        placed = &e;
      }
    }
    REQUIRE(placed != nullptr);
    CHECK((*placed)["digest"] == ordermesh::node::journal_digest(domain::order::encode(
                                     domain::order::placed{"u1", {{"p1", 2, 100}}, 200, 2000})));
  }

  SECTION("ownership: one record per shard, owned or released, with its epoch") {
    CHECK(dump["owned"]["n1"]["3"] == json({{"epoch", 2}, {"owned", true}}));
    CHECK(dump["owned"]["n1"]["5"] == json({{"epoch", 1}, {"owned", false}}));
    CHECK(dump["shard_epochs"]["n1"]["3"] == json::array({2}));
    CHECK(dump["shard_epochs"]["n1"]["5"] == json::array({1}));
    CHECK(dump["unowned_data"]["n1"] == json::array({5}));
  }

  SECTION("replayed: snapshot + later events, rendered as the protocol's reads") {
    const json* user = find_replayed(dump, "user", "u1");
    REQUIRE(user != nullptr);
    CHECK((*user)["state"] == expected.user);
    CHECK((*user)["state"]["balance_cents"] == 750);
    CHECK((*user)["seq"] == 3);
    CHECK((*user)["snapshot_seq"] == 2);
    CHECK((*user)["snapshot_consistent"] == true);
    CHECK((*user)["owned"] == true);

    const json* order = find_replayed(dump, "order", "o1");
    REQUIRE(order != nullptr);
    CHECK((*order)["state"] == expected.order);
    CHECK((*order)["state"]["status"] == "RESERVED");
    CHECK((*order)["state"]["expires_at"] == 22100);
    CHECK_FALSE(order->contains("snapshot_consistent"));  // no snapshot to compare

    const json* inventory = find_replayed(dump, "inventory", "p1");
    REQUIRE(inventory != nullptr);
    CHECK((*inventory)["state"] == expected.inventory);
    CHECK((*inventory)["state"] ==
          json({{"product_id", "p1"}, {"available", 2}, {"reserved", 2}, {"sold", 0}}));
    CHECK((*inventory)["owned"] == false);  // shard 5 was released: data left behind
  }
}

TEST_CASE("journal dump: data left after delete_shard is gone, the record stays",
          "[journal_dump]") {
  ptest::temp_dir dir;
  {
    auto engine = ptest::open_engine(ptest::options_for(dir));
    write_shop(*engine);
    REQUIRE(engine->delete_shard(5).is_ok());
  }
  const json dump = dump_ok(dir);
  CHECK(find_replayed(dump, "inventory", "p1") == nullptr);
  CHECK(dump["owned"]["n1"]["5"] == json({{"epoch", 1}, {"owned", false}}));
  CHECK(dump["unowned_data"]["n1"].empty());
  CHECK(dump["stats"]["entities"] == 2);
}

TEST_CASE("journal dump: an event that does not decode is reported, not replayed",
          "[journal_dump]") {
  ptest::temp_dir dir;
  {
    auto engine = ptest::open_engine(ptest::options_for(dir));
    REQUIRE(ptest::write_sync(*engine, ptest::events_request({7, user_kind, "u9"}, 1, {"garbage"}))
                .is_ok());
  }
  const json dump = dump_ok(dir);
  REQUIRE(dump["errors"].size() == 1);
  CHECK(dump["errors"][0].get<std::string>().find("user/u9") != std::string::npos);
  const json* user = find_replayed(dump, "user", "u9");
  REQUIRE(user != nullptr);
  CHECK(user->contains("error"));
  CHECK_FALSE(user->contains("state"));
  CHECK(dump["entries"].size() == 1);  // the record itself is still listed
}

TEST_CASE("journal dump: refuses what it cannot read", "[journal_dump]") {
  ptest::temp_dir dir;
  journal_dump_options opts;
  opts.node_id = "n1";
  json out;
  std::string error;

  SECTION("a data dir without a database: nothing is created") {
    opts.data_dir = data_dir_of(dir);
    CHECK_FALSE(dump_journal(opts, &out, &error));
    CHECK(error.find("cannot open") != std::string::npos);
    CHECK_FALSE(fs::exists(dir.db_path()));
  }
  SECTION("another node's data dir") {
    {
      auto engine = ptest::open_engine(ptest::options_for(dir));
      REQUIRE(engine->put_meta("node_id", "n2").is_ok());
    }
    opts.data_dir = data_dir_of(dir);
    CHECK_FALSE(dump_journal(opts, &out, &error));
    CHECK(error.find("belongs to node 'n2'") != std::string::npos);
  }
  SECTION("more records than allowed") {
    {
      auto engine = ptest::open_engine(ptest::options_for(dir));
      write_shop(*engine);
    }
    opts.data_dir = data_dir_of(dir);
    opts.max_records = 3;
    CHECK_FALSE(dump_journal(opts, &out, &error));
    CHECK(error.find("more than 3") != std::string::npos);
  }
  SECTION("the database directory itself is accepted as the data dir") {
    {
      auto engine = ptest::open_engine(ptest::options_for(dir));
      write_shop(*engine);
    }
    opts.data_dir = dir.db_path();
    REQUIRE(dump_journal(opts, &out, &error));
    CHECK(out["entries"].size() == 8);
  }
}
