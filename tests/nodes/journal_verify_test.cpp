// Tests for nodes/journal_verify (ordermesh-journal verify): entities written through the real
// storage engine (temp dir), then damaged through RocksDB directly while the engine is closed.
#include <catch2/catch.hpp>

#include <filesystem>
#include <memory>
#include <string>

#include <rocksdb/db.h>

#include "nodes/journal_verify.hpp"
#include "persistence/keys.hpp"
#include "persistence/storage_engine.hpp"
#include "persistence/value_format.hpp"
#include "tests/persistence/test_support.hpp"

namespace {

namespace fs = std::filesystem;
namespace persistence = ordermesh::persistence;
namespace keys = ordermesh::persistence::keys;
namespace ptest = ordermesh::persistence::test;
using ordermesh::node::journal_verify_options;
using ordermesh::node::journal_verify_report;
using ordermesh::node::verify_journal;

/// Two users with three events each, one of them with a snapshot at 2.
void write_two_users(const ptest::temp_dir& dir) {
  auto engine = ptest::open_engine(ptest::options_for(dir));
  for (const char* id : {"alice", "bob"}) {
    persistence::write_request r = ptest::events_request({4, 1, id}, 1, {"e1", "e2"});
    if (std::string(id) == "bob") {
      r.snapshot = "snap";
    }
    REQUIRE(ptest::write_sync(*engine, r).is_ok());
    REQUIRE(ptest::write_sync(*engine, ptest::events_request({4, 1, id}, 3, {"e3"})).is_ok());
  }
}

std::unique_ptr<rocksdb::DB> open_raw(const ptest::temp_dir& dir) {
  rocksdb::DB* raw = nullptr;
  rocksdb::Options o;
  o.create_if_missing = true;
  REQUIRE(rocksdb::DB::Open(o, dir.db_path(), &raw).ok());
  return std::unique_ptr<rocksdb::DB>(raw);
}

journal_verify_report verify(const ptest::temp_dir& dir) {
  journal_verify_options opts;
  opts.data_dir = fs::path(dir.db_path()).parent_path().string();
  journal_verify_report report;
  std::string error;
  INFO(error);
  REQUIRE(verify_journal(opts, &report, &error));
  return report;
}

/// Why verify refuses the data dir (it must refuse it).
std::string refusal(const ptest::temp_dir& dir) {
  journal_verify_options opts;
  opts.data_dir = fs::path(dir.db_path()).parent_path().string();
  journal_verify_report report;
  std::string error;
  CHECK_FALSE(verify_journal(opts, &report, &error));
  return error;
}

}  // namespace

TEST_CASE("journal verify: a clean data dir has no damage", "[journal_verify]") {
  ptest::temp_dir dir;
  write_two_users(dir);
  const journal_verify_report report = verify(dir);
  CHECK(report.entities == 2);
  CHECK(report.events == 6);
  CHECK(report.snapshots == 1);
  CHECK(report.damaged_count == 0);
  CHECK(report.damaged.empty());
}

TEST_CASE("journal verify: a flipped bit names its entity and seq", "[journal_verify]") {
  ptest::temp_dir dir;
  write_two_users(dir);
  {
    auto db = open_raw(dir);
    const std::string key = keys::event({4, 1, "bob"}, 3);
    std::string value;
    REQUIRE(db->Get(rocksdb::ReadOptions(), key, &value).ok());
    value[0] = static_cast<char>(value[0] ^ 0x40);
    REQUIRE(db->Put(rocksdb::WriteOptions(), key, value).ok());
  }
  const journal_verify_report report = verify(dir);
  REQUIRE(report.damaged_count == 1);
  REQUIRE(report.damaged.size() == 1);
  const auto& d = report.damaged[0];
  CHECK(d.kind == "user");
  CHECK(d.id == "bob");
  CHECK(d.shard == 4);
  CHECK(d.seq == 3);
  CHECK(d.what.find("event kind 1 id bob event 3 (shard 4): checksum mismatch") == 0);
  CHECK(ordermesh::node::describe(d).find("damaged: shard=4 kind=user id=bob seq=3 problems=1: ") ==
        0);
}

TEST_CASE("journal verify: a missing event is a journal gap", "[journal_verify]") {
  ptest::temp_dir dir;
  write_two_users(dir);
  {
    auto db = open_raw(dir);
    REQUIRE(db->Delete(rocksdb::WriteOptions(), keys::event({4, 1, "alice"}, 2)).ok());
  }
  const journal_verify_report report = verify(dir);
  REQUIRE(report.damaged.size() == 1);
  CHECK(report.damaged[0].id == "alice");
  CHECK(report.damaged[0].seq == 3);
  CHECK(report.damaged[0].what == "journal gap: expected seq 2, found 3");
}

TEST_CASE("journal verify: a 0.2.0 data dir is refused, not reported as all damaged",
          "[journal_verify]") {
  ptest::temp_dir dir;
  {
    auto db = open_raw(dir);  // the 0.2.0 layout: no format record, values without checksums
    REQUIRE(db->Put(rocksdb::WriteOptions(), keys::event({4, 1, "alice"}, 1), "e1").ok());
  }
  CHECK(refusal(dir).find("holds values without checksums") != std::string::npos);
}

TEST_CASE("journal verify: a data dir that cannot be opened is an error", "[journal_verify]") {
  ptest::temp_dir dir;
  CHECK(refusal(dir).find("cannot open") != std::string::npos);
  CHECK_FALSE(fs::exists(dir.db_path()));
}
