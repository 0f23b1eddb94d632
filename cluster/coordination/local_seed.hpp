#pragma once
// The local coordinator's starting point. A node without etcd is the only member of a store that
// lives in its own memory and dies with the process; its disk is what survives. So at every start
// the store is seeded from the disk: the cluster id the disk remembers and, per shard, the epoch
// the disk owns it under. The member agent then finds every shard already its own, at the epoch
// its storage enforces, and serves at once, exactly as it would follow an etcd.
//
// A disk that is not a lone node's is refused, never adopted: one that belongs to an etcd cluster
// (its shards may have moved on elsewhere), or one from a multi-node cluster of the old --seeds
// mode that owns only some of the shards (the rest live on other disks). Claiming all shards from
// such a disk would serve empty entities in place of real ones.
//
// Pure: the caller reads the disk (nodes/local_coordination.cpp), this decides.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "cluster/coordination/coordination.hpp"

namespace ordermesh::cluster::coordination {

/// Node metadata the coordination layer keeps on the node's disk (storage_engine meta names).
/// The cluster id of the store this disk follows; written on the first state read from it.
inline constexpr const char* cluster_id_meta = "coordination_cluster_id";
/// "local" on a lone node's disk (written before its cluster id); absent on an etcd member's.
inline constexpr const char* store_kind_meta = "coordination_store";
/// The shard map of the removed --seeds mode, kept by disks that ran it.
inline constexpr const char* seeds_view_meta = "cluster_view";

/// What the disk says, as read by the caller.
struct disk_facts {
  std::optional<std::string> cluster_id;  // cluster_id_meta
  std::optional<std::string> store_kind;  // store_kind_meta
  bool has_seeds_view = false;            // seeds_view_meta exists
  std::vector<uint64_t> owned_epochs;     // index = shard; 0: not owned
};

/// The store's contents before the node joins it.
struct local_seed {
  cluster_config config;
  std::vector<shard_assignment> shards;  // every one led by the node
  bool new_cluster = false;              // a fresh disk: config.cluster_id is `fresh_id`
};

/// A new cluster id: 16 random hex digits (unique, not secret).
std::string new_cluster_id();

/// The seed for `node_id` on a disk with `facts`, or errc::invalid naming why the disk cannot
/// be a lone node's. `fresh_id` becomes the cluster id of a disk that has none.
result<local_seed> seed_from_disk(const disk_facts& facts, const std::string& node_id,
                                  const std::string& fresh_id);

}  // namespace ordermesh::cluster::coordination
