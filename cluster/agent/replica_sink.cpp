#include "cluster/replica_sink.hpp"

#include <caf/all.hpp>

#include "cluster/agent/replication_roles.hpp"

namespace ordermesh::cluster {

replica_batch::~replica_batch() {
  answer(persistence::status::unavailable("replication stopped before the replicas answered"));
}

void replica_batch::answer(persistence::status st) {
  if (!done)
    return;
  auto f = std::move(done);
  done = nullptr;
  f(std::move(st));
}

void replica_sink::attach(caf::actor leader) {
  std::lock_guard<std::mutex> lock(mu_);
  leader_ = std::move(leader);
}

void replica_sink::set_replicated(std::shared_ptr<const std::vector<bool>> replicated) {
  std::lock_guard<std::mutex> lock(mu_);
  replicated_ = std::move(replicated);
}

caf::actor replica_sink::read_barrier(uint16_t shard) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!replicated_ || shard >= replicated_->size() || !(*replicated_)[shard])
    return {};
  return leader_;
}

void replica_sink::replicate(std::vector<persistence::shard_delta> deltas,
                             std::function<void(persistence::status)> done) {
  caf::actor leader;
  bool needed = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    leader = leader_;
    // Only shards written under ownership reach here; before the first shard map nothing is
    // owned, so an absent table means no shard is replicated yet.
    if (replicated_)
      for (const auto& d : deltas)
        if (d.shard < replicated_->size() && (*replicated_)[d.shard])
          needed = true;
  }
  if (!needed) {
    done(persistence::status::ok());
    return;
  }
  auto batch = std::make_shared<replica_batch>();
  batch->deltas = std::move(deltas);
  batch->done = std::move(done);
  if (!leader) {
    batch->answer(persistence::status::unavailable("this node's replica leader is not running"));
    return;
  }
  caf::anon_send(leader, agent::replica_batch_atom::value, std::move(batch));
}

}  // namespace ordermesh::cluster
