#pragma once
// Heartbeat failure detection: every node sends a heartbeat to every member each interval; a
// member not heard from within the timeout is suspected unreachable. Time is passed in, so the
// detector is deterministic and tested without sleeping.
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

namespace ordermesh::cluster {

class failure_detector {
 public:
  explicit failure_detector(int64_t timeout_ms) : timeout_ms_(timeout_ms) {}

  /// Starts watching `node_id` as if just heard from (a member just learned of gets a full
  /// timeout before it can be suspected).
  void watch(const std::string& node_id, int64_t now_ms);
  void forget(const std::string& node_id);
  /// A heartbeat (or any message) from `node_id` arrived.
  void heard(const std::string& node_id, int64_t now_ms);

  /// Members not heard from for longer than the timeout, sorted.
  std::vector<std::string> suspects(int64_t now_ms) const;
  /// True when watched and heard from within the timeout.
  bool alive(const std::string& node_id, int64_t now_ms) const;

 private:
  int64_t timeout_ms_;
  std::unordered_map<std::string, int64_t> last_heard_;
};

}  // namespace ordermesh::cluster
