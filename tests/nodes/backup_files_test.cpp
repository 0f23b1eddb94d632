// The file rules of backup and restore, on a real temp dir: where admin.backup may write
// (nodes/backup_target) and what a restore accepts as a manifest (nodes/backup_manifest).
#include <cstdlib>
#include <filesystem>
#include <string>

#include <catch2/catch.hpp>

#include "nodes/backup_manifest.hpp"
#include "nodes/backup_target.hpp"

using namespace ordermesh::node;
using ordermesh::domain::errc;
namespace fs = std::filesystem;

namespace {

struct scratch {
  scratch() {
    std::string pattern = "/tmp/ordermesh-backup-files-XXXXXX";
    REQUIRE(::mkdtemp(pattern.data()) != nullptr);
    dir = pattern;
    fs::create_directory(dir + "/backups");
    fs::create_directory(dir + "/elsewhere");
  }
  ~scratch() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
  std::string root() const { return dir + "/backups"; }
  std::string dir;
};

errc code_for(const std::string& root, const std::string& requested) {
  return check_backup_target(root, requested).code;
}

backup_manifest sample() {
  backup_manifest m;
  m.node_id = "n1";
  m.cluster_id = "0123456789abcdef";
  m.shard_count = 64;
  m.created_at_ms = 1700000000000;
  m.orderd_version = "0.1.0";
  m.sequence = 42;
  m.shards = {{0, 1}, {63, 3}};
  m.files = {{"000009.sst", 1234}, {"CURRENT", 16}};
  return m;
}

}  // namespace

TEST_CASE("backup target accepts a new directory below the backup dir and creates nothing",
          "[nodes][backup]") {
  scratch s;
  CHECK(code_for(s.root(), s.root() + "/b1") == errc::none);
  fs::create_directory(s.root() + "/daily");
  CHECK(code_for(s.root(), s.root() + "/daily/b2") == errc::none);
  CHECK_FALSE(fs::exists(s.root() + "/b1"));
  CHECK_FALSE(fs::exists(s.root() + "/daily/b2"));
}

TEST_CASE("backup target refuses every path outside the rule with its code", "[nodes][backup]") {
  scratch s;
  CHECK(code_for("", s.root() + "/b1") == errc::forbidden);  // no --backup-dir: off
  CHECK(code_for(s.root(), "relative/b1") == errc::bad_request);
  CHECK(code_for(s.root(), "") == errc::bad_request);
  CHECK(code_for(s.root(), s.root() + "/../elsewhere/b1") == errc::bad_request);
  CHECK(code_for(s.root(), s.root() + "/./b1") == errc::bad_request);
  CHECK(code_for(s.root(), s.root() + "//b1") == errc::bad_request);
  CHECK(code_for(s.root(), s.root() + "/b1/") == errc::bad_request);
  CHECK(code_for(s.root(), s.dir + "/elsewhere/b1") == errc::forbidden);
  CHECK(code_for(s.root(), s.root()) == errc::forbidden);  // the root itself exists and is not new
  CHECK(code_for(s.root(), s.root() + "x/b1") == errc::forbidden);  // a sibling sharing a prefix
  CHECK(code_for(s.root(), s.root() + "/no-such/b1") == errc::not_found);
  fs::create_directory(s.root() + "/taken");
  CHECK(code_for(s.root(), s.root() + "/taken") == errc::conflict);
  // A symbolic link below the backup dir must not lead out of it.
  fs::create_directory_symlink(s.dir + "/elsewhere", s.root() + "/escape");
  CHECK(code_for(s.root(), s.root() + "/escape/b1") == errc::forbidden);
  CHECK(fs::is_empty(s.dir + "/elsewhere"));
}

TEST_CASE("backup manifest round-trips through JSON", "[nodes][backup]") {
  const backup_manifest m = sample();
  backup_manifest back;
  std::string why;
  REQUIRE(from_json(to_json(m), back, &why));
  CHECK(back.node_id == m.node_id);
  CHECK(back.cluster_id == m.cluster_id);
  CHECK(back.shard_count == m.shard_count);
  CHECK(back.created_at_ms == m.created_at_ms);
  CHECK(back.sequence == m.sequence);
  CHECK(back.shards == m.shards);
  CHECK(back.files == m.files);
}

TEST_CASE("backup manifest refuses names that leave the backup and unknown formats",
          "[nodes][backup]") {
  std::string why;
  backup_manifest out;
  auto j = to_json(sample());
  j["files"][0]["name"] = "../../etc/passwd";
  CHECK_FALSE(from_json(j, out, &why));
  CHECK(why.find("plain file name") != std::string::npos);
  j = to_json(sample());
  j["format"] = 2;
  CHECK_FALSE(from_json(j, out, &why));
  j = to_json(sample());
  j["shards"][0]["shard"] = 64;  // outside shard_count
  CHECK_FALSE(from_json(j, out, &why));
  j = to_json(sample());
  j.erase("node_id");
  CHECK_FALSE(from_json(j, out, &why));
  CHECK_FALSE(from_json(nlohmann::json::array(), out, &why));
}

TEST_CASE("backup manifest is written durably and read back", "[nodes][backup]") {
  scratch s;
  std::string why;
  REQUIRE(write_manifest(s.root(), sample(), &why));
  CHECK_FALSE(fs::exists(s.root() + "/backup.json.tmp"));
  backup_manifest back;
  REQUIRE(read_manifest(s.root(), back, &why));
  CHECK(back.files == sample().files);
  CHECK_FALSE(read_manifest(s.dir + "/elsewhere", back, &why));
  CHECK(why.find("not a backup") != std::string::npos);
}
