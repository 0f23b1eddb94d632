#include "cluster/coordination/local_seed.hpp"

#include <algorithm>
#include <cstdio>
#include <random>

namespace ordermesh::cluster::coordination {

namespace {

error refused(std::string why) {
  return error{errc::invalid, std::move(why)};
}

}  // namespace

std::string new_cluster_id() {
  std::random_device rd;  // the kernel's random source on Linux
  uint64_t v = (uint64_t{rd()} << 32) | rd();
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(v));
  return hex;
}

result<local_seed> seed_from_disk(const disk_facts& facts, const std::string& node_id,
                                  const std::string& fresh_id) {
  const auto n = facts.owned_epochs.size();
  if (n == 0 || n > 0xFFFF)
    return refused("the shard count must be 1..65535");
  if (facts.cluster_id && facts.store_kind.value_or("") != "local")
    return refused("this data dir belongs to the etcd cluster " + *facts.cluster_id +
                   ": start the node with --etcd (and the --cluster it was part of)");
  auto owned = static_cast<size_t>(std::count_if(
      facts.owned_epochs.begin(), facts.owned_epochs.end(), [](uint64_t e) { return e != 0; }));
  if (owned != 0 && owned != n)
    return refused("this data dir owns " + std::to_string(owned) + " of " + std::to_string(n) +
                   " shards: it was one node of a cluster whose other shards live on other "
                   "disks, so it cannot serve alone (the --seeds mode it ran is gone)");
  if (owned == 0 && facts.has_seeds_view)
    return refused(
        "this data dir was a node of a --seeds cluster and owns none of its "
        "shards: the data lives on the other nodes' disks");
  if (owned == 0 && facts.cluster_id)
    return refused("this data dir is a lone node's (cluster " + *facts.cluster_id +
                   ") but owns no shard: its shard ownership was lost or tampered with");

  local_seed seed;
  seed.new_cluster = !facts.cluster_id;
  seed.config.cluster_id = facts.cluster_id.value_or(fresh_id);
  seed.config.shard_count = static_cast<uint16_t>(n);
  seed.config.replication_factor = 1;
  seed.config.min_insync = 1;
  seed.shards.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    shard_assignment a;
    a.shard = static_cast<uint16_t>(i);
    // A fresh disk starts every shard at epoch 1; a known one at the epoch it owns, which its
    // storage accepts again (and would refuse any lower one).
    a.epoch = owned == 0 ? 1 : facts.owned_epochs[i];
    a.primary = node_id;
    a.replicas = {node_id};
    a.isr = {node_id};
    seed.shards.push_back(std::move(a));
  }
  return seed;
}

}  // namespace ordermesh::cluster::coordination
