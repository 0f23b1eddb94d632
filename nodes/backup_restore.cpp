#include "nodes/backup_restore.hpp"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <system_error>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "nodes/backup_manifest.hpp"
#include "nodes/node_meta.hpp"
#include "persistence/storage_engine.hpp"

namespace ordermesh::node {

namespace fs = std::filesystem;

namespace {

bool fsync_path(const std::string& path, int flags) {
  const int fd = ::open(path.c_str(), flags | O_CLOEXEC);
  if (fd < 0)
    return false;
  const bool ok = ::fsync(fd) == 0;
  ::close(fd);
  return ok;
}

/// The data dir exists and is empty (created 0700 if it was absent). False with *why otherwise.
bool empty_data_dir(const std::string& dir, std::string* why) {
  if (::mkdir(dir.c_str(), 0700) == 0)
    return true;
  if (errno != EEXIST) {
    *why = "cannot create --data-dir " + dir + ": " + std::strerror(errno);
    return false;
  }
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    *why = "--data-dir " + dir + " is not a directory";
    return false;
  }
  if (!fs::is_empty(dir, ec) || ec) {
    *why = "--data-dir " + dir +
           " is not empty: a restore goes only into an empty or new directory (it never "
           "overwrites a node's data)";
    return false;
  }
  return true;
}

/// Every file the manifest lists is in <backup>/db with its size.
bool complete(const std::string& db, const backup_manifest& m, std::string* why) {
  for (const auto& [name, bytes] : m.files) {
    std::error_code ec;
    const fs::path file = fs::path(db) / name;
    if (!fs::is_regular_file(file, ec) || fs::file_size(file, ec) != bytes || ec) {
      *why = "the backup is incomplete or damaged: " + file.string() + " is missing or not " +
             std::to_string(bytes) + " bytes";
      return false;
    }
  }
  return true;
}

bool copy_files(const std::string& from, const std::string& to, const backup_manifest& m,
                std::string* why) {
  std::error_code ec;
  fs::create_directory(to, ec);
  if (ec) {
    *why = "cannot create " + to + ": " + ec.message();
    return false;
  }
  for (const auto& entry : m.files) {
    const fs::path src = fs::path(from) / entry.first;
    const fs::path dst = fs::path(to) / entry.first;
    if (!fs::copy_file(src, dst, fs::copy_options::none, ec) || ec) {
      *why = "cannot copy " + src.string() + ": " + ec.message();
      return false;
    }
    if (!fsync_path(dst.string(), O_RDONLY)) {
      *why = "cannot sync " + dst.string() + ": " + std::strerror(errno);
      return false;
    }
  }
  return fsync_path(to, O_RDONLY | O_DIRECTORY);
}

/// Opens the copy once as a store to give it its own disk identity.
bool new_disk(const std::string& db, std::string* why) {
  persistence::storage_options o;
  o.path = db;
  persistence::status st;
  auto storage = persistence::storage_engine::open(o, &st);
  if (!storage) {
    *why = "the restored copy does not open: " + st.to_string();
    return false;
  }
  return renew_disk_identity(*storage, why);
}

}  // namespace

bool restore_backup(const restore_request& r, std::string* note) {
  backup_manifest m;
  if (!read_manifest(r.backup_dir, m, note))
    return false;
  if (m.node_id != r.node_id) {
    *note = "the backup in " + r.backup_dir + " is of node " + m.node_id + ", not --node-id " +
            r.node_id + " (restore it under the node id it was taken of)";
    return false;
  }
  if (m.shard_count != r.shard_count) {
    *note = "the backup in " + r.backup_dir + " has " + std::to_string(m.shard_count) +
            " shards, not --shards " + std::to_string(r.shard_count);
    return false;
  }
  const std::string source = r.backup_dir + "/" + backup_db_dir;
  if (!complete(source, m, note) || !empty_data_dir(r.data_dir, note))
    return false;
  const std::string staging = r.data_dir + "/db.restoring";
  const std::string target = r.data_dir + "/db";
  auto fail_cleanly = [&staging] {
    std::error_code ec;
    fs::remove_all(staging, ec);  // the data dir was empty: this is only what we copied
    return false;
  };
  if (!copy_files(source, staging, m, note) || !new_disk(staging, note))
    return fail_cleanly();
  // The rename makes the restore all or nothing: <data-dir>/db exists only complete.
  if (::rename(staging.c_str(), target.c_str()) != 0) {
    *note = "cannot rename " + staging + ": " + std::strerror(errno);
    return fail_cleanly();
  }
  if (!fsync_path(r.data_dir, O_RDONLY | O_DIRECTORY)) {
    *note = "cannot sync " + r.data_dir + ": " + std::strerror(errno);
    return false;
  }
  *note = "restored backup " + r.backup_dir + " (node " + m.node_id + ", cluster '" + m.cluster_id +
          "', sequence " + std::to_string(m.sequence) + ", " + std::to_string(m.shards.size()) +
          " shards owned, taken at " + std::to_string(m.created_at_ms) + " ms) into " + target +
          " with a new disk identity";
  return true;
}

}  // namespace ordermesh::node
