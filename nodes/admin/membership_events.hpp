#pragma once
// The status page's "recent membership events": what changed between two views of the cluster
// this node sampled (joins, leaves, state changes, shard primaries moving, members becoming
// unreachable from here), kept in a bounded ring. Pure: no actors, no sockets.
#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace ordermesh::node::admin {

/// The part of a cluster view the events are made of.
struct membership_view {
  struct member {
    std::string state;  // "up", "leaving", "draining"
    int64_t incarnation = 0;
  };
  std::map<std::string, member> members;      // by node id
  std::map<uint16_t, std::string> primaries;  // shard -> primary node id
  std::vector<std::string> unreachable;       // members this node has no connection to
  std::string controller;
};

struct membership_event {
  int64_t unix_ms = 0;
  std::string kind;  // joined, rejoined, left, state, primary, suspected, reachable, controller
  std::string node;  // the member it is about
  std::string text;  // one line for people
};

/// The events that turn `before` into `after`, stamped `unix_ms`. Shard moves are grouped per
/// (old primary, new primary) pair so a failover of 20 shards is one event, not 20.
std::vector<membership_event> diff_views(const membership_view& before,
                                         const membership_view& after, int64_t unix_ms);

/// The last `capacity` events, oldest first. Thread-safe: the sampler adds, HTTP reads.
class membership_event_ring {
 public:
  explicit membership_event_ring(size_t capacity) : capacity_(capacity) {}
  void add(std::vector<membership_event> events);
  std::vector<membership_event> snapshot() const;

 private:
  const size_t capacity_;
  mutable std::mutex mutex_;
  std::deque<membership_event> events_;
};

}  // namespace ordermesh::node::admin
