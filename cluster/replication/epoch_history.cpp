#include "cluster/replication/epoch_history.hpp"

#include <algorithm>

namespace ordermesh::cluster::replication {

bool epoch_history::begin(epoch_number epoch, position first) {
  if (!starts_.empty()) {
    const auto& last = starts_.back();
    if (epoch <= last.epoch || first < last.first)
      return false;
    if (first == last.first)
      starts_.pop_back();  // the previous epoch wrote nothing here
  }
  starts_.push_back({epoch, first});
  if (starts_.size() > max_epoch_history)
    starts_.erase(starts_.begin());
  return true;
}

void epoch_history::truncate_after(position end) {
  while (!starts_.empty() && starts_.back().first > end)
    starts_.pop_back();
}

epoch_number epoch_history::epoch_at(position p) const {
  if (p == 0)
    return 0;
  // The last start at or below p (starts are few: a linear scan from the top is enough).
  for (auto it = starts_.rbegin(); it != starts_.rend(); ++it) {
    if (it->first <= p)
      return it->epoch;
  }
  return 0;
}

std::optional<position> common_prefix(const epoch_history& a, position a_end,
                                      const epoch_history& b, position b_end) {
  position limit = std::min(a_end, b_end);
  if (limit == 0)
    return position{0};
  // Below `lo` one side has no known epoch. By log matching, agreeing at lo means agreeing
  // everywhere below it; disagreeing there (or not knowing) leaves nothing to compare.
  position lo = std::max(a.known_from(), b.known_from());
  if (lo == 0 || lo > limit || a.epoch_at(lo) != b.epoch_at(lo))
    return std::nullopt;
  // Between two consecutive boundaries of either history both epochs are constant: checking
  // each boundary in [lo, limit] ascending finds the first disagreement. At most
  // 2 * max_epoch_history boundaries.
  std::vector<position> points;
  for (const auto& s : a.starts())
    points.push_back(s.first);
  for (const auto& s : b.starts())
    points.push_back(s.first);
  std::sort(points.begin(), points.end());
  for (position p : points) {
    if (p <= lo || p > limit)
      continue;
    if (a.epoch_at(p) != b.epoch_at(p))
      return p - 1;
  }
  return limit;
}

}  // namespace ordermesh::cluster::replication
