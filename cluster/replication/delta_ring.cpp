#include "cluster/replication/delta_ring.hpp"

namespace ordermesh::cluster::replication {

size_t delta_ring::size_of(const persistence::shard_delta& d) {
  size_t n = 32;
  for (const auto& r : d.records)
    n += r.key.size() + r.value.size() + 8;
  return n;
}

void delta_ring::push(persistence::shard_delta d) {
  if (!ring_.empty() && d.position != ring_.back().position + 1)
    clear();
  bytes_ += size_of(d);
  ring_.push_back(std::move(d));
  // Keep the newest even when it alone is over the byte bound: a replica needs it next.
  while (ring_.size() > 1 && (ring_.size() > max_deltas_ || bytes_ > max_bytes_)) {
    bytes_ -= size_of(ring_.front());
    ring_.pop_front();
  }
}

void delta_ring::clear() {
  ring_.clear();
  bytes_ = 0;
}

std::optional<std::vector<persistence::shard_delta>> delta_ring::from(position from,
                                                                      size_t max_count,
                                                                      size_t max_bytes) const {
  std::vector<persistence::shard_delta> out;
  if (from > last())
    return out;
  if (ring_.empty() || from < first())
    return std::nullopt;
  size_t bytes = 0;
  for (size_t i = from - first(); i < ring_.size() && out.size() < max_count; ++i) {
    auto n = size_of(ring_[i]);
    if (!out.empty() && bytes + n > max_bytes)
      break;
    bytes += n;
    out.push_back(ring_[i]);
  }
  return out;
}

}  // namespace ordermesh::cluster::replication
