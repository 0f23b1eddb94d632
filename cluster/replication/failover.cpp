#include "cluster/replication/failover.hpp"

#include <algorithm>

namespace ordermesh::cluster::replication {

std::string_view to_string(failover_outcome o) {
  switch (o) {
    case failover_outcome::none:
      return "none";
    case failover_outcome::promote:
      return "promote";
    case failover_outcome::unavailable:
      return "unavailable";
    case failover_outcome::invalid:
      return "invalid";
  }
  return "unknown";
}

namespace {

const coord::member_record* member(const coord::cluster_state& state, const std::string& id) {
  for (const auto& m : state.members) {
    if (m.node_id == id)
      return &m;
  }
  return nullptr;
}

failover_decision refused(failover_outcome o, std::string reason) {
  failover_decision d;
  d.outcome = o;
  d.reason = std::move(reason);
  return d;
}

}  // namespace

failover_decision choose_failover(const coord::cluster_state& state, uint16_t shard) {
  if (shard >= state.shards.size())
    return refused(failover_outcome::invalid, "no such shard");
  const auto& a = state.shards[shard];
  if (a.isr_disks.size() != a.isr.size())
    return refused(failover_outcome::invalid, "the ISR names no disk for every member");
  // The ISR entry of each member that still holds it: same node id, same disk (a member
  // restarted on the disk its entry names still holds every committed write; a wiped one not).
  auto current = [&](size_t i) {
    const auto* m = member(state, a.isr[i]);
    return m != nullptr && m->disk == a.isr_disks[i];
  };
  bool primary_ok = false;
  for (size_t i = 0; i < a.isr.size(); ++i) {
    if (a.isr[i] == a.primary && current(i))
      primary_ok = true;
  }
  if (primary_ok)
    return refused(failover_outcome::none, "");

  std::vector<size_t> kept;  // ISR entries that remain valid, the failed primary excluded
  for (size_t i = 0; i < a.isr.size(); ++i) {
    if (a.isr[i] != a.primary && current(i))
      kept.push_back(i);
  }
  if (kept.empty())
    return refused(
        failover_outcome::unavailable,
        "no ISR member left on the disk its entry names: only force-primary can serve it");
  // A member that is leaving or draining would hand the shard on at once: prefer one that
  // stays.
  size_t chosen = kept.front();
  for (size_t i : kept) {
    const auto* m = member(state, a.isr[i]);
    if (!m->leaving && !m->draining) {
      chosen = i;
      break;
    }
  }
  failover_decision d;
  d.outcome = failover_outcome::promote;
  d.next = a;
  d.next.epoch = a.epoch + 1;
  d.next.primary = a.isr[chosen];
  d.next.target.clear();
  d.next.isr = {a.isr[chosen]};
  d.next.isr_disks = {a.isr_disks[chosen]};
  for (size_t i : kept) {
    if (i != chosen) {
      d.next.isr.push_back(a.isr[i]);
      d.next.isr_disks.push_back(a.isr_disks[i]);
    }
  }
  if (std::find(d.next.replicas.begin(), d.next.replicas.end(), d.next.primary) ==
      d.next.replicas.end())
    d.next.replicas.push_back(d.next.primary);
  return d;
}

failover_decision force_primary(const coord::cluster_state& state, uint16_t shard,
                                const std::string& node) {
  if (shard >= state.shards.size())
    return refused(failover_outcome::invalid, "no such shard");
  const auto* m = member(state, node);
  if (m == nullptr)
    return refused(failover_outcome::invalid, "not a member: " + node);
  const auto& a = state.shards[shard];
  failover_decision d;
  d.outcome = failover_outcome::promote;
  d.next = a;
  d.next.epoch = a.epoch + 1;
  d.next.primary = node;
  d.next.target.clear();
  d.next.isr = {node};
  d.next.isr_disks = {m->disk};
  if (std::find(d.next.replicas.begin(), d.next.replicas.end(), node) == d.next.replicas.end())
    d.next.replicas.push_back(node);
  return d;
}

}  // namespace ordermesh::cluster::replication
