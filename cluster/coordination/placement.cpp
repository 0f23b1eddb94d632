#include "cluster/coordination/placement.hpp"

#include <algorithm>
#include <map>
#include <set>

namespace ordermesh::cluster::coordination {

std::vector<planned_move> plan_moves(const cluster_state& state, size_t max_moves) {
  std::vector<planned_move> plan;
  std::set<std::string> alive, staying;
  for (const auto& m : state.members) {
    alive.insert(m.node_id);
    if (!m.leaving)
      staying.insert(m.node_id);
  }
  if (staying.empty())
    return plan;

  size_t pending = 0;
  std::map<std::string, size_t> load;  // staying members only
  for (const auto& id : staying)
    load[id] = 0;
  std::map<std::string, std::vector<uint16_t>> movable;  // by primary, ascending shard
  for (const auto& s : state.shards) {
    if (!s.target.empty()) {
      ++pending;
      if (load.count(s.target))
        ++load[s.target];
      continue;
    }
    if (load.count(s.primary))
      ++load[s.primary];
    if (alive.count(s.primary))
      movable[s.primary].push_back(s.shard);
  }
  if (pending >= max_moves)
    return plan;
  size_t budget = max_moves - pending;

  auto least_loaded = [&] {
    return std::min_element(load.begin(), load.end(),
                            [](const auto& a, const auto& b) {
                              return a.second < b.second ||
                                     (a.second == b.second && a.first < b.first);
                            })
        ->first;
  };
  auto take = [&](const std::string& from, const std::string& to) {
    auto& shards = movable[from];
    plan.push_back({shards.back(), from, to});
    shards.pop_back();
    ++load[to];
    if (load.count(from))
      --load[from];
    --budget;
  };

  // Leaving members first: nothing of theirs may stay.
  for (const auto& m : state.members) {
    if (!m.leaving)
      continue;
    while (budget > 0 && !movable[m.node_id].empty())
      take(m.node_id, least_loaded());
  }
  // Then balance the members that stay.
  while (budget > 0) {
    std::string from;
    size_t most = 0;
    for (const auto& [id, n] : load) {
      if (!movable[id].empty() && (n > most || (n == most && !from.empty() && id < from))) {
        from = id;
        most = n;
      }
    }
    if (from.empty())
      break;
    auto to = least_loaded();
    if (most <= load[to] + 1)
      break;
    take(from, to);
  }
  return plan;
}

shard_assignment with_target(const cluster_state& state, const planned_move& move) {
  auto a = state.shards.at(move.shard);
  a.target = move.to;
  return a;
}

}  // namespace ordermesh::cluster::coordination
