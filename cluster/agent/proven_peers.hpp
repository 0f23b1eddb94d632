#pragma once
// Which member each connected CAF node proved to be in its hello (peer_links.cpp), so that a
// message that names or implies a member is accepted only from that member's node. Shared by
// the agent (writes it) and the replica follower (reads it, on its own thread).
#include <map>
#include <mutex>
#include <optional>
#include <string>

#include <caf/actor_control_block.hpp>
#include <caf/node_id.hpp>

namespace ordermesh::cluster::agent {

class proven_peers {
 public:
  void set(const caf::node_id& node, const std::string& member) {
    std::lock_guard<std::mutex> lock(mu_);
    ids_[node] = member;
  }
  void erase(const caf::node_id& node) {
    std::lock_guard<std::mutex> lock(mu_);
    ids_.erase(node);
  }
  /// The member `node` proved to be; none when it proved nothing (yet).
  std::optional<std::string> of(const caf::node_id& node) const {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = ids_.find(node);
    if (it == ids_.end())
      return std::nullopt;
    return it->second;
  }

 private:
  mutable std::mutex mu_;
  std::map<caf::node_id, std::string> ids_;  // at most one per connected node (max_peers)
};

/// Where a message came from, as the handlers of the agent and the follower check it.
enum class sender_kind {
  this_node,  // an actor of this node (a sender is set and it is on this node)
  proven,     // a peer's actor on a node that proved its id (the id is returned beside it)
  unknown,    // no sender (anonymous), or a node that proved nothing
};

/// What `sender` is, seen from an actor on node `here`; *member receives a proven peer's id.
inline sender_kind classify_sender(const caf::strong_actor_ptr& sender, const caf::node_id& here,
                                   const proven_peers& proven, std::string* member) {
  if (!sender)
    return sender_kind::unknown;
  if (sender->node() == here)
    return sender_kind::this_node;
  if (auto id = proven.of(sender->node())) {
    *member = *id;
    return sender_kind::proven;
  }
  return sender_kind::unknown;
}

}  // namespace ordermesh::cluster::agent
