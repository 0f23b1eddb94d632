// Online backup: storage_engine::checkpoint, on a real RocksDB in a temp dir. The checkpoint is
// opened as an engine of its own and must hold exactly what was acknowledged before it.
#include <atomic>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>

#include "persistence/storage_engine.hpp"
#include "tests/persistence/test_support.hpp"

using namespace ordermesh::persistence;
using namespace ordermesh::persistence::test;

namespace {

/// Where a test's checkpoint goes: inside its temp dir, so it is removed with it.
std::string backup_path(const temp_dir& dir) {
  return dir.db_path() + "-backup";
}

uint64_t events_on_disk(const storage_engine& engine, const entity_key& k) {
  recovered_entity r;
  REQUIRE(engine.load(k, r).is_ok());
  return r.last_seq;
}

}  // namespace

TEST_CASE("checkpoint holds acknowledged events meta and ownership and nothing later",
          "[persistence][checkpoint]") {
  temp_dir dir;
  auto engine = open_engine(checked_options(dir));
  REQUIRE(engine->own_shard(3, 7).is_ok());
  REQUIRE(engine->own_shard(9, 2).is_ok());
  REQUIRE(engine->release_shard(9).is_ok());
  const entity_key k{3, 1, "alice"};
  REQUIRE(
      write_sync(*engine, at_epoch(events_request(k, 1, {"registered", "deposited"}), 7)).is_ok());
  REQUIRE(engine->put_meta("node_id", "n1").is_ok());

  checkpoint_info info;
  REQUIRE(engine->checkpoint(backup_path(dir), &info).is_ok());
  CHECK(info.sequence > 0);
  CHECK(info.owned_shards == std::vector<std::pair<uint16_t, uint64_t>>{{3, 7}});
  bool has_current = false;
  for (const auto& [name, bytes] : info.files) {
    CHECK(std::filesystem::file_size(backup_path(dir) + "/" + name) == bytes);
    has_current = has_current || name == "CURRENT";
  }
  CHECK(has_current);

  // Written after the checkpoint: must not be in it.
  REQUIRE(write_sync(*engine, at_epoch(events_request(k, 3, {"paid"}), 7)).is_ok());
  REQUIRE(engine->put_meta("later", "x").is_ok());
  CHECK(events_on_disk(*engine, k) == 3);

  storage_options copy = checked_options(dir);
  copy.path = backup_path(dir);
  auto restored = open_engine(copy);
  recovered_entity r;
  REQUIRE(restored->load(k, r).is_ok());
  REQUIRE(r.events.size() == 2);
  CHECK(r.events[0].bytes == "registered");
  CHECK(r.events[1].bytes == "deposited");
  std::string value;
  REQUIRE(restored->get_meta("node_id", &value).is_ok());
  CHECK(value == "n1");
  CHECK(restored->get_meta("later", &value).kind() == status::code::not_found);
  CHECK(restored->owned_epoch(3) == 7);
  CHECK(restored->owned_epoch(9) == 0);
  // Ownership never goes back in the copy either: shard 9 was released at epoch 2.
  CHECK_FALSE(restored->own_shard(9, 1).is_ok());
  // Writes under the recorded epoch go on in the copy.
  CHECK(write_sync(*restored, at_epoch(events_request(k, 3, {"paid-in-copy"}), 7)).is_ok());
}

TEST_CASE("checkpoint refuses an existing directory and leaves it as it was",
          "[persistence][checkpoint]") {
  temp_dir dir;
  auto engine = open_engine(options_for(dir));
  REQUIRE(write_sync(*engine, events_request({1, 1, "bob"}, 1, {"e1"})).is_ok());
  const std::string target = backup_path(dir);
  std::filesystem::create_directory(target);
  std::ofstream(target + "/keep.txt") << "precious";

  checkpoint_info info;
  const status st = engine->checkpoint(target, &info);
  CHECK(st.kind() == status::code::invalid);
  CHECK(info.files.empty());
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(target))
    names.push_back(e.path().filename().string());
  CHECK(names == std::vector<std::string>{"keep.txt"});
  std::ifstream in(target + "/keep.txt");
  std::string text;
  in >> text;
  CHECK(text == "precious");
  // A parent that does not exist is an error too, and creates nothing.
  CHECK_FALSE(engine->checkpoint(target + "-missing/deeper/db", &info).is_ok());
  CHECK_FALSE(std::filesystem::exists(target + "-missing"));
}

TEST_CASE("checkpoint under load holds every write acknowledged before it started",
          "[persistence][checkpoint]") {
  temp_dir dir;
  auto engine = open_engine(options_for(dir));
  constexpr uint64_t writes = 3000;  // bounded: the load stops by itself
  // acked[i]: write i's callback ran (it was synced).
  std::vector<std::atomic<bool>> acked(writes);
  std::atomic<uint64_t> acks{0};
  std::atomic<uint64_t> refused{0};
  std::thread load([&] {
    for (uint64_t i = 0; i < writes; ++i) {
      // At most 8 writes in flight: many small batches, so that some commit while the
      // checkpoint is taken (a full queue would go in one or two batches).
      while (i >= acks.load() + refused.load() + 8)
        std::this_thread::yield();
      entity_key k{static_cast<uint16_t>(i % 16), 1, "u" + std::to_string(i)};
      status why;
      while (!engine->submit(
          events_request(k, 1, {"e"}),
          [&acked, &acks, i](const status& s) {
            acked[i] = s.is_ok();
            ++acks;
          },
          &why)) {
        if (why.kind() != status::code::overloaded) {
          ++refused;  // a failed engine: the checks below then find the writes missing
          break;
        }
        std::this_thread::yield();  // queue full: the writer frees room as it commits
      }
    }
  });
  // Start the checkpoint once part of the load is acknowledged, so that writes run before,
  // during and after it (bounded: every write is answered or refused).
  while (acks.load() + refused.load() < writes / 3)
    std::this_thread::yield();
  std::vector<bool> before(writes);
  for (uint64_t i = 0; i < writes; ++i)
    before[i] = acked[i].load();
  checkpoint_info info;
  const status st = engine->checkpoint(backup_path(dir), &info);
  load.join();
  REQUIRE(st.is_ok());

  storage_options copy = options_for(dir);
  copy.path = backup_path(dir);
  auto restored = open_engine(copy);
  uint64_t acked_before = 0;
  for (uint64_t i = 0; i < writes; ++i) {
    if (!before[i])
      continue;
    ++acked_before;
    entity_key k{static_cast<uint16_t>(i % 16), 1, "u" + std::to_string(i)};
    INFO("write " << i << " was acknowledged before the checkpoint");
    CHECK(events_on_disk(*restored, k) == 1);
  }
  CHECK(acked_before >= writes / 3);  // the test checked something
  CHECK(acked_before < writes);       // and the load went on after the checkpoint started
}
