#include "cluster/coordination/coordination.hpp"

#include <algorithm>

namespace ordermesh::cluster::coordination {

std::string_view to_string(errc e) {
  switch (e) {
    case errc::unavailable:
      return "unavailable";
    case errc::lease_lost:
      return "lease_lost";
    case errc::fenced:
      return "fenced";
    case errc::invalid:
      return "invalid";
    case errc::not_joined:
      return "not_joined";
  }
  return "unknown";
}

std::string_view to_string(departure_kind k) {
  switch (k) {
    case departure_kind::absent:
      return "absent";
    case departure_kind::removed:
      return "removed";
  }
  return "unknown";
}

std::string error::to_string() const {
  std::string s(::ordermesh::cluster::coordination::to_string(code));
  if (!message.empty())
    s += ": " + message;
  return s;
}

std::vector<shard_assignment> initial_assignments(const std::vector<std::string>& members,
                                                  const cluster_config& config) {
  std::vector<shard_assignment> out;
  if (members.empty())
    return out;
  size_t n = members.size();
  size_t copies = std::min<size_t>(std::max<uint16_t>(config.replication_factor, 1), n);
  out.reserve(config.shard_count);
  for (uint16_t s = 0; s < config.shard_count; ++s) {
    shard_assignment a;
    a.shard = s;
    a.epoch = 1;
    a.primary = members[s % n];
    for (size_t k = 0; k < copies; ++k)
      a.replicas.push_back(members[(s + k) % n]);
    a.isr = a.replicas;
    out.push_back(std::move(a));
  }
  return out;
}

}  // namespace ordermesh::cluster::coordination
