#pragma once
// Helpers for the cluster tests: building views and counting shard ownership.
#include <map>
#include <string>

#include "cluster/cluster_view.hpp"

namespace ordermesh::cluster::test {

/// A member with addresses derived from its id, so tests only name nodes.
inline member make_member(const std::string& id) {
  return member{id, id + ":7000", id + ":8000", 0, 0};
}

/// Admits `id` with the addresses make_member would give it.
inline bool admit_node(cluster_view& v, const std::string& id) {
  return admit(v, id, id + ":7000", id + ":8000");
}

/// Shards per owner.
inline std::map<std::string, size_t> loads(const cluster_view& v) {
  std::map<std::string, size_t> out;
  for (const auto& s : v.shards)
    ++out[s.node_id];
  return out;
}

}  // namespace ordermesh::cluster::test
