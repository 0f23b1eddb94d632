#include "cluster/failure_detector.hpp"

#include <algorithm>

namespace ordermesh::cluster {

// Watching an already watched node keeps its last-heard time: the node layer re-watches every
// member on each new view, and a reset there would hide a member that went silent.
void failure_detector::watch(const std::string& node_id, int64_t now_ms) {
  last_heard_.emplace(node_id, now_ms);
}

void failure_detector::forget(const std::string& node_id) {
  last_heard_.erase(node_id);
}

// A node we do not watch is not a member we track; hearing from it must not start tracking it,
// or a stray sender would be suspected (and reported) forever. Time only moves forward, so a
// late-delivered, older timestamp never shortens the grace a newer message gave.
void failure_detector::heard(const std::string& node_id, int64_t now_ms) {
  auto it = last_heard_.find(node_id);
  if (it != last_heard_.end())
    it->second = std::max(it->second, now_ms);
}

std::vector<std::string> failure_detector::suspects(int64_t now_ms) const {
  std::vector<std::string> out;
  for (const auto& [node_id, last] : last_heard_)
    if (now_ms - last > timeout_ms_)
      out.push_back(node_id);
  // unordered_map iteration order is unspecified; callers compare and log these lists.
  std::sort(out.begin(), out.end());
  return out;
}

bool failure_detector::alive(const std::string& node_id, int64_t now_ms) const {
  auto it = last_heard_.find(node_id);
  return it != last_heard_.end() && now_ms - it->second <= timeout_ms_;
}

}  // namespace ordermesh::cluster
