// The simulated power cut (persistence/power_cut_fs): first the wrapper alone against the real
// local file system (what each call makes durable), then a real storage_engine over it in a temp
// dir: what was acknowledged survives a cut and a reopen, and the reopened engine is consistent.
#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include <rocksdb/file_system.h>

#include "persistence/power_cut_fs.hpp"
#include "tests/persistence/test_support.hpp"

namespace ordermesh::persistence::test {
namespace {

std::shared_ptr<power_cut_fs> wrapped_disk() {
  return std::make_shared<power_cut_fs>(rocksdb::FileSystem::Default());
}

std::string dir_of(const temp_dir& dir) {
  std::filesystem::create_directories(dir.db_path());
  return dir.db_path();
}

std::unique_ptr<rocksdb::FSWritableFile> new_file(rocksdb::FileSystem& fs, const std::string& p) {
  std::unique_ptr<rocksdb::FSWritableFile> f;
  REQUIRE(fs.NewWritableFile(p, rocksdb::FileOptions(), &f, nullptr).ok());
  return f;
}

void append(rocksdb::FSWritableFile& f, const std::string& bytes) {
  REQUIRE(f.Append(bytes, rocksdb::IOOptions(), nullptr).ok());
}

void sync_dir(rocksdb::FileSystem& fs, const std::string& dir) {
  std::unique_ptr<rocksdb::FSDirectory> d;
  REQUIRE(fs.NewDirectory(dir, rocksdb::IOOptions(), &d, nullptr).ok());
  REQUIRE(d->Fsync(rocksdb::IOOptions(), nullptr).ok());
}

/// A new file in the temp dir whose name is durable (its directory synced after it).
std::unique_ptr<rocksdb::FSWritableFile> durable_file(rocksdb::FileSystem& fs, const temp_dir& dir,
                                                      const std::string& name) {
  auto f = new_file(fs, dir_of(dir) + "/" + name);
  sync_dir(fs, dir.db_path());
  return f;
}

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

storage_options over(const temp_dir& dir, std::shared_ptr<power_cut_fs> fs) {
  storage_options o = checked_options(dir);
  o.file_system = std::move(fs);
  o.max_batch_writes = 8;  // many small batches, so that a cut lands between two of them
  return o;
}

/// Single-node mode: writes carry no shard epoch.
storage_options unchecked_over(const temp_dir& dir, std::shared_ptr<power_cut_fs> fs) {
  storage_options o = over(dir, std::move(fs));
  o.check_shard_epochs = false;
  return o;
}

entity_key key_of(int e) {
  return {static_cast<uint16_t>(e % 4), 1, "e" + std::to_string(e)};
}

}  // namespace

TEST_CASE("power cut fs: only synced bytes of a file survive", "[persistence][power_cut]") {
  temp_dir dir;
  auto fs = wrapped_disk();
  auto f = durable_file(*fs, dir, "journal");  // only the bytes are in question
  const std::string path = dir.db_path() + "/journal";
  append(*f, "synced");
  REQUIRE(f->Sync(rocksdb::IOOptions(), nullptr).ok());
  append(*f, "+flushed");
  REQUIRE(f->Flush(rocksdb::IOOptions(), nullptr).ok());
  // sync_file_range writes pages back but not the size: nothing more is durable.
  REQUIRE(f->RangeSync(0, 14, rocksdb::IOOptions(), nullptr).ok());
  CHECK(fs->unsynced_bytes() == 8);
  CHECK(read_all(path) == "synced+flushed");

  const power_cut_report report = fs->cut();
  CHECK(report.files_truncated == 1);
  CHECK(report.bytes_dropped == 8);
  CHECK(report.errors == 0);
  CHECK(read_all(path) == "synced");
  // Nothing reaches the disk after the cut, and no sync completes.
  CHECK_FALSE(f->Append("late", rocksdb::IOOptions(), nullptr).ok());
  CHECK_FALSE(f->Sync(rocksdb::IOOptions(), nullptr).ok());
  f.reset();  // the close after the cut does not grow the file back
  CHECK(read_all(path) == "synced");
}

TEST_CASE("power cut fs: a cut armed for the next write lands right after it",
          "[persistence][power_cut]") {
  temp_dir dir;
  auto fs = wrapped_disk();
  auto f = durable_file(*fs, dir, "journal");
  const std::string path = dir.db_path() + "/journal";
  append(*f, "synced");
  REQUIRE(f->Sync(rocksdb::IOOptions(), nullptr).ok());
  std::vector<power_cut_report> cuts;
  fs->cut_at_next_write([&cuts](const power_cut_report& r) { cuts.push_back(r); });
  CHECK_FALSE(fs->is_cut());  // armed only: syncs and metadata calls do not trigger it
  REQUIRE(f->Sync(rocksdb::IOOptions(), nullptr).ok());
  CHECK(cuts.empty());
  append(*f, "torn");  // lands in the page cache, then the power goes
  REQUIRE(cuts.size() == 1);
  CHECK(cuts[0].bytes_dropped == 4);
  CHECK(fs->is_cut());
  CHECK_FALSE(f->Sync(rocksdb::IOOptions(), nullptr).ok());
  CHECK(read_all(path) == "synced");
}

TEST_CASE("power cut fs: Fsync counts, Close does not", "[persistence][power_cut]") {
  temp_dir dir;
  auto fs = wrapped_disk();
  auto fa = durable_file(*fs, dir, "a");
  auto fb = durable_file(*fs, dir, "b");
  const std::string a = dir.db_path() + "/a";
  const std::string b = dir.db_path() + "/b";
  append(*fa, "fsynced");
  REQUIRE(fa->Fsync(rocksdb::IOOptions(), nullptr).ok());
  append(*fb, "closed");
  REQUIRE(fb->Close(rocksdb::IOOptions(), nullptr).ok());
  fs->cut();
  CHECK(read_all(a) == "fsynced");
  CHECK(std::filesystem::exists(b));
  CHECK(std::filesystem::file_size(b) == 0);
}

TEST_CASE("power cut fs: a new name needs its directory synced", "[persistence][power_cut]") {
  temp_dir dir;
  const std::string kept = dir_of(dir) + "/kept";
  const std::string lost = dir.db_path() + "/lost";
  auto fs = wrapped_disk();
  auto fk = new_file(*fs, kept);
  append(*fk, "k");
  REQUIRE(fk->Sync(rocksdb::IOOptions(), nullptr).ok());
  sync_dir(*fs, dir.db_path());
  // Synced, but created after the directory's last fsync: its name is not on the disk yet.
  auto fl = new_file(*fs, lost);
  append(*fl, "l");
  REQUIRE(fl->Sync(rocksdb::IOOptions(), nullptr).ok());

  const power_cut_report report = fs->cut();
  CHECK(report.files_removed == 1);
  CHECK(read_all(kept) == "k");
  CHECK_FALSE(std::filesystem::exists(lost));
}

TEST_CASE("power cut fs: a rename over a file is undone unless the directory was synced",
          "[persistence][power_cut]") {
  temp_dir dir;
  const std::string current = dir_of(dir) + "/CURRENT";
  const std::string tmp1 = dir.db_path() + "/1.dbtmp";
  const std::string tmp2 = dir.db_path() + "/2.dbtmp";
  auto fs = wrapped_disk();
  auto write_and_rename = [&](const std::string& tmp, const std::string& bytes) {
    auto f = new_file(*fs, tmp);
    append(*f, bytes);
    REQUIRE(f->Sync(rocksdb::IOOptions(), nullptr).ok());
    REQUIRE(f->Close(rocksdb::IOOptions(), nullptr).ok());
    REQUIRE(fs->RenameFile(tmp, current, rocksdb::IOOptions(), nullptr).ok());
  };
  write_and_rename(tmp1, "MANIFEST-1\n");
  sync_dir(*fs, dir.db_path());
  write_and_rename(tmp2, "MANIFEST-2\n");
  CHECK(read_all(current) == "MANIFEST-2\n");

  const power_cut_report report = fs->cut();
  CHECK(report.renames_undone == 1);
  CHECK(read_all(current) == "MANIFEST-1\n");
  CHECK_FALSE(std::filesystem::exists(tmp2));
  // Metadata changes after the cut are refused too.
  CHECK_FALSE(fs->RenameFile(current, tmp1, rocksdb::IOOptions(), nullptr).ok());
  CHECK_FALSE(fs->DeleteFile(current, rocksdb::IOOptions(), nullptr).ok());
}

TEST_CASE("power cut: writes made without sync are gone after the cut",
          "[persistence][power_cut]") {
  // The test that fails if the wrapper does nothing: with sync off the writes are acknowledged
  // from the page cache, which the cut drops. The engine still reopens cleanly.
  temp_dir dir;
  auto fs = wrapped_disk();
  storage_options o = unchecked_over(dir, fs);
  o.sync = false;
  {
    auto engine = open_engine(o);
    for (int e = 0; e < 8; ++e)
      REQUIRE(write_sync(*engine, events_request(key_of(e), 1, {"unsynced"})).is_ok());
    CHECK(fs->unsynced_bytes() > 0);
    const power_cut_report report = fs->cut();
    CHECK(report.bytes_dropped + report.files_removed > 0);
    CHECK(report.errors == 0);
  }
  o.file_system = nullptr;  // the next boot: the plain disk
  auto engine = open_engine(o);
  for (int e = 0; e < 8; ++e) {
    recovered_entity r;
    REQUIRE(engine->load(key_of(e), r).is_ok());
    CHECK(r.last_seq == 0);
  }
  // A new write after the reboot works as on any disk.
  CHECK(write_sync(*engine, events_request(key_of(0), 1, {"after"})).is_ok());
}

TEST_CASE("power cut: the write being made when the power goes is neither acknowledged nor kept",
          "[persistence][power_cut]") {
  temp_dir dir;
  auto fs = wrapped_disk();
  storage_options o = unchecked_over(dir, fs);
  std::vector<power_cut_report> cuts;
  {
    auto engine = open_engine(o);
    REQUIRE(write_sync(*engine, events_request(key_of(1), 1, {"kept"})).is_ok());
    fs->cut_at_next_write([&cuts](const power_cut_report& r) { cuts.push_back(r); });
    // Its log record reaches the page cache, then the power goes before the fsync.
    CHECK(write_sync(*engine, events_request(key_of(1), 2, {"torn"})).kind() ==
          status::code::io_error);
    REQUIRE(cuts.size() == 1);
    CHECK(cuts[0].bytes_dropped > 0);
    CHECK(cuts[0].errors == 0);
  }
  o.file_system = nullptr;
  auto engine = open_engine(o);
  recovered_entity r;
  REQUIRE(engine->load(key_of(1), r).is_ok());
  CHECK(r.last_seq == 1);
  REQUIRE(r.events.size() == 1);
  CHECK(r.events[0].bytes == "kept");
}

TEST_CASE("power cut: acknowledged writes survive a cut under load", "[persistence][power_cut]") {
  temp_dir dir;
  constexpr int entities = 24;
  constexpr int per_entity = 60;  // submitted back to back; the cut lands among them
  constexpr int rounds = 3;       // cut, reboot, write on: every round on the previous one's disk
  std::map<int, uint64_t> acked;  // entity -> highest seq acknowledged ok (every round)
  std::map<uint16_t, uint64_t> positions;  // shard -> replica position seen after acks
  for (int round = 0; round < rounds; ++round) {
    INFO("round " << round);
    auto fs = wrapped_disk();
    auto engine = open_engine(over(dir, fs));
    if (round == 0) {
      for (uint16_t shard = 0; shard < 4; ++shard)
        REQUIRE(engine->own_shard(shard, 7).is_ok());
    }
    // What the previous round acknowledged is all here, with the ownership and positions.
    for (uint16_t shard = 0; shard < 4; ++shard) {
      CHECK(engine->owned_epoch(shard) == 7);
      CHECK(engine->replica_position(shard) >= positions[shard]);
    }
    std::map<int, uint64_t> next_seq;
    for (int e = 0; e < entities; ++e) {
      recovered_entity r;
      REQUIRE(engine->load(key_of(e), r).is_ok());  // contiguous, or it says corruption
      CHECK(r.last_seq >= acked[e]);
      next_seq[e] = r.last_seq + 1;
    }
    std::mutex m;
    std::map<int, uint64_t> acked_now;
    ack_counter acks;
    writer_gate gate;  // holds the writer after the first quarter, so the rest is still queued
    size_t submitted = 0;
    for (int i = 0; i < per_entity; ++i) {
      if (i == per_entity / 4)
        REQUIRE(engine->submit(write_request{}, gate.blocking_callback()));  // a barrier
      for (int e = 0; e < entities; ++e) {
        const uint64_t seq = next_seq[e]++;
        write_request w =
            at_epoch(events_request(key_of(e), seq, {"r" + std::to_string(round)}), 7);
        auto counted = acks.callback();
        if (!engine->submit(std::move(w), [&m, &acked_now, counted, e, seq](const status& s) {
              if (s.is_ok()) {
                std::lock_guard<std::mutex> lock(m);
                acked_now[e] = std::max(acked_now[e], seq);
              }
              counted(s);
            }))
          break;
        ++submitted;
      }
    }
    gate.wait_until_writer_blocked();
    for (uint16_t shard = 0; shard < 4; ++shard)
      positions[shard] = std::max(positions[shard], engine->replica_position(shard));
    // The cut races the writer taking the rest in batches of 8: some of them are being synced.
    gate.open();
    const power_cut_report report = fs->cut();
    CHECK(report.errors == 0);
    {
      std::lock_guard<std::mutex> lock(m);
      for (const auto& [e, seq] : acked_now)
        acked[e] = std::max(acked[e], seq);
    }
    engine.reset();  // every queued write fails now: the disk is gone
    CHECK(acks.acks() == submitted);
    CHECK(acks.errors() > 0);
  }
  auto engine = open_engine(checked_options(dir));
  for (int e = 0; e < entities; ++e) {
    recovered_entity r;
    REQUIRE(engine->load(key_of(e), r).is_ok());
    CHECK(r.last_seq >= acked[e]);
  }
  for (uint16_t shard = 0; shard < 4; ++shard)
    CHECK(engine->replica_position(shard) >= positions[shard]);
}

}  // namespace ordermesh::persistence::test
