#pragma once
// The manifest next to a backup's data (<backup>/backup.json): what the backup is of, so that a
// restore can refuse the wrong node or a damaged copy before touching a data dir.
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace ordermesh::node {

/// Name of the manifest file and of the RocksDB checkpoint directory inside a backup.
inline constexpr const char* manifest_file = "backup.json";
inline constexpr const char* backup_db_dir = "db";
/// Bumped when the layout of a backup changes; a restore refuses formats it does not know.
inline constexpr int manifest_format = 1;
/// At most this many files in a backup's db directory (a checkpoint of a node holds tens):
/// bounds what a restore reads from a manifest it did not write itself.
inline constexpr size_t max_backup_files = 100000;

struct backup_manifest {
  int format = manifest_format;
  std::string node_id;
  std::string cluster_id;  // empty: the node had not joined a cluster yet
  uint16_t shard_count = 0;
  int64_t created_at_ms = 0;   // wall clock when the checkpoint was taken
  std::string orderd_version;  // the orderd that wrote it
  uint64_t sequence = 0;       // RocksDB sequence number contained in the backup
  std::vector<std::pair<uint16_t, uint64_t>> shards;    // (shard, epoch) owned in the backup
  std::vector<std::pair<std::string, uint64_t>> files;  // (name, bytes) in <backup>/db
};

nlohmann::json to_json(const backup_manifest& m);

/// Parses and checks a manifest (types, bounds, format, file names without '/'). False with
/// *why when it is not one this orderd can restore. Never throws.
bool from_json(const nlohmann::json& j, backup_manifest& out, std::string* why);

/// Writes `m` to <dir>/backup.json durably: a temporary file, fsync, rename, fsync of `dir`.
bool write_manifest(const std::string& dir, const backup_manifest& m, std::string* why);

/// Reads and checks <dir>/backup.json (at most 16 MiB).
bool read_manifest(const std::string& dir, backup_manifest& out, std::string* why);

}  // namespace ordermesh::node
