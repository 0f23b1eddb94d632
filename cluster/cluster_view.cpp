#include "cluster/cluster_view.hpp"

#include <algorithm>
#include <utility>

namespace ordermesh::cluster {

namespace {

bool is(const member& m, member_state s) {
  return m.state == static_cast<uint8_t>(s);
}

/// Members ordered by joined_seq; node_id breaks ties so that even a malformed view (two equal
/// joined_seq) gives the same order on every node.
bool by_seniority(const member* a, const member* b) {
  if (a->joined_seq != b->joined_seq)
    return a->joined_seq < b->joined_seq;
  return a->node_id < b->node_id;
}

/// Members in state `s`, most senior first.
std::vector<const member*> members_in(const cluster_view& v, member_state s) {
  std::vector<const member*> out;
  for (const auto& m : v.members)
    if (is(m, s))
      out.push_back(&m);
  std::sort(out.begin(), out.end(), by_seniority);
  return out;
}

}  // namespace

std::string_view to_string(member_state s) {
  switch (s) {
    case member_state::joining:
      return "joining";
    case member_state::up:
      return "up";
    case member_state::unreachable:
      return "unreachable";
    case member_state::leaving:
      return "leaving";
    case member_state::down:
      return "down";
  }
  // `state` travels as a plain byte, so a value outside the enum can reach us from the wire.
  return "invalid";
}

cluster_view found_cluster(std::string cluster_id, uint16_t shard_count, member founder) {
  cluster_view v;
  v.cluster_id = std::move(cluster_id);
  v.shard_count = shard_count;
  v.version = 1;
  founder.state = static_cast<uint8_t>(member_state::up);
  founder.joined_seq = 1;
  v.next_joined_seq = 2;
  v.shards.assign(shard_count, shard_owner{founder.node_id, 1});
  v.members.push_back(std::move(founder));
  return v;
}

const member* find_member(const cluster_view& v, std::string_view node_id) {
  for (const auto& m : v.members)
    if (m.node_id == node_id)
      return &m;
  return nullptr;
}

member* find_member(cluster_view& v, std::string_view node_id) {
  const auto* m = find_member(static_cast<const cluster_view&>(v), node_id);
  return const_cast<member*>(m);
}

std::optional<std::string> coordinator_of(const cluster_view& v) {
  auto up = members_in(v, member_state::up);
  if (up.empty())
    return std::nullopt;
  return up.front()->node_id;
}

bool admit(cluster_view& v, const std::string& node_id, const std::string& cluster_address,
           const std::string& client_address) {
  const auto up = static_cast<uint8_t>(member_state::up);
  if (auto* m = find_member(v, node_id)) {
    // A returning node keeps its joined_seq: its seniority (and so the coordinator choice) must
    // not depend on how often it restarted.
    if (m->cluster_address == cluster_address && m->client_address == client_address &&
        m->state == up)
      return false;
    m->cluster_address = cluster_address;
    m->client_address = client_address;
    m->state = up;
  } else {
    v.members.push_back(member{node_id, cluster_address, client_address, up, v.next_joined_seq++});
  }
  ++v.version;
  return true;
}

bool set_state(cluster_view& v, std::string_view node_id, member_state s) {
  auto* m = find_member(v, node_id);
  if (m == nullptr || is(*m, s))
    return false;
  m->state = static_cast<uint8_t>(s);
  ++v.version;
  return true;
}

bool move_shard(cluster_view& v, uint16_t shard, const std::string& node_id) {
  if (shard >= v.shards.size() || find_member(v, node_id) == nullptr)
    return false;
  auto& owner = v.shards[shard];
  if (owner.node_id == node_id)
    return false;
  owner.node_id = node_id;
  ++owner.epoch;
  ++v.version;
  return true;
}

bool remove_member(cluster_view& v, std::string_view node_id) {
  auto it = std::find_if(v.members.begin(), v.members.end(),
                         [&](const member& m) { return m.node_id == node_id; });
  if (it == v.members.end())
    return false;
  // A member that still owns a shard may hold its only journal; dropping it would orphan the shard.
  for (const auto& s : v.shards)
    if (s.node_id == node_id)
      return false;
  v.members.erase(it);
  ++v.version;
  return true;
}

std::vector<uint16_t> shards_of(const cluster_view& v, std::string_view node_id) {
  std::vector<uint16_t> out;
  for (size_t i = 0; i < v.shards.size(); ++i)
    if (v.shards[i].node_id == node_id)
      out.push_back(static_cast<uint16_t>(i));
  return out;
}

// The rule, fixed so that every node computes the same plan from the same view:
//  - targets: members up, by seniority (joined_seq, then node_id). With S = shards.size() and
//    N targets, each wants S/N; the S%N most senior want one more. Fixing who gets the extra
//    shard (rather than accepting any floor/ceil split) gives one balanced end state, so plans
//    computed from successive views never undo each other.
//  - sources, in this order: every shard of a leaving member (leaving members by seniority),
//    then the excess of targets above their wanted count (largest excess first, ties by
//    seniority). Within a source, the highest-numbered shard goes first.
//  - destination of each move: the target furthest below its wanted count (ties by seniority).
//  - shards of joining, unreachable, down or unknown owners never move: their data is on a disk
//    we cannot read from.
// Loads are updated as moves are planned, so one plan never overfills a destination.
std::vector<planned_move> plan_moves(const cluster_view& v, size_t max_moves) {
  std::vector<planned_move> plan;
  const auto targets = members_in(v, member_state::up);
  if (targets.empty() || max_moves == 0)
    return plan;

  const size_t n = targets.size();
  const size_t s = v.shards.size();
  struct slot {
    const member* m;
    size_t wanted;
    size_t load;                  // owned now, plus what this plan gives it
    std::vector<uint16_t> owned;  // ascending; excess is taken from the back
  };
  std::vector<slot> slots;
  slots.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    auto owned = shards_of(v, targets[i]->node_id);
    const size_t load = owned.size();
    slots.push_back(slot{targets[i], s / n + (i < s % n ? 1 : 0), load, std::move(owned)});
  }

  // The most underloaded target; nullptr when every one has what it wants. `slots` is in
  // seniority order and only a strictly larger deficit replaces the pick, so ties go to seniority.
  auto destination = [&]() -> slot* {
    slot* best = nullptr;
    for (auto& x : slots)
      if (x.load < x.wanted && (best == nullptr || x.wanted - x.load > best->wanted - best->load))
        best = &x;
    return best;
  };
  // A destination only climbs towards its wanted count, so it never turns into a source within
  // one plan and its `owned` list need not learn of the shards it receives.
  auto plan_one = [&](uint16_t shard, const std::string& from) -> bool {
    slot* to = destination();
    if (to == nullptr)
      return false;
    plan.push_back(planned_move{shard, from, to->m->node_id});
    ++to->load;
    return true;
  };

  for (const member* leaving : members_in(v, member_state::leaving)) {
    auto owned = shards_of(v, leaving->node_id);
    for (auto it = owned.rbegin(); it != owned.rend(); ++it)
      if (plan.size() >= max_moves || !plan_one(*it, leaving->node_id))
        return plan;
  }

  while (plan.size() < max_moves) {
    slot* from = nullptr;
    for (auto& x : slots)
      if (x.load > x.wanted && (from == nullptr || x.load - x.wanted > from->load - from->wanted))
        from = &x;
    if (from == nullptr)
      break;
    const uint16_t shard = from->owned.back();
    from->owned.pop_back();
    --from->load;
    // Cannot fail while a target is above its count: wanted counts sum to S, so some other
    // target is below. Checked anyway rather than trusted.
    if (!plan_one(shard, from->m->node_id))
      break;
  }
  return plan;
}

}  // namespace ordermesh::cluster
