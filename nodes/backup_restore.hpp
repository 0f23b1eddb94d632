#pragma once
// orderd --restore-from BACKUP: turns a backup (admin.backup's directory) into a node's data dir
// before the node starts on it (docs/OPERATIONS.md, "Backup and restore"). No actors, no
// sockets: it runs before anything else, and the node then starts normally on the copy.
#include <cstdint>
#include <string>

namespace ordermesh::node {

struct restore_request {
  std::string backup_dir;  // --restore-from
  std::string data_dir;    // --data-dir: must be empty or absent
  std::string node_id;     // --node-id: must be the backup's
  uint16_t shard_count = 0;
};

/// Checks the backup's manifest (format, node id, shard count, every listed file present with its
/// size) and the data dir (empty or absent), copies the checkpoint into <data_dir>/db.restoring,
/// gives the copy a new disk identity (it is another disk: in a replicated cluster an in-sync
/// entry naming the old one must not vouch for it) and renames it to <data_dir>/db, syncing
/// each step. Refusals change nothing (apart from creating an absent data dir); a failure
/// part-way removes what it copied. On success *note says what was restored; on failure it says
/// why.
bool restore_backup(const restore_request& r, std::string* note);

}  // namespace ordermesh::node
