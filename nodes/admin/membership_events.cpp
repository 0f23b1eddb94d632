#include "nodes/admin/membership_events.hpp"

#include <algorithm>
#include <set>
#include <utility>

#include "nodes/admin/readiness.hpp"

namespace ordermesh::node::admin {

namespace {

void member_changes(const membership_view& before, const membership_view& after, int64_t now,
                    std::vector<membership_event>& out) {
  for (auto& [id, m] : after.members) {
    auto old = before.members.find(id);
    if (old == before.members.end())
      out.push_back(
          {now, "joined", id, id + " joined (incarnation " + std::to_string(m.incarnation) + ")"});
    else if (old->second.incarnation != m.incarnation)
      out.push_back({now, "rejoined", id,
                     id + " rejoined (incarnation " + std::to_string(old->second.incarnation) +
                         " -> " + std::to_string(m.incarnation) + ")"});
    else if (old->second.state != m.state)
      out.push_back({now, "state", id, id + " is " + m.state + " (was " + old->second.state + ")"});
  }
  for (auto& [id, m] : before.members)
    if (!after.members.count(id))
      out.push_back({now, "left", id, id + " left (its lease ended or it was removed)"});
}

void primary_changes(const membership_view& before, const membership_view& after, int64_t now,
                     std::vector<membership_event>& out) {
  std::map<std::pair<std::string, std::string>, std::vector<uint16_t>> moved;
  for (auto& [shard, primary] : after.primaries) {
    auto old = before.primaries.find(shard);
    if (old != before.primaries.end() && old->second != primary)
      moved[{old->second, primary}].push_back(shard);
  }
  for (auto& [who, shards] : moved)
    out.push_back(
        {now, "primary", who.second,
         "shards " + shard_ranges(shards) + ": primary " + who.first + " -> " + who.second});
}

void reachability_changes(const membership_view& before, const membership_view& after, int64_t now,
                          std::vector<membership_event>& out) {
  std::set<std::string> was(before.unreachable.begin(), before.unreachable.end());
  std::set<std::string> is(after.unreachable.begin(), after.unreachable.end());
  for (auto& id : is)
    if (!was.count(id))
      out.push_back({now, "suspected", id, id + " is unreachable from here"});
  for (auto& id : was)
    if (!is.count(id) && after.members.count(id))
      out.push_back({now, "reachable", id, id + " is reachable again"});
}

}  // namespace

std::vector<membership_event> diff_views(const membership_view& before,
                                         const membership_view& after, int64_t unix_ms) {
  std::vector<membership_event> out;
  member_changes(before, after, unix_ms, out);
  primary_changes(before, after, unix_ms, out);
  reachability_changes(before, after, unix_ms, out);
  if (before.controller != after.controller && !after.controller.empty())
    out.push_back({unix_ms, "controller", after.controller,
                   after.controller + " is the controller" +
                       (before.controller.empty() ? "" : " (was " + before.controller + ")")});
  return out;
}

void membership_event_ring::add(std::vector<membership_event> events) {
  std::lock_guard<std::mutex> lock(mutex_);
  for (auto& e : events) {
    events_.push_back(std::move(e));
    if (events_.size() > capacity_)
      events_.pop_front();
  }
}

std::vector<membership_event> membership_event_ring::snapshot() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return {events_.begin(), events_.end()};
}

}  // namespace ordermesh::node::admin
