#include "nodes/online_backup.hpp"

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>

#include <spdlog/logger.h>
#include <sys/stat.h>

#include "cluster/coordination/local_seed.hpp"
#include "nodes/backup_manifest.hpp"
#include "nodes/backup_target.hpp"
#include "nodes/version.hpp"
#include "persistence/storage_engine.hpp"

namespace ordermesh::node {

using domain::errc;

online_backup::online_backup(persistence::storage_engine& storage, std::string allowed_root,
                             std::string node_id, uint16_t shard_count,
                             std::shared_ptr<spdlog::logger> log)
    : storage_(storage),
      allowed_root_(std::move(allowed_root)),
      node_id_(std::move(node_id)),
      shard_count_(shard_count),
      log_(std::move(log)) {}

backup_outcome online_backup::run(const std::string& dir) {
  if (running_.exchange(true)) {
    backup_outcome busy;
    busy.error = {errc::overloaded, backup_busy};
    return busy;
  }
  backup_outcome out = take(dir);
  running_ = false;
  if (out.error.code != errc::none)
    log_->warn("node={} admin.backup into '{}' refused: {} {}", node_id_, dir,
               domain::to_string(out.error.code), out.error.message);
  return out;
}

backup_outcome online_backup::take(const std::string& dir) {
  backup_outcome out;
  out.error = check_backup_target(allowed_root_, dir);
  if (out.error.code != errc::none)
    return out;
  // mkdir is the one atomic step that claims the name: two requests for it cannot both win.
  if (::mkdir(dir.c_str(), 0700) != 0) {
    out.error =
        errno == EEXIST
            ? domain::failure{errc::conflict,
                              "dir exists already: a backup never overwrites anything"}
            : domain::failure{errc::internal, "cannot create " + dir + ": " + std::strerror(errno)};
    return out;
  }
  auto undo = [&dir] {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);  // only what this call created: dir was new
  };
  persistence::checkpoint_info info;
  const auto started = std::chrono::system_clock::now();
  if (auto st = storage_.checkpoint(dir + "/" + backup_db_dir, &info); !st.is_ok()) {
    undo();
    out.error = {errc::internal, "checkpoint failed: " + st.to_string()};
    log_->error("node={} backup into {} failed: {}", node_id_, dir, st.to_string());
    return out;
  }
  backup_manifest m;
  m.node_id = node_id_;
  std::string cluster_id;
  if (storage_.get_meta(cluster::coordination::cluster_id_meta, &cluster_id).is_ok())
    m.cluster_id = cluster_id;
  m.shard_count = shard_count_;
  m.created_at_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(started.time_since_epoch()).count();
  m.orderd_version = node_version();
  m.sequence = info.sequence;
  m.shards = std::move(info.owned_shards);
  m.files = std::move(info.files);
  std::string why;
  if (!write_manifest(dir, m, &why)) {
    undo();
    out.error = {errc::internal, "backup manifest: " + why};
    log_->error("node={} backup into {} failed: {}", node_id_, dir, why);
    return out;
  }
  out.manifest = to_json(m);
  out.manifest.erase("files");  // the reply stays small; backup.json lists them
  out.manifest["file_count"] = m.files.size();
  out.manifest["dir"] = dir;
  log_->info("node={} backup made in {}: sequence {}, {} shards owned, {} files", node_id_, dir,
             m.sequence, m.shards.size(), m.files.size());
  return out;
}

}  // namespace ordermesh::node
