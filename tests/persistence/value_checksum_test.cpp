// Every stored event and snapshot value carries a CRC32C (persistence/value_format.hpp): a bit
// flipped on disk is reported as corruption naming the record wherever the value is read (load,
// read_events, export) and refused wherever it would be written elsewhere (import, apply), while
// every other entity still loads. Also: the CRC32C itself, and the 0.2.0 format migration.
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <rocksdb/db.h>
#include <catch2/catch.hpp>

#include "persistence/crc32c.hpp"
#include "persistence/keys.hpp"
#include "persistence/value_format.hpp"
#include "test_support.hpp"

using namespace ordermesh::persistence;
using namespace ordermesh::persistence::test;
using ordermesh::persistence::detail::crc32c;
using ordermesh::persistence::detail::crc32c_portable;

namespace {

/// The database under `path`, opened directly (the engine closed): what a disk fault can change.
std::unique_ptr<rocksdb::DB> open_raw(const std::string& path) {
  rocksdb::Options o;
  o.create_if_missing = true;
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(o, path, &raw);
  INFO(s.ToString());
  REQUIRE(s.ok());
  return std::unique_ptr<rocksdb::DB>(raw);
}

/// Flips one bit of the value stored under `key`.
void flip_bit(const std::string& path, const std::string& key, size_t bit) {
  auto db = open_raw(path);
  std::string value;
  REQUIRE(db->Get(rocksdb::ReadOptions(), key, &value).ok());
  REQUIRE(bit / 8 < value.size());
  value[bit / 8] = static_cast<char>(value[bit / 8] ^ (1 << (bit % 8)));
  REQUIRE(db->Put(rocksdb::WriteOptions(), key, value).ok());
}

std::string raw_get(const std::string& path, const std::string& key) {
  auto db = open_raw(path);
  std::string value;
  REQUIRE(db->Get(rocksdb::ReadOptions(), key, &value).ok());
  return value;
}

/// Writes events e1..e3 and a snapshot at 3 for `key`.
void write_entity(storage_engine& engine, const entity_key& key) {
  write_request r = events_request(key, 1, {key.id + "-e1", key.id + "-e2", key.id + "-e3"});
  r.snapshot = key.id + "-snap";
  REQUIRE(write_sync(engine, r).is_ok());
  REQUIRE(write_sync(engine, events_request(key, 4, {key.id + "-e4"})).is_ok());
}

}  // namespace

TEST_CASE("crc32c matches the published check values", "[persistence][crc32c]") {
  CHECK(crc32c("123456789") == 0xE3069283u);
  CHECK(crc32c_portable("123456789") == 0xE3069283u);
  CHECK(crc32c("") == 0u);
  // RFC 3720 (iSCSI) appendix B.4.
  CHECK(crc32c(std::string(32, '\0')) == 0x8A9136AAu);
  CHECK(crc32c(std::string(32, '\xFF')) == 0x62A8AB43u);
  std::string ascending;
  for (int i = 0; i < 32; ++i) {
    ascending.push_back(static_cast<char>(i));
  }
  CHECK(crc32c(ascending) == 0x46DD794Eu);
  CHECK(crc32c_portable(ascending) == 0x46DD794Eu);
}

TEST_CASE("crc32c hardware and table versions agree and continue across calls",
          "[persistence][crc32c]") {
  std::mt19937 rng(13);
  for (size_t size = 0; size < 200; ++size) {
    std::string data(size, '\0');
    for (char& c : data) {
      c = static_cast<char>(rng() & 0xFF);
    }
    INFO("size " << size);
    CHECK(crc32c(data) == crc32c_portable(data));
    const size_t half = size / 3;
    CHECK(crc32c(std::string_view(data).substr(half),
                 crc32c(std::string_view(data).substr(0, half))) == crc32c(data));
  }
}

TEST_CASE("sealed values catch every single bit flip and a value under another key",
          "[persistence][value_format]") {
  const std::string key = keys::event({3, 1, "u-1"}, 7);
  const std::string sealed = value_format::seal(key, "payload bytes");
  std::string_view payload;
  REQUIRE(value_format::unseal(key, sealed, payload).is_ok());
  CHECK(payload == "payload bytes");
  for (size_t bit = 0; bit < sealed.size() * 8; ++bit) {
    std::string damaged = sealed;
    damaged[bit / 8] = static_cast<char>(damaged[bit / 8] ^ (1 << (bit % 8)));
    const status st = value_format::unseal(key, damaged, payload);
    INFO("bit " << bit);
    CHECK(st.kind() == status::code::corruption);
    CHECK(st.message().find("kind 1 id u-1 event 7 (shard 3): checksum mismatch") == 0);
  }
  CHECK(value_format::unseal(keys::event({3, 1, "u-1"}, 8), sealed, payload).kind() ==
        status::code::corruption);
  CHECK(value_format::unseal(key, "abc", payload).kind() == status::code::corruption);
  // Wakeup entries and meta records are not sealed.
  CHECK(value_format::check(keys::wakeup({3, 1, "u-1"}), "anything").is_ok());
  CHECK(value_format::check(keys::meta("node_id"), "n1").is_ok());
}

TEST_CASE("a flipped bit in a stored event is corruption for that entity alone",
          "[persistence][value_format]") {
  temp_dir dir;
  const entity_key damaged{5, 1, "victim"};
  const entity_key neighbour{5, 1, "victim2"};
  {
    auto engine = open_engine(options_for(dir));
    write_entity(*engine, damaged);
    write_entity(*engine, neighbour);
  }
  flip_bit(dir.db_path(), keys::event(damaged, 4), 3);
  auto engine = open_engine(options_for(dir));
  recovered_entity rec;
  status st = engine->load(damaged, rec);
  CHECK(st.kind() == status::code::corruption);
  CHECK(st.message().find("kind 1 id victim event 4 (shard 5): checksum mismatch") == 0);
  CHECK(rec.events.empty());
  std::vector<stored_event> events;
  CHECK(engine->read_events(damaged, 1, 100, events).kind() == status::code::corruption);
  CHECK(events.empty());

  REQUIRE(engine->load(neighbour, rec).is_ok());
  CHECK(rec.snapshot == "victim2-snap");
  REQUIRE(rec.events.size() == 1);
  CHECK(rec.events[0].bytes == "victim2-e4");
  CHECK(rec.last_seq == 4);

  // An export of the shard (handoff, replica re-seed) stops at the damaged value.
  shard_chunk chunk;
  st = engine->export_shard(5, {}, 1u << 20, chunk);
  CHECK(st.kind() == status::code::corruption);
  CHECK(st.message().find("id victim event 4") != std::string::npos);
  CHECK(chunk.records.empty());
}

TEST_CASE("a flipped bit in a stored snapshot is corruption on load",
          "[persistence][value_format]") {
  temp_dir dir;
  const entity_key key{9, 2, "p-1"};
  {
    auto engine = open_engine(options_for(dir));
    write_entity(*engine, key);
  }
  flip_bit(dir.db_path(), keys::snapshot(key, 3), 0);
  auto engine = open_engine(options_for(dir));
  recovered_entity rec;
  const status st = engine->load(key, rec);
  CHECK(st.kind() == status::code::corruption);
  CHECK(st.message().find("kind 2 id p-1 snapshot 3 (shard 9)") == 0);
}

TEST_CASE("import and apply refuse a damaged value and write nothing",
          "[persistence][value_format]") {
  temp_dir src_dir;
  temp_dir dst_dir;
  const entity_key key{7, 1, "a"};
  {
    auto src = open_engine(options_for(src_dir));
    write_entity(*src, key);
  }
  const std::string good = raw_get(src_dir.db_path(), keys::event(key, 1));
  std::string bad = good;
  bad[0] = static_cast<char>(bad[0] ^ 0x10);
  auto dst = open_engine(options_for(dst_dir));

  bool ran = false;
  status why;
  CHECK_FALSE(dst->submit_import(
      7, {{keys::event(key, 1), bad}}, [&ran](const status&) { ran = true; }, &why));
  CHECK_FALSE(ran);
  CHECK(why.kind() == status::code::corruption);
  CHECK(why.message().find("import into shard 7: kind 1 id a event 1 (shard 7)") == 0);

  shard_delta d{7, 1, 1, 0, {}};
  d.records.push_back(replica_record{replica_record::op::put, keys::event(key, 1), bad});
  why = dst->apply_replicated(d);
  CHECK(why.kind() == status::code::corruption);
  CHECK(why.message().find("delta for shard 7 at position 1: kind 1 id a event 1") == 0);
  CHECK(dst->replica_position(7) == 0);
  recovered_entity rec;
  REQUIRE(dst->load(key, rec).is_ok());
  CHECK(rec.last_seq == 0);

  // The same record undamaged applies, byte for byte as the primary stored it.
  d.records[0].value = good;
  REQUIRE(dst->apply_replicated(d).is_ok());
  REQUIRE(dst->load(key, rec).is_ok());
  REQUIRE(rec.events.size() == 1);
  CHECK(rec.events[0].bytes == "a-e1");
}

TEST_CASE("a new data dir records its value format", "[persistence][value_format]") {
  temp_dir dir;
  { open_engine(options_for(dir)); }
  CHECK(raw_get(dir.db_path(), keys::meta(value_format::meta_name)) == value_format::current);
}

TEST_CASE("a data dir of an unknown value format is refused", "[persistence][value_format]") {
  temp_dir dir;
  {
    auto db = open_raw(dir.db_path());
    REQUIRE(db->Put(rocksdb::WriteOptions(), keys::meta(value_format::meta_name), "crc32c-9").ok());
  }
  status st;
  CHECK(storage_engine::open(options_for(dir), &st) == nullptr);
  CHECK(st.kind() == status::code::invalid);
  CHECK(st.message().find("value format 'crc32c-9'") == 0);
}

TEST_CASE("a 0.2.0 data dir is migrated once at open", "[persistence][value_format]") {
  temp_dir dir;
  const entity_key a{1, 1, "a"};
  const entity_key b{2, 4, "b"};
  {
    // The 0.2.0 layout: the same keys, values without a checksum, no format record.
    auto db = open_raw(dir.db_path());
    rocksdb::WriteOptions wo;
    REQUIRE(db->Put(wo, keys::event(a, 1), "a-e1").ok());
    REQUIRE(db->Put(wo, keys::event(a, 2), "a-e2").ok());
    REQUIRE(db->Put(wo, keys::snapshot(a, 2), "a-snap").ok());
    REQUIRE(db->Put(wo, keys::event(b, 1), "").ok());  // an empty payload migrates too
    REQUIRE(db->Put(wo, keys::wakeup(b), std::string(8, '\0')).ok());
    REQUIRE(db->Put(wo, keys::meta("node_id"), "n1").ok());
  }
  for (int open = 0; open < 2; ++open) {  // the second open must not seal anything twice
    auto engine = open_engine(options_for(dir));
    recovered_entity rec;
    REQUIRE(engine->load(a, rec).is_ok());
    CHECK(rec.snapshot == "a-snap");
    CHECK(rec.last_seq == 2);
    std::vector<stored_event> events;
    REQUIRE(engine->read_events(a, 1, 10, events).is_ok());
    REQUIRE(events.size() == 2);
    CHECK(events[0].bytes == "a-e1");
    REQUIRE(engine->load(b, rec).is_ok());
    REQUIRE(rec.events.size() == 1);
    CHECK(rec.events[0].bytes.empty());
    int wakeups = 0;
    REQUIRE(engine->scan_wakeups([&wakeups](const wakeup_entry&) { ++wakeups; }).is_ok());
    CHECK(wakeups == 1);
    std::string node;
    REQUIRE(engine->get_meta("node_id", &node).is_ok());
    CHECK(node == "n1");
  }
  CHECK(raw_get(dir.db_path(), keys::meta(value_format::meta_name)) == value_format::current);
}

TEST_CASE("a migration cut short resumes after the last key it sealed",
          "[persistence][value_format]") {
  temp_dir dir;
  const entity_key a{1, 1, "a"};
  {
    // As a crash after the first migration batch leaves it: the first value sealed and recorded
    // as done, the second not yet.
    auto db = open_raw(dir.db_path());
    rocksdb::WriteOptions wo;
    REQUIRE(db->Put(wo, keys::event(a, 1), value_format::seal(keys::event(a, 1), "a-e1")).ok());
    REQUIRE(db->Put(wo, keys::event(a, 2), "a-e2").ok());
    REQUIRE(db->Put(wo, keys::meta("value_format_migration"), keys::event(a, 1)).ok());
  }
  auto engine = open_engine(options_for(dir));
  recovered_entity rec;
  REQUIRE(engine->load(a, rec).is_ok());
  REQUIRE(rec.events.size() == 2);
  CHECK(rec.events[0].bytes == "a-e1");
  CHECK(rec.events[1].bytes == "a-e2");
}
