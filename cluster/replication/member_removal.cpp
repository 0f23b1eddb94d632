#include "cluster/replication/member_removal.hpp"

#include <algorithm>
#include <set>

namespace ordermesh::cluster::replication {

namespace coord = ::ordermesh::cluster::coordination;

namespace {

bool contains(const std::vector<std::string>& v, const std::string& x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

bool is_member(const coord::cluster_state& state, const std::string& node) {
  return std::any_of(state.members.begin(), state.members.end(),
                     [&](const auto& m) { return m.node_id == node; });
}

const coord::departure_record* find(const std::vector<coord::departure_record>& records,
                                    const std::string& node) {
  auto it = std::find_if(records.begin(), records.end(),
                         [&](const auto& r) { return r.node_id == node; });
  return it == records.end() ? nullptr : &*it;
}

removal_check refused(removal_refusal why, std::string reason) {
  return removal_check{why, false, std::move(reason)};
}

}  // namespace

std::string_view to_string(removal_refusal r) {
  switch (r) {
    case removal_refusal::none:
      return "none";
    case removal_refusal::live_member:
      return "live_member";
    case removal_refusal::unknown:
      return "unknown";
    case removal_refusal::too_few_members:
      return "too_few_members";
    case removal_refusal::not_replicated:
      return "not_replicated";
  }
  return "unknown";
}

std::string_view to_string(departure_step_kind k) {
  switch (k) {
    case departure_step_kind::note_absent:
      return "note_absent";
    case departure_step_kind::remove:
      return "remove";
    case departure_step_kind::forget:
      return "forget";
  }
  return "unknown";
}

bool named_by_shards(const coord::cluster_state& state, const std::string& node) {
  return std::any_of(state.shards.begin(), state.shards.end(), [&](const auto& a) {
    return a.primary == node || contains(a.replicas, node) || contains(a.isr, node);
  });
}

bool is_removed(const coord::cluster_state& state, const std::string& node) {
  return find(state.removed, node) != nullptr;
}

removal_check check_removal(const coord::cluster_state& state, const std::string& node) {
  if (!state.config || state.config->replication_factor <= 1 || state.shards.empty())
    return refused(removal_refusal::not_replicated,
                   "the cluster is not replicated (replication factor 1, or no shard map yet): "
                   "a dead node's shards have no other copy to replace it from");
  if (is_member(state, node))
    return refused(removal_refusal::live_member,
                   node + " is a live member (it holds a lease): use cluster.leave on a live node");
  if (is_removed(state, node)) {
    removal_check c;
    c.already = true;
    return c;
  }
  if (!named_by_shards(state, node))
    return refused(removal_refusal::unknown,
                   "no member " + node + " and no shard names it: nothing to remove");
  size_t live = static_cast<size_t>(std::count_if(state.members.begin(), state.members.end(),
                                                  [](const auto& m) { return !m.leaving; }));
  const size_t rf = state.config->replication_factor;
  if (live < rf)
    return refused(removal_refusal::too_few_members,
                   "removing " + node + " would leave " + std::to_string(live) +
                       " live members for replication factor " + std::to_string(rf) +
                       ": start another node first (the replacement replicas go there)");
  return {};
}

std::vector<departure_step> plan_departures(const coord::cluster_state& state, int64_t now_ms,
                                            std::chrono::milliseconds dead_member_timeout) {
  std::vector<departure_step> out;
  if (!state.config || state.config->replication_factor <= 1)
    return out;
  // Every node a record or a shard names, in id order (deterministic, and bounded by them).
  std::set<std::string> nodes;
  for (const auto& a : state.shards) {
    nodes.insert(a.primary);
    nodes.insert(a.replicas.begin(), a.replicas.end());
    nodes.insert(a.isr.begin(), a.isr.end());
  }
  for (const auto& r : state.absent)
    nodes.insert(r.node_id);
  for (const auto& r : state.removed)
    nodes.insert(r.node_id);
  nodes.erase(std::string{});
  for (const auto& node : nodes) {
    if (out.size() >= max_departure_steps)
      break;
    const bool named = named_by_shards(state, node);
    const bool member = is_member(state, node);
    const auto* absent = find(state.absent, node);
    const auto* removed = find(state.removed, node);
    departure_step s;
    s.record.node_id = node;
    if (removed) {
      if (!named) {  // every replica replaced: the id may join again, as a new member
        s.what = departure_step_kind::forget;
        s.kind = coord::departure_kind::removed;
        s.expected_revision = removed->mod_revision;
        out.push_back(s);
      }
      continue;
    }
    if (absent && (member || !named)) {  // back, or named by nothing: the clock stops
      s.what = departure_step_kind::forget;
      s.kind = coord::departure_kind::absent;
      s.expected_revision = absent->mod_revision;
      out.push_back(s);
      continue;
    }
    if (member || !named)
      continue;
    if (!absent) {
      s.what = departure_step_kind::note_absent;
      s.record.node_id = node;
      s.record.since_ms = now_ms;
      out.push_back(s);
      continue;
    }
    if (dead_member_timeout.count() <= 0 || now_ms - absent->since_ms < dead_member_timeout.count())
      continue;
    if (check_removal(state, node).refusal != removal_refusal::none)
      continue;  // too few live members to hold its replicas: it stays absent, and waits
    s.what = departure_step_kind::remove;
    s.kind = coord::departure_kind::removed;
    s.record.node_id = node;
    s.record.since_ms = now_ms;
    s.record.by = "timeout";
    out.push_back(s);
  }
  return out;
}

}  // namespace ordermesh::cluster::replication
