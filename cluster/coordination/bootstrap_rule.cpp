// When the controller creates the shard map (bootstrap_rule.hpp).
#include "cluster/coordination/bootstrap_rule.hpp"

#include <algorithm>

namespace ordermesh::cluster::coordination {

bool should_create_map(size_t members, uint16_t replication_factor, uint16_t min_insync,
                       std::chrono::milliseconds waited, std::chrono::milliseconds grace) {
  if (members == 0)
    return false;
  auto factor = std::max<uint16_t>(replication_factor, 1);
  if (members >= factor)
    return true;
  // Below the factor: a single-copy cluster has no in-sync minimum beyond itself.
  auto needed = factor > 1 ? std::max<uint16_t>(min_insync, 1) : uint16_t{1};
  return grace.count() > 0 && members >= needed && waited >= grace;
}

}  // namespace ordermesh::cluster::coordination
