#include "cluster/replication/replica_balance.hpp"

#include <algorithm>
#include <map>
#include <utility>

#include "cluster/replication/failover.hpp"

namespace ordermesh::cluster::replication {

namespace {

bool contains(const std::vector<std::string>& v, const std::string& x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

/// Same members, whatever the order (lists never hold a node twice).
bool same_set(const std::vector<std::string>& x, const std::vector<std::string>& y) {
  return x.size() == y.size() &&
         std::all_of(x.begin(), x.end(), [&](const auto& e) { return contains(y, e); });
}

class planner {
 public:
  planner(const coord::cluster_state& state, std::vector<std::vector<std::string>>& desired)
      : state_(state), desired_(desired) {
    for (const auto& m : state.members)
      if (!m.leaving)
        eligible_.push_back(m.node_id);
    std::sort(eligible_.begin(), eligible_.end());
    for (const auto& m : eligible_)
      load_[m] = 0;
    for (const auto& d : desired_)
      for (const auto& r : d)
        if (load_.count(r))
          ++load_[r];
    for (uint16_t i = 0; i < state.shards.size(); ++i)
      healthy_.push_back(i < desired_.size() && is_healthy(i));
  }

  size_t members() const { return eligible_.size(); }

  /// A shard with more replicas than the factor (a move between its add and its drop) keeps
  /// the factor: the most loaded of its replicas that does not lead goes (a move never costs a
  /// primary move: the plan that added the newcomer moved a replica that does not lead); on a
  /// tie one already in the ISR (a new one being copied stays), then the smaller id. The plan
  /// is made again from scratch each round, so which one goes may differ from the plan that
  /// added the newcomer; any choice moves a replica off a member loaded at least as much.
  void trim(size_t rf) {
    for (size_t i = 0; i < desired_.size() && i < state_.shards.size(); ++i) {
      auto& d = desired_[i];
      const auto& a = state_.shards[i];
      while (d.size() > rf) {
        auto worse = [&](const std::string& x, const std::string& y) {  // x goes before y
          auto key = [&](const std::string& n) {
            return std::make_pair(load_[n], contains(a.isr, n));
          };
          auto kx = key(x), ky = key(y);
          return kx != ky ? kx > ky : x < y;
        };
        auto best = d.end();
        for (auto it = d.begin(); it != d.end(); ++it)
          if (load_.count(*it) && *it != a.primary && (best == d.end() || worse(*it, *best)))
            best = it;
        if (best == d.end())
          break;  // only the primary and dead members beyond the factor: they stay
        --load_[*best];
        d.erase(best);
      }
    }
  }

  /// Shards whose desired list differs from what etcd holds (replicas, or the first one from
  /// the primary).
  size_t in_motion() const {
    size_t n = 0;
    for (size_t i = 0; i < desired_.size() && i < state_.shards.size(); ++i)
      n += moving(i) ? 1 : 0;
    return n;
  }

  bool replicas_moving() const {
    for (size_t i = 0; i < desired_.size() && i < state_.shards.size(); ++i)
      if (!same_set(desired_[i], state_.shards[i].replicas))
        return true;
    return false;
  }

  /// One replica from the most to the least loaded member that differ by two or more.
  bool move_one_replica() {
    for (const auto& from : by(load_, true)) {
      for (const auto& to : by(load_, false)) {
        if (load_[from] < load_[to] + 2)
          break;  // the rest are loaded more
        // Only a replica that does not lead moves (no epoch + 1 for a replica move; a member
        // leads about a third of what it holds, and leadership balances afterwards).
        for (size_t i = 0; i < desired_.size() && i < state_.shards.size(); ++i) {
          auto& d = desired_[i];
          if (moving(i) || !healthy_[i] || !contains(d, from) || contains(d, to) ||
              d.front() == from)
            continue;
          d.erase(std::find(d.begin(), d.end(), from));
          d.push_back(to);
          --load_[from];
          ++load_[to];
          return true;
        }
      }
    }
    return false;
  }

  /// One shard's leadership from the member leading the most to an in-sync replica of it
  /// leading the fewest, where those differ by two or more.
  bool move_one_primary() {
    std::map<std::string, size_t> lead;
    for (const auto& m : eligible_)
      lead[m] = 0;
    for (const auto& d : desired_)
      if (!d.empty() && lead.count(d.front()))
        ++lead[d.front()];
    for (const auto& from : by(lead, true)) {
      for (const auto& to : by(lead, false)) {
        if (lead[from] < lead[to] + 2)
          break;
        const auto* target = member(to);
        if (target && target->draining)
          continue;  // it is handing its leadership off (replica_moves.cpp)
        for (size_t i = 0; i < desired_.size() && i < state_.shards.size(); ++i) {
          auto& d = desired_[i];
          if (moving(i) || !healthy_[i] || d.front() != from || !contains(d, to))
            continue;
          auto it = std::find(d.begin(), d.end(), to);
          std::rotate(d.begin(), it, it + 1);
          return true;
        }
      }
    }
    return false;
  }

 private:
  const coord::member_record* member(const std::string& id) const {
    for (const auto& m : state_.members)
      if (m.node_id == id)
        return &m;
    return nullptr;
  }

  /// Its primary alive on its disk, every replica a member that is not leaving and in the ISR
  /// on the disk its entry names: every step of a move can go ahead (none waits on a dead node,
  /// and none counts on a wiped disk's entry).
  bool is_healthy(uint16_t i) const {
    const auto& a = state_.shards[i];
    if (desired_[i].empty() || choose_failover(state_, i).outcome != failover_outcome::none ||
        !same_set(a.isr, a.replicas) || a.isr.size() != a.isr_disks.size())
      return false;
    for (size_t k = 0; k < a.isr.size(); ++k) {
      const auto* m = member(a.isr[k]);
      if (!m || m->leaving || m->disk != a.isr_disks[k])
        return false;
    }
    return true;
  }

  bool moving(size_t i) const {
    const auto& d = desired_[i];
    const auto& a = state_.shards[i];
    return d.empty() || !same_set(d, a.replicas) || d.front() != a.primary;
  }

  /// Members by count, most first (`most`) or fewest first; ties: the smaller id first.
  std::vector<std::string> by(const std::map<std::string, size_t>& count, bool most) const {
    std::vector<std::string> out = eligible_;
    std::stable_sort(out.begin(), out.end(), [&](const auto& x, const auto& y) {
      return most ? count.at(x) > count.at(y) : count.at(x) < count.at(y);
    });
    return out;
  }

  const coord::cluster_state& state_;
  std::vector<std::vector<std::string>>& desired_;
  std::vector<std::string> eligible_;   // members not leaving, by id
  std::map<std::string, size_t> load_;  // replicas each holds over every shard, as desired
  std::vector<bool> healthy_;           // index = shard
};

}  // namespace

void balance_replicas(const coord::cluster_state& state,
                      std::vector<std::vector<std::string>>& desired) {
  if (!state.config || state.config->replication_factor < 2)
    return;  // a cluster of replication factor 1 moves whole shards (handoffs, placement)
  const size_t rf = state.config->replication_factor;
  planner p(state, desired);
  if (p.members() < rf)
    return;  // the factor cannot be kept on live members: nothing moves but leaves
  p.trim(rf);
  size_t motion = p.in_motion();
  while (motion < max_shards_in_motion && p.move_one_replica())
    ++motion;
  if (p.replicas_moving())
    return;  // primaries follow once the replicas are where they belong
  while (motion < max_shards_in_motion && p.move_one_primary())
    ++motion;
}

}  // namespace ordermesh::cluster::replication
