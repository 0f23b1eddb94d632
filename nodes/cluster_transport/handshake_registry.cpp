#include "nodes/cluster_transport/handshake_registry.hpp"

#include <algorithm>

namespace ordermesh::cluster_transport {

handshake_registry::handshake_registry(handshake_limits limits) : limits_(limits) {
  limits_.max_pending = std::max<size_t>(limits_.max_pending, 1);
  limits_.max_total = std::max<size_t>(limits_.max_total, 1);
}

handshake_registry::admission handshake_registry::admit(int handle, time_point now) {
  admission result;
  if (entries_.size() >= limits_.max_total)
    return result;
  // At most one eviction per admission: pending_ never exceeds max_pending.
  if (pending_.size() >= limits_.max_pending) {
    auto oldest = *pending_.begin();
    pending_.erase(pending_.begin());
    auto& victim = entries_.at(oldest);
    victim.st = state::closing;
    result.evicted.push_back(victim.handle);
  }
  auto id = next_id_++;
  entries_.emplace(id, entry{handle, now, state::pending});
  pending_.insert(id);
  result.id = id;
  return result;
}

void handshake_registry::established(uint64_t id) {
  auto it = entries_.find(id);
  if (it == entries_.end() || it->second.st != state::pending)
    return;
  it->second.st = state::established;
  pending_.erase(id);
}

std::vector<int> handshake_registry::expired(time_point now) {
  std::vector<int> handles;
  // Accept times grow with ids (the caller's clock is monotonic): stop at the first young one.
  while (!pending_.empty()) {
    auto id = *pending_.begin();
    auto& e = entries_.at(id);
    if (now - e.accepted_at < limits_.deadline)
      break;
    e.st = state::closing;
    handles.push_back(e.handle);
    pending_.erase(pending_.begin());
  }
  return handles;
}

void handshake_registry::remove(uint64_t id) {
  pending_.erase(id);
  entries_.erase(id);
}

}  // namespace ordermesh::cluster_transport
