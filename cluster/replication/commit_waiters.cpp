#include "cluster/replication/commit_waiters.hpp"

namespace ordermesh::cluster::replication {

void commit_waiters::add(batch_id id, const std::vector<std::pair<uint16_t, position>>& needs,
                         clock_time now) {
  auto& b = batches_[id];
  b.since = now;
  for (const auto& [shard, p] : needs) {
    auto& need = b.needs[shard];
    need = std::max(need, p);
  }
}

std::vector<commit_waiters::batch_id> commit_waiters::committed(uint16_t shard,
                                                                position committed) {
  std::vector<batch_id> done;
  for (auto it = batches_.begin(); it != batches_.end();) {
    auto need = it->second.needs.find(shard);
    if (need != it->second.needs.end() && need->second <= committed)
      it->second.needs.erase(need);
    if (it->second.needs.empty()) {
      done.push_back(it->first);
      it = batches_.erase(it);
    } else {
      ++it;
    }
  }
  return done;
}

std::vector<commit_waiters::batch_id> commit_waiters::fail_shard(uint16_t shard) {
  std::vector<batch_id> failed;
  for (auto it = batches_.begin(); it != batches_.end();) {
    if (it->second.needs.count(shard)) {
      failed.push_back(it->first);
      it = batches_.erase(it);
    } else {
      ++it;
    }
  }
  return failed;
}

std::vector<commit_waiters::batch_id> commit_waiters::expired(clock_time deadline) {
  std::vector<batch_id> gone;
  for (auto it = batches_.begin(); it != batches_.end();) {
    if (it->second.since < deadline) {
      gone.push_back(it->first);
      it = batches_.erase(it);
    } else {
      ++it;
    }
  }
  return gone;
}

}  // namespace ordermesh::cluster::replication
