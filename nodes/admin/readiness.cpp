#include "nodes/admin/readiness.hpp"

#include <algorithm>

namespace ordermesh::node::admin {

namespace {

readiness_check joined_check(const readiness_inputs& in) {
  if (!in.joined)
    return {"joined", false, "not joined: the shard map is not known yet or clients not served"};
  if (in.draining)
    return {"joined", false, "draining: the node is stopping or leaving the cluster"};
  // A view that stopped refreshing means the member agent is stuck: what it said is stale.
  if (!in.view_fresh)
    return {"joined", false, "the member agent has not answered recently"};
  return {"joined", true, {}};
}

}  // namespace

readiness_verdict evaluate_readiness(const readiness_inputs& in) {
  readiness_verdict v;
  v.checks.push_back(joined_check(in));
  if (in.shards_not_served.empty())
    v.checks.push_back({"shards", true, {}});
  else
    v.checks.push_back({"shards", false,
                        "assigned here but not served yet: " + shard_ranges(in.shards_not_served)});
  if (in.storage_healthy)
    v.checks.push_back({"storage", true, {}});
  else
    v.checks.push_back(
        {"storage", false, in.storage_error.empty() ? "storage unhealthy" : in.storage_error});
  if (in.lease_valid)
    v.checks.push_back({"lease", true, {}});
  else
    v.checks.push_back({"lease", false, "the membership lease is not surely valid"});
  // A node cut off from its peers keeps its lease while etcd reaches it, so the lease check
  // alone keeps it ready; yet it serves nothing: its own shards can neither commit nor read
  // (their followers do not answer) and the primaries of the others are suspected (answered
  // `unavailable`). Sent elsewhere, clients reach the members that still reach each other.
  if (in.cut_off)
    v.checks.push_back({"peers", false,
                        "cut off from its peers: it reaches no majority of the members that may "
                        "be alive"});
  else
    v.checks.push_back({"peers", true, {}});
  v.ready = std::all_of(v.checks.begin(), v.checks.end(), [](auto& c) { return c.ok; });
  return v;
}

std::string shard_ranges(std::vector<uint16_t> shards) {
  std::sort(shards.begin(), shards.end());
  shards.erase(std::unique(shards.begin(), shards.end()), shards.end());
  std::string out;
  for (size_t i = 0; i < shards.size();) {
    size_t j = i;
    while (j + 1 < shards.size() && shards[j + 1] == shards[j] + 1)
      ++j;
    if (!out.empty())
      out += ", ";
    out += std::to_string(shards[i]);
    if (j > i)
      out += "-" + std::to_string(shards[j]);
    i = j + 1;
  }
  return out;
}

}  // namespace ordermesh::node::admin
