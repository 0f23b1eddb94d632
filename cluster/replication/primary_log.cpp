#include "cluster/replication/primary_log.hpp"

#include <algorithm>

namespace ordermesh::cluster::replication {

primary_log::primary_log(std::string self, epoch_number epoch, std::vector<std::string> replicas,
                         std::vector<std::string> isr, position log_end, position committed,
                         primary_config config, clock_time now)
    : self_(std::move(self)),
      epoch_(epoch),
      replicas_(std::move(replicas)),
      isr_(std::move(isr)),
      end_(log_end),
      committed_(std::min(committed, log_end)),
      config_(config) {
  for (const auto* set : {&replicas_, &isr_}) {
    for (const auto& n : *set) {
      if (n != self_)
        followers_[n].caught_up_at = followers_[n].heard_at = now;
    }
  }
  recompute();
}

bool primary_log::in(const std::vector<std::string>& set, const std::string& node) const {
  return std::find(set.begin(), set.end(), node) != set.end();
}

std::vector<std::string> primary_log::required() const {
  auto r = isr_;
  if (pending_ && pending_->what == isr_change::kind::expand && !in(r, pending_->member))
    r.push_back(pending_->member);
  return r;
}

bool primary_log::lagging(const follower& f, clock_time now) const {
  if (f.unreachable)
    return true;
  if (config_.max_silence.count() > 0 && now - f.heard_at > config_.max_silence)
    return true;
  if (f.acked >= end_)
    return false;
  // Before its first ack at this epoch a replica is judged by time only: it is still syncing.
  if (f.acked_this_epoch && end_ - f.acked > config_.max_lag_positions)
    return true;
  return now - f.caught_up_at > config_.max_lag_time;
}

void primary_log::recompute() {
  if (isr_.size() < config_.min_insync)
    return;  // nothing commits on fewer disks than min_insync
  position c = end_;
  for (const auto& m : required()) {
    if (m == self_)
      continue;
    auto it = followers_.find(m);
    bool acked = it != followers_.end() && it->second.acked_this_epoch;
    c = std::min(c, acked ? it->second.acked : position{0});
  }
  committed_ = std::max(committed_, c);
}

write_status primary_log::can_write(clock_time now) const {
  if (isr_.size() < config_.min_insync)
    return write_status::unavailable;
  // Too few members answer at all for a commit (nor would removals help: propose): refused at
  // once instead of held until the commit timeout.
  if (isr_.size() - silent_members(now) < config_.min_insync)
    return write_status::unavailable;
  if (isr_.size() > config_.min_insync)
    return write_status::ok;  // a laggard can be removed without going below min_insync
  for (const auto& m : isr_) {
    auto it = followers_.find(m);
    if (m != self_ && it != followers_.end() && lagging(it->second, now))
      return write_status::unavailable;  // it must stay, and commits would wait for it
  }
  return write_status::ok;
}

size_t primary_log::silent_members(clock_time now) const {
  size_t n = 0;
  for (const auto& m : isr_) {
    auto it = followers_.find(m);
    if (m == self_ || it == followers_.end())
      continue;
    const auto& f = it->second;
    if (f.unreachable ||
        (config_.max_silence.count() > 0 && now - f.heard_at > config_.max_silence))
      ++n;
  }
  return n;
}

position primary_log::local_durable(position p, clock_time now) {
  if (p <= end_)
    return committed_;
  for (auto& [id, f] : followers_) {
    if (f.acked >= end_)
      f.caught_up_at = now;  // caught up until this very append
  }
  end_ = p;
  recompute();
  return committed_;
}

bool primary_log::ack(const std::string& node, int64_t incarnation, epoch_number epoch,
                      position end, uint64_t round, clock_time now) {
  auto it = followers_.find(node);
  if (epoch != epoch_ || it == followers_.end() || end > end_)
    return false;
  auto& f = it->second;
  // Acks may arrive out of order: one answering an older round says less than we know. A newer
  // one may say less than before (the replica's disk was wiped and it synced again): believe it.
  if (f.acked_this_epoch && incarnation != f.incarnation) {
    f.round = f.ack_round = 0;  // another life: nothing the earlier one said holds
    f.acked_this_epoch = false;
  }
  if (!f.acked_this_epoch || round > f.ack_round) {
    f.acked = end;
  } else if (round == f.ack_round) {
    f.acked = std::max(f.acked, end);
  }
  f.acked_this_epoch = true;
  f.incarnation = incarnation;
  f.ack_round = std::max(f.ack_round, round);
  f.round = std::max(f.round, round);
  f.heard_at = now;
  f.unreachable = false;
  if (f.acked >= end_)
    f.caught_up_at = now;
  recompute();
  return true;
}

bool primary_log::heard(const std::string& node, int64_t incarnation, epoch_number epoch,
                        uint64_t round, clock_time now) {
  auto it = followers_.find(node);
  if (epoch != epoch_ || it == followers_.end() || !it->second.acked_this_epoch ||
      it->second.incarnation != incarnation)
    return false;
  auto& f = it->second;
  f.round = std::max(f.round, round);
  f.heard_at = now;
  f.unreachable = false;
  if (f.acked >= end_)
    f.caught_up_at = now;
  return true;
}

void primary_log::connection_lost(const std::string& node) {
  auto it = followers_.find(node);
  if (it != followers_.end())
    it->second.unreachable = true;
}

std::optional<isr_change> primary_log::propose(clock_time now) {
  if (pending_)
    return std::nullopt;
  auto ordered = [&](const std::vector<std::string>& members) {
    std::vector<std::string> out{self_};
    for (const auto& r : replicas_) {
      if (r != self_ && in(members, r))
        out.push_back(r);
    }
    for (const auto& m : members) {
      if (!in(out, m))
        out.push_back(m);
    }
    return out;
  };
  // A removal helps only if the members that still answer (slow or not) make min_insync once
  // every silent one is gone: otherwise writes stay paused either way, and the removal only
  // shrinks the set a successor can be chosen from. A primary that hears from none of its followers
  // is more likely cut off than they all are; removing them one by one while the others take its
  // shards over left each new primary alone in the ISR, its writes paused until a full copy.
  bool removal_helps = isr_.size() - silent_members(now) >= config_.min_insync;
  if (!removals_held_ && removal_helps && isr_.size() > config_.min_insync) {
    for (const auto& m : isr_) {
      auto it = followers_.find(m);
      if (m == self_ || it == followers_.end() || !lagging(it->second, now))
        continue;
      std::vector<std::string> rest;
      for (const auto& x : isr_) {
        if (x != m)
          rest.push_back(x);
      }
      pending_ = isr_change{ordered(rest), isr_change::kind::shrink, m, 0};
      return pending_;
    }
  }
  for (const auto& r : replicas_) {
    auto it = followers_.find(r);
    if (r == self_ || in(isr_, r) || it == followers_.end())
      continue;
    const auto& f = it->second;
    if (f.acked_this_epoch && f.acked >= committed_ && !lagging(f, now)) {
      auto grown = isr_;
      grown.push_back(r);
      pending_ = isr_change{ordered(grown), isr_change::kind::expand, r, f.incarnation};
      return pending_;
    }
  }
  return std::nullopt;
}

void primary_log::isr_changed(bool landed) {
  if (!pending_)
    return;
  if (landed)
    isr_ = pending_->isr;
  pending_.reset();
  recompute();
}

void primary_log::store_changed(std::vector<std::string> replicas, std::vector<std::string> isr,
                                clock_time now) {
  replicas_ = std::move(replicas);
  isr_ = std::move(isr);
  pending_.reset();
  for (auto it = followers_.begin(); it != followers_.end();) {
    if (in(replicas_, it->first) || in(isr_, it->first)) {
      ++it;
    } else {
      it = followers_.erase(it);
    }
  }
  for (const auto* set : {&replicas_, &isr_}) {
    for (const auto& n : *set) {
      if (n != self_ && !followers_.count(n))
        followers_[n].caught_up_at = followers_[n].heard_at = now;
    }
  }
  recompute();
}

bool primary_log::read_ready(const read_ticket& t) const {
  if (committed_ < t.reflects)
    return false;
  for (const auto& m : required()) {
    if (m == self_)
      continue;
    auto it = followers_.find(m);
    if (it == followers_.end() || !it->second.acked_this_epoch || it->second.round < t.round)
      return false;
  }
  return true;
}

}  // namespace ordermesh::cluster::replication
