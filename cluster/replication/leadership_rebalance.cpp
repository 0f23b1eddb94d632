// When leadership may move only to balance it (leadership_rebalance.hpp).
#include "cluster/replication/leadership_rebalance.hpp"

#include <algorithm>

namespace ordermesh::cluster::replication {

bool is_settled(const ::ordermesh::cluster::coordination::cluster_state& state,
                const std::set<std::string>& suspected) {
  if (!suspected.empty())
    return false;
  return std::all_of(state.shards.begin(), state.shards.end(), [](const auto& a) {
    return a.isr.size() == a.replicas.size() &&
           std::all_of(a.replicas.begin(), a.replicas.end(), [&a](const std::string& r) {
             return std::find(a.isr.begin(), a.isr.end(), r) != a.isr.end();
           });
  });
}

bool is_leadership_rebalance(const replica_step& step,
                             const ::ordermesh::cluster::coordination::shard_assignment& current,
                             const std::vector<std::string>& desired) {
  return step.what == replica_step_kind::move_primary &&
         std::find(desired.begin(), desired.end(), current.primary) != desired.end();
}

}  // namespace ordermesh::cluster::replication
