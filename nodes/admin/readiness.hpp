#pragma once
// The readiness rule of GET /readyz, as a pure function: what the node knows about itself in,
// ready or not (and which checks fail) out. No sockets, no actors: unit-tested on its own.
#include <cstdint>
#include <string>
#include <vector>

namespace ordermesh::node::admin {

/// What the node knows about itself right now (filled by node_status from its agent's view).
struct readiness_inputs {
  bool joined = false;      // knows the shard map and serves clients
  bool draining = false;    // SIGTERM or cluster.leave: stopping, send traffic elsewhere
  bool view_fresh = false;  // the member agent answered recently (not wedged)
  bool storage_healthy = false;
  std::string storage_error;  // why not, when not
  bool lease_valid = false;   // this node's membership lease is surely valid now
  /// It reaches no majority of the members that may be alive (the member agent's cut_off):
  /// it can serve no shard, though its lease may still be valid.
  bool cut_off = false;
  /// Shards the store makes this node the primary of that its routing does not serve here.
  std::vector<uint16_t> shards_not_served;
};

/// One named check of the rule, and why it fails.
struct readiness_check {
  std::string name;  // "joined", "shards", "storage", "lease", "peers"
  bool ok = false;
  std::string detail;  // empty when ok
};

struct readiness_verdict {
  bool ready = false;
  std::vector<readiness_check> checks;  // always all five, in a fixed order
};

/// Ready when joined (and not draining, with a fresh view), serving every shard the store
/// assigns to it, with healthy storage and a valid lease, and not cut off from its peers.
readiness_verdict evaluate_readiness(const readiness_inputs& in);

/// "3, 5-9, 12": shard numbers (sorted or not) as ranges, for messages and the status page.
std::string shard_ranges(std::vector<uint16_t> shards);

}  // namespace ordermesh::node::admin
