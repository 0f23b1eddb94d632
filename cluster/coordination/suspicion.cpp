#include "cluster/coordination/suspicion.hpp"

#include <algorithm>

namespace ordermesh::cluster::coordination {

bool is_refusal(const peer_signals& p, suspicion_clock::time_point started,
                suspicion_clock::time_point failed) {
  return !p.connected && p.down_since && failed >= started && failed - started < refusal_window;
}

bool is_suspected(const peer_signals& p, suspicion_clock::time_point now,
                  std::chrono::milliseconds suspect_after) {
  if (suspect_after.count() <= 0)
    return false;
  auto long_ago = [&](const std::optional<suspicion_clock::time_point>& t) {
    return t && now - *t >= suspect_after;
  };
  if (p.connected)
    return long_ago(p.silent_since);
  return (p.down_since && p.refused_since) || long_ago(p.down_since);
}

bool is_cut_off(size_t members, size_t silent, size_t gone) {
  if (silent == 0 || gone >= members)
    return false;
  auto alive = members - gone;
  auto reached = alive - std::min(silent, alive);
  return reached * 2 <= alive;
}

}  // namespace ordermesh::cluster::coordination
