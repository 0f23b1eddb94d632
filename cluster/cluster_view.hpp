#pragma once
// The cluster as every node sees it: members and the shard map. Kept by the coordinator, which
// bumps `version` on every change and spreads the whole view; a node applies a view only if it is
// newer than the one it has. Plain C++ (no CAF, nothing of orders); `inspect` lets the node layer
// send it between nodes.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ordermesh::cluster {

enum class member_state : uint8_t { joining = 1, up, unreachable, leaving, down };
std::string_view to_string(member_state s);

struct member {
  std::string node_id;
  std::string cluster_address;  // host:port of its node agent (CAF BASP)
  std::string client_address;   // host:port of its client listener
  uint8_t state = 0;            // member_state
  uint64_t joined_seq = 0;      // order of joining; the founder is 1. Decides the coordinator.
};
template <class Inspector>
auto inspect(Inspector& f, member& x) {
  return f(x.node_id, x.cluster_address, x.client_address, x.state, x.joined_seq);
}

/// One shard's owner. `epoch` grows with every change of owner; a node writes a shard's journal
/// only under the epoch at which it was given the shard.
struct shard_owner {
  std::string node_id;
  uint64_t epoch = 0;
};
template <class Inspector>
auto inspect(Inspector& f, shard_owner& x) {
  return f(x.node_id, x.epoch);
}

struct cluster_view {
  std::string cluster_id;  // random, chosen by the founder; a node of another cluster is refused
  uint16_t shard_count = 0;
  uint64_t version = 0;
  uint64_t next_joined_seq = 1;
  std::vector<member> members;
  std::vector<shard_owner> shards;  // index = shard
};
template <class Inspector>
auto inspect(Inspector& f, cluster_view& x) {
  return f(x.cluster_id, x.shard_count, x.version, x.next_joined_seq, x.members, x.shards);
}

/// A view founded by `founder`: it is the only member (up) and owns every shard at epoch 1.
cluster_view found_cluster(std::string cluster_id, uint16_t shard_count, member founder);

const member* find_member(const cluster_view& v, std::string_view node_id);
member* find_member(cluster_view& v, std::string_view node_id);

/// The coordinator: the member with the smallest joined_seq among those up. Its successor, when
/// it goes away, is simply the next one by the same rule. nullopt when none is up.
std::optional<std::string> coordinator_of(const cluster_view& v);

/// Coordinator's changes; each returns true when the view changed (and bumps version).
/// A node that joins (new, or back under its old id with new addresses) becomes up; a new one
/// gets the next joined_seq; a returning one keeps its joined_seq (and its shards).
bool admit(cluster_view& v, const std::string& node_id, const std::string& cluster_address,
           const std::string& client_address);
bool set_state(cluster_view& v, std::string_view node_id, member_state s);
/// Gives `shard` to `node_id` with epoch + 1.
bool move_shard(cluster_view& v, uint16_t shard, const std::string& node_id);
/// Removes a member that owns no shard; false if it still owns one.
bool remove_member(cluster_view& v, std::string_view node_id);

/// A shard that should move, and where.
struct planned_move {
  uint16_t shard = 0;
  std::string from;
  std::string to;
};
/// Moves that bring the shard map towards balance: every `up` member that is not leaving owns
/// floor(S/N) or ceil(S/N) shards; a `leaving` member owns none. Only shards whose owner is up
/// or leaving can move (a down or unreachable owner holds the data on its disk). At most
/// `max_moves`; deterministic for a given view (same view, same plan on every node).
std::vector<planned_move> plan_moves(const cluster_view& v, size_t max_moves);

/// Shards owned by `node_id`.
std::vector<uint16_t> shards_of(const cluster_view& v, std::string_view node_id);

}  // namespace ordermesh::cluster
