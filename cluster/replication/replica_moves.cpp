#include "cluster/replication/replica_moves.hpp"

#include <algorithm>
#include <map>
#include <utility>

#include "cluster/replication/failover.hpp"
#include "cluster/replication/member_removal.hpp"
#include "cluster/replication/replica_balance.hpp"

namespace ordermesh::cluster::replication {

std::string_view to_string(replica_step_kind k) {
  switch (k) {
    case replica_step_kind::done:
      return "done";
    case replica_step_kind::add_replica:
      return "add_replica";
    case replica_step_kind::wait_catch_up:
      return "wait_catch_up";
    case replica_step_kind::move_primary:
      return "move_primary";
    case replica_step_kind::drop_replica:
      return "drop_replica";
    case replica_step_kind::blocked:
      return "blocked";
  }
  return "unknown";
}

namespace {

bool contains(const std::vector<std::string>& v, const std::string& x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

replica_step blocked(std::string reason) {
  replica_step s;
  s.reason = std::move(reason);
  return s;
}

/// `node` may lead `a` now: an ISR member whose entry names the disk its member record has (a
/// node back on a wiped disk keeps an entry that proves nothing until the primary rewrites it).
bool can_lead(const coord::cluster_state& state, const coord::shard_assignment& a,
              const std::string& node) {
  auto it = std::find(a.isr.begin(), a.isr.end(), node);
  if (it == a.isr.end())
    return false;
  auto i = static_cast<size_t>(it - a.isr.begin());
  return i < a.isr_disks.size() &&
         std::any_of(state.members.begin(), state.members.end(),
                     [&](const auto& m) { return m.node_id == node && m.disk == a.isr_disks[i]; });
}

/// `a` led by `node` (an ISR member) at epoch + 1; everyone else, the old primary too, keeps
/// its ISR entry (the old primary holds everything committed).
replica_step primary_to(const coord::shard_assignment& a, const std::string& node) {
  replica_step s;
  s.next = a;
  auto i = static_cast<std::ptrdiff_t>(std::find(a.isr.begin(), a.isr.end(), node) - a.isr.begin());
  s.what = replica_step_kind::move_primary;
  s.node = node;
  s.next.epoch = a.epoch + 1;
  s.next.primary = node;
  s.next.target.clear();
  // The new primary first.
  std::rotate(s.next.isr.begin(), s.next.isr.begin() + i, s.next.isr.begin() + i + 1);
  std::rotate(s.next.isr_disks.begin(), s.next.isr_disks.begin() + i,
              s.next.isr_disks.begin() + i + 1);
  return s;
}

/// A draining member (member_record::draining) is nobody's preferred primary: a replica that
/// does not drain and may lead now (can_lead) goes first, the one leading the fewest shards as
/// planned so far (so the drained leadership spreads at once, without a second move by the
/// rebalance), and step 5 of next_replica_step moves the shard's leadership there. Its replicas
/// stay; a shard with no such replica keeps its primary (draining waits for a replica to catch
/// up, or ends by its bound).
void lead_elsewhere_while_draining(const coord::cluster_state& state,
                                   std::vector<std::vector<std::string>>& desired) {
  auto draining = [&](const std::string& id) {
    return std::any_of(state.members.begin(), state.members.end(),
                       [&](const auto& m) { return m.node_id == id && m.draining; });
  };
  std::map<std::string, size_t> leads;
  for (const auto& d : desired)
    if (!d.empty() && !draining(d.front()))
      ++leads[d.front()];
  for (size_t i = 0; i < desired.size() && i < state.shards.size(); ++i) {
    auto& d = desired[i];
    if (d.empty() || !draining(d.front()))
      continue;
    auto best = d.end();
    for (auto it = d.begin() + 1; it != d.end(); ++it)
      if (!draining(*it) && can_lead(state, state.shards[i], *it) &&
          (best == d.end() || leads[*it] < leads[*best]))
        best = it;
    if (best != d.end()) {
      ++leads[*best];
      std::rotate(d.begin(), best, best + 1);
    }
  }
}

}  // namespace

std::vector<std::vector<std::string>> desired_replicas(const coord::cluster_state& state) {
  std::vector<std::vector<std::string>> all;
  if (!state.config)
    return all;
  const size_t rf = state.config->replication_factor;
  auto member = [&](const std::string& id) -> const coord::member_record* {
    for (const auto& m : state.members)
      if (m.node_id == id)
        return &m;
    return nullptr;
  };
  std::map<std::string, size_t> load;  // replicas held over every shard, as desired so far
  for (const auto& s : state.shards)
    for (const auto& r : s.replicas)
      ++load[r];
  for (const auto& a : state.shards) {
    std::vector<std::string> out;
    auto stays = [&](const std::string& id) {
      if (is_removed(state, id))
        return false;  // dead for good (member_removal.hpp): replaced like a leaving member
      const auto* m = member(id);
      return !m || !m->leaving;  // a dead member stays: it comes back and catches up
    };
    if (contains(a.replicas, a.primary) && stays(a.primary))
      out.push_back(a.primary);
    for (const auto& r : a.replicas)
      if (r != a.primary && stays(r))
        out.push_back(r);
    if (out.size() == a.replicas.size() && out.size() >= rf) {
      all.push_back(std::move(out));  // nobody leaves, nothing missing
      continue;
    }
    std::vector<const coord::member_record*> spare;
    for (const auto& m : state.members)
      if (!m.leaving && !contains(out, m.node_id))
        spare.push_back(&m);
    std::sort(spare.begin(), spare.end(), [&](const auto* x, const auto* y) {
      return std::make_pair(load[x->node_id], x->node_id) <
             std::make_pair(load[y->node_id], y->node_id);
    });
    for (const auto* m : spare) {
      if (out.size() >= rf)
        break;
      out.push_back(m->node_id);
    }
    if (out.size() < rf) {
      // Too few members for the factor: nobody goes (a leaving or removed replica still holds
      // a copy), but every member that is no replica yet is added: one more copy each, and a
      // shard left with fewer replicas than min_insync (a forced promotion) can take writes
      // again. The primary stays first.
      std::vector<std::string> keep;
      if (contains(a.replicas, a.primary))
        keep.push_back(a.primary);
      for (const auto& r : a.replicas)
        if (r != a.primary)
          keep.push_back(r);
      for (const auto& d : out)
        if (!contains(keep, d)) {
          keep.push_back(d);
          ++load[d];
        }
      all.push_back(std::move(keep));
      continue;
    }
    for (const auto& r : a.replicas)
      if (!contains(out, r))
        --load[r];
    for (const auto& d : out)
      if (!contains(a.replicas, d))
        ++load[d];
    all.push_back(std::move(out));
  }
  balance_replicas(state, all);  // joins (and returns): a share for every member
  lead_elsewhere_while_draining(state, all);
  return all;
}

namespace {

replica_step step_towards(const coord::cluster_state& state, uint16_t shard,
                          const std::vector<std::string>& desired);

}  // namespace

replica_step next_replica_step(const coord::cluster_state& state, uint16_t shard,
                               const std::vector<std::string>& desired) {
  auto s = step_towards(state, shard, desired);
  s.shard = shard;
  return s;
}

std::vector<replica_step> plan_replica_writes(const coord::cluster_state& state,
                                              const std::vector<std::vector<std::string>>& desired,
                                              const std::set<std::string>& suspected,
                                              size_t max_catching_up,
                                              const std::function<bool(uint16_t)>& skip) {
  using k = replica_step_kind;
  std::vector<replica_step> steps;
  size_t catching_up = 0;
  for (uint16_t shard = 0; shard < state.shards.size() && shard < desired.size(); ++shard) {
    steps.push_back(next_replica_step(state, shard, desired[shard]));
    // A copy under way: a replica waiting to catch up, or an add asked already (in flight, not
    // read back yet: without it, the next state read before the add lands would add more).
    const auto what = steps.back().what;
    if (what == k::wait_catch_up || (what == k::add_replica && skip && skip(shard)))
      ++catching_up;
  }
  std::vector<replica_step> out;
  for (auto& step : steps) {
    if (step.what != k::add_replica && step.what != k::move_primary && step.what != k::drop_replica)
      continue;
    if (step.what != k::drop_replica && suspected.count(step.node))
      continue;
    if (skip && skip(step.shard))
      continue;
    if (step.what == k::add_replica) {
      if (catching_up >= max_catching_up)
        continue;
      ++catching_up;
    }
    out.push_back(std::move(step));
  }
  return out;
}

namespace {

replica_step step_towards(const coord::cluster_state& state, uint16_t shard,
                          const std::vector<std::string>& desired) {
  if (shard >= state.shards.size() || !state.config || desired.empty())
    return blocked("no such shard, no config, or no desired replica");
  const auto& a = state.shards[shard];
  auto failover = choose_failover(state, shard);
  if (failover.outcome != failover_outcome::none)
    return blocked("the primary has failed or the ISR is unreadable: failover first");
  uint16_t min_insync = state.config->min_insync;
  auto is_member = [&](const std::string& id) {
    return std::any_of(state.members.begin(), state.members.end(),
                       [&](const auto& m) { return m.node_id == id; });
  };

  replica_step s;
  s.next = a;
  for (const auto& d : desired) {  // 1. add, one at a time
    if (!contains(a.replicas, d) && is_member(d)) {
      s.what = replica_step_kind::add_replica;
      s.node = d;
      s.next.replicas.push_back(d);
      return s;
    }
  }
  for (const auto& d : desired) {  // 2. every new one in the ISR before anything goes
    if (contains(a.replicas, d) && !contains(a.isr, d)) {
      s.what = replica_step_kind::wait_catch_up;
      s.node = d;
      return s;
    }
  }
  if (!contains(desired, a.primary)) {  // 3. the primary to an ISR member that stays
    for (const auto& d : desired)
      if (can_lead(state, a, d))
        return primary_to(a, d);
    return blocked("no desired replica is in the ISR to lead");
  }
  for (const auto& r : a.replicas) {  // 4. drop, never below min_insync
    if (contains(desired, r))
      continue;
    auto it = std::find(a.isr.begin(), a.isr.end(), r);
    if (it != a.isr.end()) {
      if (a.isr.size() - 1 < min_insync)
        return blocked("dropping " + r + " would leave fewer than min_insync in the ISR");
      auto i = it - a.isr.begin();
      s.next.isr.erase(s.next.isr.begin() + i);
      s.next.isr_disks.erase(s.next.isr_disks.begin() + i);
    }
    s.what = replica_step_kind::drop_replica;
    s.node = r;
    s.next.replicas.erase(std::find(s.next.replicas.begin(), s.next.replicas.end(), r));
    return s;
  }
  // 5. The preferred primary (a rebalance of leadership, replica_balance.hpp) leads, once it
  // can; a preference it cannot take up now (not in sync) is no reason to wait.
  if (desired.front() != a.primary && can_lead(state, a, desired.front()))
    return primary_to(a, desired.front());
  s.what = replica_step_kind::done;
  return s;
}

}  // namespace

}  // namespace ordermesh::cluster::replication
