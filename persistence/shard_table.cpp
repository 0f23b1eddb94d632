#include "persistence/shard_table.hpp"

#include <string>

namespace ordermesh::persistence::detail {

status shard_table::check_epoch(const write_request& req) const {
  const uint16_t shard = req.key.shard;
  const uint64_t epoch = owned(shard);
  if (epoch == req.shard_epoch && epoch != 0) {
    return status::ok();
  }
  if (epoch == 0) {
    return status::invalid("shard " + std::to_string(shard) +
                           " is not owned by this node (write has epoch " +
                           std::to_string(req.shard_epoch) + ")");
  }
  return status::invalid("stale shard epoch: shard " + std::to_string(shard) +
                         " is owned at epoch " + std::to_string(epoch) + ", write has " +
                         std::to_string(req.shard_epoch));
}

status shard_table::check_not_owned(uint16_t shard, const char* what) const {
  const uint64_t epoch = owned(shard);
  if (epoch == 0) {
    return status::ok();
  }
  return status::invalid(std::string(what) + " refused: shard " + std::to_string(shard) +
                         " is owned by this node at epoch " + std::to_string(epoch) +
                         " (release it first)");
}

}  // namespace ordermesh::persistence::detail
