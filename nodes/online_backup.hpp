#pragma once
// admin.backup's work, without actors: check the target (backup_target.hpp), create it, take the
// storage engine's checkpoint into <dir>/db and write the manifest (backup_manifest.hpp) beside
// it. Blocking (a memtable flush, a copy of the write-ahead log): run it off the actor pool.
#include <atomic>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "domain/errors.hpp"

namespace spdlog {
class logger;
}

namespace ordermesh::persistence {
class storage_engine;
}

namespace ordermesh::node {

/// The refusal of a backup asked for while another one runs (code overloaded).
inline constexpr const char* backup_busy =
    "a backup of this node is being made; retry when it is done";

struct backup_outcome {
  domain::failure error;    // code none: the backup is complete and synced
  nlohmann::json manifest;  // what backup.json holds (on success), plus "dir"
};

class online_backup {
 public:
  /// `allowed_root` is --backup-dir (empty: every backup is refused, forbidden).
  online_backup(persistence::storage_engine& storage, std::string allowed_root, std::string node_id,
                uint16_t shard_count, std::shared_ptr<spdlog::logger> log);

  /// Makes one backup in `dir`. One at a time per node: a second call while one runs is
  /// answered overloaded (retry later) at once. Every refusal leaves the file system as it was;
  /// a failure after `dir` was created removes what was made of it.
  backup_outcome run(const std::string& dir);
  /// Whether a backup is being made now.
  bool running() const { return running_.load(); }

 private:
  backup_outcome take(const std::string& dir);

  persistence::storage_engine& storage_;
  std::string allowed_root_;
  std::string node_id_;
  uint16_t shard_count_;
  std::shared_ptr<spdlog::logger> log_;
  std::atomic<bool> running_{false};
};

}  // namespace ordermesh::node
