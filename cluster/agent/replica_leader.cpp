// The primary's end of replication (docs/REPLICATION.md): every synced batch of a shard this
// node leads goes to the shard's other replicas; the batch is answered to the storage engine
// (and so to its writers) only once every member of the ISR holds it, synced, at this epoch
// (primary_log::committed). A replica that falls behind is sent the recent deltas from the
// shard's ring, or a full copy when the ring no longer reaches back far enough; one that does
// not keep up leaves the ISR by a txn that lands before any commit relies on the smaller set,
// and re-enters by txn once caught up. While the shard cannot commit (too few in-sync replicas)
// its writes are refused at submit (storage_engine::set_writes_paused), so they neither wait
// for a timeout nor hold the batches of other shards.
//
// Reads (the read barrier, docs/REPLICATION.md "Reads"): an entity of a led shard asks before it
// answers a read; the answer waits until what this node's storage holds of the shard is
// committed and every in-sync replica has answered a heartbeat (or an append) sent after the
// question arrived. The same heartbeats, sent every tick, keep a silent replica from staying in
// the ISR of an idle shard.
#include <algorithm>
#include <deque>
#include <set>

#include <spdlog/logger.h>
#include <caf/all.hpp>

#include "cluster/agent/replication_roles.hpp"
#include "cluster/replication/commit_waiters.hpp"
#include "cluster/replication/primary_log.hpp"
#include "persistence/storage_engine.hpp"

namespace ordermesh::cluster::agent {

namespace {

namespace co = coordination;
namespace rep = replication;
using clock_type = std::chrono::steady_clock;

constexpr std::chrono::milliseconds leader_tick{250};
constexpr std::chrono::milliseconds retry_after{250};
constexpr size_t max_deltas_per_append = 64;
constexpr size_t max_bytes_per_append = 1u << 20;
constexpr size_t copy_chunk_bytes = 256u << 10;
constexpr size_t max_reads_per_shard = 8192;  // read barrier waiters; beyond: overloaded

struct follower_link {
  caf::actor actor;
  rep::position next = 0;  // the next position to send it; 0: not known yet (probe)
  bool in_flight = false;  // one append or copy chunk at a time
  std::shared_ptr<persistence::shard_export> copy;  // a full copy in progress
  clock_type::time_point retry_at{};
  bool warned = false;
  int64_t incarnation = 0;  // the life it last acknowledged under (0: none yet)
  rep::position acked = 0;  // what it last acknowledged at this epoch
  uint64_t round = 0;       // the highest round it answered ok at this epoch (appends, beats)
  bool beat_in_flight = false;
  clock_type::time_point heard_at{};  // its last ok answer
};

/// A read waiting for the barrier.
struct read_waiter {
  rep::read_ticket ticket;
  caf::typed_response_promise<bool> rp;
  clock_type::time_point deadline;
};

struct led_shard {
  uint64_t epoch = 0;
  std::unique_ptr<rep::primary_log> log;
  co::shard_assignment assignment;  // the shard's key as last read
  std::map<std::string, follower_link> followers;
  bool txn_in_flight = false;
  /// An ISR change sent whose outcome is not known yet: sent again, with the same guard, until
  /// it lands, is refused, or a newer read of the key shows what happened.
  std::optional<co::shard_assignment> txn;
  int64_t txn_guard = 0;
  /// The key's revision an ISR change was refused at (the key had changed): no new change is
  /// proposed until a read newer than it arrives. Proposing again from the same stale read
  /// could only be refused again, and a node whose reads lag (a busy driver, a slow etcd) then
  /// sent a refused txn every tick for every shard it leads, which slowed its reads further.
  int64_t refused_at = -1;
  std::deque<read_waiter> reads;
};

struct prepare_round;

struct leader_state {
  replication_context_ptr ctx;
  std::vector<std::weak_ptr<prepare_round>> prepares;  // promotions waiting for tails
  replication_view_ptr view;
  std::map<uint16_t, led_shard> led;
  rep::commit_waiters waiters;
  std::map<uint64_t, replica_batch_ptr> batches;
  uint64_t next_batch = 0;
  static inline const char* name = "ordermesh.replica_leader";
};
using leader_ptr = caf::stateful_actor<leader_state>*;

const std::string& me(leader_ptr self) {
  return self->state.ctx->node_id;
}

void pump(leader_ptr self, uint16_t shard, const std::string& node);
void answer_reads(leader_ptr self, uint16_t shard);

/// The shard led at `epoch`, if this node still leads it at that epoch (answers arrive late).
led_shard* led_at(leader_ptr self, uint16_t shard, uint64_t epoch) {
  auto it = self->state.led.find(shard);
  return it != self->state.led.end() && it->second.epoch == epoch ? &it->second : nullptr;
}

void settle(leader_ptr self, uint16_t shard) {
  auto& s = self->state;
  auto l = s.led.find(shard);
  if (l == s.led.end())
    return;
  for (auto id : s.waiters.committed(shard, l->second.log->committed())) {
    auto b = s.batches.find(id);
    if (b != s.batches.end()) {
      b->second->answer(persistence::status::ok());
      s.batches.erase(b);
    }
  }
  answer_reads(self, shard);
}

void fail_batches(leader_ptr self, const std::vector<uint64_t>& ids, const std::string& why) {
  auto& s = self->state;
  for (auto id : ids) {
    auto b = s.batches.find(id);
    if (b != s.batches.end()) {
      b->second->answer(persistence::status::unavailable(why));
      s.batches.erase(b);
    }
  }
}

/// Pauses the shard's writes while it cannot commit, resumes them when it can.
void update_pause(leader_ptr self, uint16_t shard) {
  auto& s = self->state;
  auto l = s.led.find(shard);
  bool paused = l != s.led.end() &&
                l->second.log->can_write(clock_type::now()) == rep::write_status::unavailable;
  if (paused != s.ctx->storage->writes_paused(shard)) {
    s.ctx->storage->set_writes_paused(shard, paused);
    if (paused)
      s.ctx->log->warn("node={} shard {}: writes paused, too few in-sync replicas (ISR {})",
                       me(self), shard, l->second.assignment.isr.size());
    else
      s.ctx->log->info("node={} shard {}: writes resumed", me(self), shard);
  }
}

/// This node no longer leads `shard` at the epoch it led it at: what waits on it fails.
void end_lead(leader_ptr self, uint16_t shard, const std::string& why) {
  auto& s = self->state;
  auto l = s.led.find(shard);
  if (l == s.led.end())
    return;
  s.ctx->log->info("node={} shard {}: stops leading epoch {} ({})", me(self), shard,
                   l->second.epoch, why);
  for (auto& r : l->second.reads)
    r.rp.deliver(caf::make_error(caf::sec::runtime_error,
                                 "this node stopped leading the shard (" + why + ")"));
  s.led.erase(l);
  {
    std::lock_guard<std::mutex> lock(s.ctx->lag_mu);
    s.ctx->lag.erase(shard);
  }
  fail_batches(self, s.waiters.fail_shard(shard),
               "shard " + std::to_string(shard) + " changed primary before its replicas answered");
  s.ctx->storage->set_writes_paused(shard, false);
}

void sync_followers(leader_ptr self, led_shard& l) {
  auto& s = self->state;
  l.log->hold_removals(s.view->cut_off);
  for (auto it = l.followers.begin(); it != l.followers.end();) {
    const auto& r = l.assignment.replicas;
    if (std::find(r.begin(), r.end(), it->first) == r.end())
      it = l.followers.erase(it);
    else
      ++it;
  }
  for (const auto& r : l.assignment.replicas) {
    if (r == me(self))
      continue;
    auto f = s.view->followers.find(r);
    auto& link = l.followers[r];
    caf::actor actor = f != s.view->followers.end() ? f->second : caf::actor{};
    if ((link.actor && !actor) || (!actor && s.view->unreachable.count(r)))
      l.log->connection_lost(r);  // it lags from now on: leaves the ISR without waiting
    if (actor != link.actor) {
      link = follower_link{};  // a new connection (or none): start from what it says
      link.actor = actor;
    }
  }
}

/// The shard this node leads at `epoch`, set up on its first batch; null if it does not lead
/// it at that epoch (by the latest shard map and its storage).
led_shard* lead(leader_ptr self, uint16_t shard, uint64_t epoch, rep::position end_before) {
  auto& s = self->state;
  auto l = s.led.find(shard);
  if (l != s.led.end()) {
    if (l->second.epoch == epoch)
      return &l->second;
    end_lead(self, shard, "a new epoch");
  }
  if (!s.view || !s.view->state || shard >= s.view->state->shards.size() || !s.view->state->config)
    return nullptr;
  const auto& a = s.view->state->shards[shard];
  if (a.primary != me(self) || a.epoch != epoch || s.ctx->storage->owned_epoch(shard) != epoch)
    return nullptr;
  rep::primary_config pc;
  pc.min_insync = s.view->state->config->min_insync;
  pc.max_lag_positions = 100000;  // judged by time (lag_timeout): batches vary in size
  pc.max_lag_time = s.ctx->lag_timeout;
  pc.max_silence = s.ctx->lag_timeout;
  auto& n = s.led[shard];
  n.epoch = epoch;
  n.assignment = a;
  // Alone in the ISR (promoted with every other in-sync replica gone, or forced), this node's
  // log is the only one any later primary can start from: all of it counts as committed, so a
  // replica enters the ISR only once it holds all of it, and reads of it need no other answer.
  // With others in the ISR, what it inherited commits once they acknowledge it at this epoch.
  bool alone = a.isr.size() == 1 && a.isr.front() == me(self);
  n.log = std::make_unique<rep::primary_log>(me(self), epoch, a.replicas, a.isr, end_before,
                                             alone ? end_before : 0, pc, clock_type::now());
  sync_followers(self, n);
  s.ctx->log->info("node={} shard {}: leads epoch {} from position {}, replicas {}, ISR {}",
                   me(self), shard, epoch, end_before, a.replicas.size(), a.isr.size());
  update_pause(self, shard);  // at once: no write may slip in while the ISR is too small
  return &n;
}

/// Leads every shard this node owns as primary now, not only from its first write: its
/// replicas are probed, caught up and brought back into the ISR also while nobody writes.
void lead_owned(leader_ptr self) {
  auto& s = self->state;
  if (!s.view || !s.view->state)
    return;
  for (const auto& a : s.view->state->shards)
    if (a.primary == me(self) && a.replicas.size() > 1 && !s.led.count(a.shard) &&
        s.ctx->storage->owned_epoch(a.shard) == a.epoch)
      lead(self, a.shard, a.epoch, s.ctx->storage->replica_position(a.shard));
}

void beat(leader_ptr self, uint16_t shard, const std::string& node);

/// Answers the reads whose barrier is passed; asks for a newer round where one is still needed.
void answer_reads(leader_ptr self, uint16_t shard) {
  auto l = self->state.led.find(shard);
  if (l == self->state.led.end() || l->second.reads.empty())
    return;
  auto& led = l->second;
  uint64_t wanted = 0;
  for (auto it = led.reads.begin(); it != led.reads.end();) {
    if (led.log->read_ready(it->ticket)) {
      it->rp.deliver(true);
      it = led.reads.erase(it);
    } else {
      wanted = std::max(wanted, it->ticket.round);
      ++it;
    }
  }
  if (wanted == 0)
    return;
  std::vector<std::string> behind;
  for (const auto& [node, f] : led.followers)
    if (f.round < wanted)
      behind.push_back(node);
  for (const auto& n : behind)
    beat(self, shard, n);
}

/// Fails every read waiting on `shard` (this node is deposed there, or they waited too long).
void fail_reads(leader_ptr self, led_shard& l, const std::string& why,
                clock_type::time_point older_than = clock_type::time_point::max()) {
  for (auto it = l.reads.begin(); it != l.reads.end();) {
    if (it->deadline < older_than) {
      it->rp.deliver(caf::make_error(caf::sec::runtime_error, why));
      it = l.reads.erase(it);
    } else {
      ++it;
    }
  }
}

/// The read barrier (read_barrier_atom): see the top of this file.
caf::result<bool> read_barrier(leader_ptr self, uint16_t shard) {
  auto& s = self->state;
  auto l = s.led.find(shard);
  if (l == s.led.end()) {
    bool replicated = s.view && s.view->state && shard < s.view->state->shards.size() &&
                      s.view->state->shards[shard].replicas.size() > 1;
    if (!replicated)
      return true;  // the shard has no other replica: nothing to wait for
    return caf::make_error(caf::sec::runtime_error,
                           "this node does not lead the shard at the epoch it owns it");
  }
  auto& led = l->second;
  if (led.reads.size() >= max_reads_per_shard)
    return caf::make_error(caf::sec::runtime_error, "too many reads waiting for the replicas");
  auto ticket = led.log->begin_read();
  // What the entity showed is on this node's disk; the batch that wrote it may not have reached
  // this actor yet, so the storage's position, not the log's end, bounds what it reflects.
  ticket.reflects = std::max(ticket.reflects, s.ctx->storage->replica_position(shard));
  auto rp = self->make_response_promise<bool>();
  led.reads.push_back(read_waiter{ticket, rp, clock_type::now() + s.ctx->commit_timeout});
  answer_reads(self, shard);
  return rp;
}

void on_batch(leader_ptr self, replica_batch_ptr batch) {
  auto& s = self->state;
  auto now = clock_type::now();
  std::vector<std::pair<uint16_t, rep::position>> needs;
  std::string lost;
  for (const auto& d : batch->deltas) {
    if (d.shard < s.ctx->rings.size()) {
      std::lock_guard<std::mutex> lock(s.ctx->rings_mu);
      s.ctx->rings[d.shard].push(d);
    }
    auto* l = lead(self, d.shard, d.epoch, d.position - 1);
    if (!l) {
      lost = "this node does not lead shard " + std::to_string(d.shard) + " at epoch " +
             std::to_string(d.epoch) + " any more";
      continue;
    }
    l->log->local_durable(d.position, now);
    needs.emplace_back(d.shard, d.position);
  }
  if (!lost.empty()) {
    batch->answer(persistence::status::unavailable(lost));
  } else {
    auto id = ++s.next_batch;
    s.waiters.add(id, needs, now);
    s.batches.emplace(id, std::move(batch));
  }
  for (const auto& [shard, p] : needs) {
    auto l = s.led.find(shard);
    if (l == s.led.end())
      continue;
    std::vector<std::string> nodes;
    for (const auto& kv : l->second.followers)
      nodes.push_back(kv.first);
    for (const auto& n : nodes)
      pump(self, shard, n);
    settle(self, shard);
  }
}

bool in_isr(const led_shard& l, const std::string& node) {
  const auto& isr = l.assignment.isr;
  return std::find(isr.begin(), isr.end(), node) != isr.end();
}

void send_chunk(leader_ptr self, uint16_t shard, const std::string& node, bool first);

void start_copy(leader_ptr self, uint16_t shard, const std::string& node) {
  auto& s = self->state;
  auto& l = s.led.at(shard);
  auto& f = l.followers[node];
  if (in_isr(l, node)) {
    // Wiping an ISR member for a copy would leave etcd's ISR naming a replica without the
    // committed data: it leaves the ISR first (by lag), then it is copied.
    if (!f.warned)
      s.ctx->log->warn(
          "node={} shard {}: replica {} needs a full copy; waiting until it has "
          "left the ISR",
          me(self), shard, node);
    f.warned = true;
    f.retry_at = clock_type::now() + retry_after * 4;
    return;
  }
  persistence::status why;
  auto exp = s.ctx->storage->begin_export(shard, &why);
  if (!exp) {
    f.retry_at = clock_type::now() + retry_after;
    return;
  }
  f.copy = std::shared_ptr<persistence::shard_export>(exp.release());
  f.warned = false;
  s.ctx->log->info("node={} shard {}: full copy to {} as of position {}", me(self), shard, node,
                   f.copy->position());
  send_chunk(self, shard, node, true);
}

void send_chunk(leader_ptr self, uint16_t shard, const std::string& node, bool first) {
  auto& s = self->state;
  auto& l = s.led.at(shard);
  auto& f = l.followers[node];
  persistence::shard_chunk chunk;
  auto st = f.copy->next(copy_chunk_bytes, chunk);
  if (!st || !f.actor) {
    f.copy.reset();
    f.retry_at = clock_type::now() + retry_after;
    return;
  }
  std::vector<shard_record> records;
  records.reserve(chunk.records.size());
  for (auto& [k, v] : chunk.records)
    records.push_back(shard_record{std::move(k), std::move(v)});
  f.in_flight = true;
  auto epoch = l.epoch;
  auto position = f.copy->position();
  self->request(f.actor, s.ctx->request_timeout * 2, replica_copy_atom::value, shard, epoch, first,
                std::move(records), chunk.done, position, f.copy->epoch())
      .then(
          [self, shard, node, epoch, done = chunk.done, position](uint8_t code, uint64_t, uint64_t,
                                                                  int64_t incarnation) {
            auto* at = led_at(self, shard, epoch);
            if (!at)
              return;
            auto& link = at->followers[node];
            link.in_flight = false;
            if (static_cast<replica_reply>(code) != replica_reply::ok) {
              link.copy.reset();
              link.retry_at = clock_type::now() + retry_after;
              return;
            }
            if (!done) {
              send_chunk(self, shard, node, false);
              return;
            }
            link.copy.reset();
            link.next = position + 1;
            // The copy is our own log up to `position`, synced there: an ack like any other,
            // so the replica can re-enter the ISR without waiting for the next write.
            auto acked = std::min(position, at->log->log_end());
            at->log->ack(node, incarnation, epoch, acked, at->log->next_round(), clock_type::now());
            link.incarnation = incarnation;
            link.acked = acked;
            self->state.ctx->log->info("node={} shard {}: {} holds the copy, position {}", me(self),
                                       shard, node, position);
            settle(self, shard);
            pump(self, shard, node);
          },
          [self, shard, node, epoch](caf::error&) {
            auto* at = led_at(self, shard, epoch);
            if (!at)
              return;
            auto& link = at->followers[node];
            link.in_flight = false;
            link.copy.reset();
            link.retry_at = clock_type::now() + retry_after;
          });
}

void on_append_reply(leader_ptr self, uint16_t shard, uint64_t epoch, const std::string& node,
                     uint64_t round, bool probe, replica_reply code, uint64_t position,
                     uint64_t last_epoch, int64_t incarnation) {
  auto& s = self->state;
  auto l = s.led.find(shard);
  if (l == s.led.end() || l->second.epoch != epoch)
    return;
  auto& led = l->second;
  auto& f = led.followers[node];
  f.in_flight = false;
  auto now = clock_type::now();
  if (probe && code == replica_reply::ok) {
    // Where the replica stands, compared with our log: the same end at the same epoch is the
    // same history; shorter is a gap to send; anything else holds what we do not.
    auto mine = s.ctx->storage->replica(shard);
    if (position < mine.position) {
      code = replica_reply::behind;
    } else if (position != mine.position || last_epoch != mine.epoch) {
      code = replica_reply::diverged;
    }
  }
  switch (code) {
    case replica_reply::ok:
      led.log->ack(node, incarnation, epoch, std::min(position, led.log->log_end()), round, now);
      f.incarnation = incarnation;
      f.acked = std::min(position, led.log->log_end());
      f.next = position + 1;
      f.round = std::max(f.round, round);
      f.heard_at = now;
      settle(self, shard);
      update_pause(self, shard);
      pump(self, shard, node);
      return;
    case replica_reply::behind:
      f.next = position + 1;
      pump(self, shard, node);
      return;
    case replica_reply::diverged:
      start_copy(self, shard, node);
      return;
    case replica_reply::stale:
      // A replica has seen a newer epoch: this node was deposed. The shard map will say so;
      // nothing it holds from now on can commit.
      s.ctx->log->warn("node={} shard {}: {} has seen epoch {} (we lead {}): deposed", me(self),
                       shard, node, position, epoch);
      f.retry_at = now + retry_after * 4;
      fail_reads(self, led, "a replica has seen a newer epoch: this node was deposed");
      return;
    case replica_reply::owned:
    case replica_reply::failed:
      f.retry_at = now + retry_after;
      return;
  }
}

/// The link to `node` of a shard this node leads (and the shard), or nulls.
std::pair<led_shard*, follower_link*> link_to(leader_ptr self, uint16_t shard,
                                              const std::string& node) {
  auto l = self->state.led.find(shard);
  if (l == self->state.led.end())
    return {nullptr, nullptr};
  auto fi = l->second.followers.find(node);
  if (fi == l->second.followers.end())
    return {nullptr, nullptr};
  return {&l->second, &fi->second};
}

void pump(leader_ptr self, uint16_t shard, const std::string& node) {
  auto& s = self->state;
  auto [lp, fp] = link_to(self, shard, node);
  if (!fp)
    return;
  auto& led = *lp;
  auto& f = *fp;
  auto now = clock_type::now();
  if (!f.actor || f.in_flight || f.copy || now < f.retry_at)
    return;
  auto end = led.log->log_end();
  // Where a replica stands is not known at first: an empty append (a probe) asks.
  bool probe = f.next == 0;
  if (!probe && f.next > end)
    return;
  std::optional<std::vector<persistence::shard_delta>> ds;
  if (probe) {
    ds.emplace();
  } else {
    std::lock_guard<std::mutex> lock(s.ctx->rings_mu);
    ds = s.ctx->rings[shard].from(f.next, max_deltas_per_append, max_bytes_per_append);
  }
  // The ring is memory: after a restart it starts empty (last() 0), so "nothing from there on"
  // can also mean "not held any more". Our log reaches f.next, so it is the latter: a full copy.
  if (!ds || (ds->empty() && !probe && f.next <= end)) {
    start_copy(self, shard, node);
    return;
  }
  if (ds->empty() && !probe)
    return;
  std::vector<replica_delta> wire;
  wire.reserve(ds->size());
  for (const auto& d : *ds)
    wire.push_back(to_wire(d));
  f.in_flight = true;
  auto epoch = led.epoch;
  auto round = led.log->next_round();
  self->request(f.actor, s.ctx->request_timeout, replica_append_atom::value, shard, epoch,
                std::move(wire))
      .then(
          [self, shard, epoch, node, round, probe](uint8_t code, uint64_t position,
                                                   uint64_t last_epoch, int64_t incarnation) {
            on_append_reply(self, shard, epoch, node, round, probe,
                            static_cast<replica_reply>(code), position, last_epoch, incarnation);
          },
          [self, shard, epoch, node](caf::error&) {
            auto* at = led_at(self, shard, epoch);
            if (!at)
              return;
            auto& link = at->followers[node];
            link.in_flight = false;
            link.retry_at = clock_type::now() + retry_after;
          });
}

/// A heartbeat to `node` (one in flight per follower), once it has answered at this epoch: the
/// read barrier's round, and proof of life for the lag rule (primary_config::max_silence).
void beat(leader_ptr self, uint16_t shard, const std::string& node) {
  auto& s = self->state;
  auto [lp, fp] = link_to(self, shard, node);
  if (!fp)
    return;
  auto& led = *lp;
  auto& f = *fp;
  // Before its first ok at this epoch a follower is being probed (pump): that answer counts.
  if (!f.actor || f.beat_in_flight || f.incarnation == 0)
    return;
  f.beat_in_flight = true;
  auto epoch = led.epoch;
  auto round = led.log->next_round();
  self->request(f.actor, s.ctx->request_timeout, replica_beat_atom::value, shard, epoch)
      .then(
          [self, shard, epoch, node, round](uint8_t code, uint64_t position, uint64_t,
                                            int64_t incarnation) {
            auto* at = led_at(self, shard, epoch);
            if (!at)
              return;
            auto& link = at->followers[node];
            link.beat_in_flight = false;
            auto now = clock_type::now();
            switch (static_cast<replica_reply>(code)) {
              case replica_reply::ok:
                if (incarnation != link.incarnation) {
                  link.next = 0;  // a new life: where it stands is not known, probe it
                  link.incarnation = 0;
                  break;
                }
                // Nothing new about its log: the round and that it is alive.
                at->log->heard(node, incarnation, epoch, round, now);
                link.round = std::max(link.round, round);
                link.heard_at = now;
                update_pause(self, shard);
                break;
              case replica_reply::stale:
                self->state.ctx->log->warn(
                    "node={} shard {}: {} has seen epoch {} (we lead {}): deposed", me(self), shard,
                    node, position, epoch);
                fail_reads(self, *at, "a replica has seen a newer epoch: this node was deposed");
                return;
              default:
                break;
            }
            answer_reads(self, shard);
          },
          [self, shard, epoch, node](caf::error&) {
            if (auto* at = led_at(self, shard, epoch))
              at->followers[node].beat_in_flight = false;
          });
}

/// The ISR entry incarnations for `isr`: what the key holds for members already in it, this
/// node's own, and the one a replica acknowledged under for the member being added.
std::vector<int64_t> incarnations_for(const led_shard& l, const rep::isr_change& change,
                                      const std::string& self_id, int64_t self_incarnation) {
  std::map<std::string, int64_t> known;
  const auto& a = l.assignment;
  for (size_t i = 0; i < a.isr.size() && i < a.isr_disks.size(); ++i)
    known[a.isr[i]] = a.isr_disks[i];
  std::vector<int64_t> out;
  for (const auto& m : change.isr) {
    if (m == self_id)
      out.push_back(self_incarnation);
    else if (change.what == rep::isr_change::kind::expand && m == change.member)
      out.push_back(change.incarnation);
    else
      out.push_back(known.count(m) ? known[m] : 0);
  }
  return out;
}

void send_txn(leader_ptr self, uint16_t shard) {
  auto& s = self->state;
  auto& l = s.led.at(shard);
  if (l.txn_in_flight || !l.txn)
    return;
  l.txn_in_flight = true;
  auto epoch = l.epoch;
  auto guard = l.txn_guard;
  self->request(s.ctx->driver, s.ctx->request_timeout * 2, coord_write_atom::value, *l.txn,
                l.txn_guard)
      .then(
          [self, shard, epoch, guard](bool written) {
            auto* at = led_at(self, shard, epoch);
            if (!at)
              return;
            at->txn_in_flight = false;
            if (!at->txn || at->txn_guard != guard) {
              // The answer to a txn that a newer read of the key settled meanwhile (on_view:
              // it landed and shows there, or can no longer land). It says nothing of the
              // proposal made since, which waited for this answer: send that one now. Taking
              // it for the newer one's refusal left that one refused at the key's latest
              // revision, waiting for a newer read that never came (an ISR stuck at two of
              // three after a restart under load).
              send_txn(self, shard);
              return;
            }
            if (!written)
              at->refused_at = at->txn_guard;
            if (at->txn)
              self->state.ctx->log->info(
                  "node={} shard {}: ISR {} {}", me(self), shard,
                  written ? "now" : "change refused (the key changed), was to be",
                  fmt::join(at->txn->isr, ","));
            at->txn.reset();
            at->log->isr_changed(written);
            settle(self, shard);
            update_pause(self, shard);
          },
          [self, shard, epoch](caf::error&) {
            // Unknown outcome: sent again with the same guard on the next tick, unless a read
            // of the key shows what happened first.
            if (auto* at = led_at(self, shard, epoch))
              at->txn_in_flight = false;
          });
}

/// An ISR member that came back as a new life (a restart) keeps its place in the ISR by name,
/// but its entry names the old life, which failover ignores (that life's disk may be gone). Once
/// the new life has acknowledged everything committed, its entry is rewritten with the new
/// incarnation (and this node's own, after a restart of its own). Returns true if it sent one.
bool refresh_incarnations(leader_ptr self, uint16_t shard, led_shard& l) {
  auto& s = self->state;
  const auto& a = l.assignment;
  if (a.isr_disks.size() != a.isr.size() || l.log->pending())
    return false;
  auto fresh = a.isr_disks;
  bool changed = false;
  for (size_t i = 0; i < a.isr.size(); ++i) {
    int64_t now_life = fresh[i];
    if (a.isr[i] == me(self)) {
      now_life = s.ctx->incarnation.load();
    } else {
      auto f = l.followers.find(a.isr[i]);
      if (f != l.followers.end() && f->second.incarnation != 0 &&
          f->second.acked >= l.log->committed())
        now_life = f->second.incarnation;
    }
    if (now_life > 0 && now_life != fresh[i]) {
      fresh[i] = now_life;
      changed = true;
    }
  }
  if (!changed)
    return false;
  s.ctx->log->info("node={} shard {}: ISR {} under its members' current lives", me(self), shard,
                   fmt::join(a.isr, ","));
  auto next = a;
  next.isr_disks = std::move(fresh);
  l.txn = std::move(next);
  l.txn_guard = a.mod_revision;
  send_txn(self, shard);
  return true;
}

void propose(leader_ptr self, uint16_t shard, led_shard& l) {
  auto& s = self->state;
  if (l.txn)
    return send_txn(self, shard);
  if (l.assignment.mod_revision == l.refused_at)
    return;  // refused from this very read: wait for a newer one
  if (refresh_incarnations(self, shard, l))
    return;
  auto change = l.log->propose(clock_type::now());
  if (!change)
    return;
  auto incs = incarnations_for(l, *change, me(self), s.ctx->incarnation.load());
  if (std::find(incs.begin(), incs.end(), 0) != incs.end()) {
    l.log->isr_changed(false);  // an entry we cannot name an incarnation for: not now
    return;
  }
  s.ctx->log->info(
      "node={} shard {}: proposes ISR {} ({} {})", me(self), shard, fmt::join(change->isr, ","),
      change->what == rep::isr_change::kind::shrink ? "without" : "with", change->member);
  auto next = l.assignment;
  next.isr = change->isr;
  next.isr_disks = std::move(incs);
  l.txn = std::move(next);
  l.txn_guard = l.assignment.mod_revision;
  send_txn(self, shard);
}

/// A promotion's pull of the in-sync replicas' tails (replica_prepare_atom).
struct prepare_round {
  caf::typed_response_promise<bool> rp;
  uint16_t shard = 0;
  /// The in-sync replicas asked that have not answered: one whose connection is lost meanwhile
  /// counts as answered with nothing (on_view), since a request to a dead peer only ends by its
  /// timeout.
  std::set<std::string> waiting;
  std::vector<std::vector<replica_delta>> tails;
};
using prepare_ptr = std::shared_ptr<prepare_round>;

/// Applies the longest tail (every in-sync replica's log is a prefix of the old primary's, so
/// the tails are prefixes of each other) and answers.
void finish_prepare(leader_ptr self, const prepare_ptr& round) {
  auto& s = self->state;
  const std::vector<replica_delta>* longest = nullptr;
  for (const auto& t : round->tails)
    if (!longest || t.size() > longest->size())
      longest = &t;
  size_t applied = 0;
  if (longest) {
    for (const auto& w : *longest) {
      persistence::shard_delta d;
      if (!from_wire(w, d) || d.shard != round->shard)
        break;
      auto st = s.ctx->storage->apply_replicated(d);
      if (st.kind() == persistence::status::code::duplicate)
        continue;
      if (!st) {
        s.ctx->log->warn("node={} shard {}: cannot take a replica's tail at position {}: {}",
                         me(self), round->shard, d.position, st.to_string());
        break;
      }
      ++applied;
      std::lock_guard<std::mutex> lock(s.ctx->rings_mu);
      s.ctx->rings[round->shard].push(std::move(d));
    }
  }
  if (applied > 0)
    s.ctx->log->info("node={} shard {}: took {} batch(es) from an in-sync replica before leading",
                     me(self), round->shard, applied);
  round->rp.deliver(true);
}

caf::typed_response_promise<bool> prepare(leader_ptr self, uint16_t shard, uint64_t epoch) {
  auto& s = self->state;
  auto round = std::make_shared<prepare_round>();
  round->rp = self->make_response_promise<bool>();
  round->shard = shard;
  if (!s.view || !s.view->state || shard >= s.view->state->shards.size() ||
      shard >= s.ctx->rings.size()) {
    round->rp.deliver(true);
    return round->rp;
  }
  const auto& a = s.view->state->shards[shard];
  auto from = s.ctx->storage->replica_position(shard) + 1;
  for (const auto& m : a.isr) {
    auto f = s.view->followers.find(m);
    if (m == me(self) || f == s.view->followers.end())
      continue;
    round->waiting.insert(m);
    auto one_done = [self, round, m] {
      if (round->waiting.erase(m) && round->waiting.empty())
        finish_prepare(self, round);
    };
    self->request(f->second, std::chrono::milliseconds(1500), replica_tail_atom::value, shard,
                  epoch, from)
        .then(
            [self, round, one_done, m](uint8_t code, uint64_t position, uint64_t, int64_t,
                                       std::vector<replica_delta>& tail) {
              self->state.ctx->log->debug(
                  "node={} shard {}: {} answers the promotion with code {}, position {}, {} "
                  "batch(es)",
                  me(self), round->shard, m, code, position, tail.size());
              if (static_cast<replica_reply>(code) == replica_reply::ok && !tail.empty())
                round->tails.push_back(std::move(tail));
              one_done();
            },
            [self, round, one_done, m](caf::error& err) {
              self->state.ctx->log->warn("node={} shard {}: no tail from {} for the promotion: {}",
                                         me(self), round->shard, m, caf::to_string(err));
              one_done();
            });
  }
  if (round->waiting.empty())
    finish_prepare(self, round);
  else
    s.prepares.push_back(round);
  return round->rp;
}

/// Promotions waiting on a replica whose connection is now lost go on without it.
void prepares_without_unreachable(leader_ptr self) {
  auto& s = self->state;
  auto rounds = std::move(s.prepares);
  s.prepares.clear();
  for (auto& weak : rounds) {
    auto round = weak.lock();
    if (!round || round->waiting.empty())
      continue;  // finished
    for (const auto& node : s.view->unreachable) {
      if (round->waiting.erase(node))
        s.ctx->log->info("node={} shard {}: {} is unreachable; the promotion goes on without it",
                         me(self), round->shard, node);
    }
    if (round->waiting.empty())
      finish_prepare(self, round);
    else
      s.prepares.push_back(std::move(weak));
  }
}

void on_view(leader_ptr self, replication_view_ptr view) {
  auto& s = self->state;
  s.view = std::move(view);
  prepares_without_unreachable(self);
  if (!s.view->state)
    return;
  lead_owned(self);
  std::vector<uint16_t> shards;
  for (const auto& kv : s.led)
    shards.push_back(kv.first);
  auto now = clock_type::now();
  for (auto shard : shards) {
    auto& l = s.led.at(shard);
    if (shard >= s.view->state->shards.size()) {
      end_lead(self, shard, "no such shard");
      continue;
    }
    const auto& a = s.view->state->shards[shard];
    if (a.primary != me(self) || a.epoch != l.epoch) {
      end_lead(self, shard, "the shard map names epoch " + std::to_string(a.epoch));
      continue;
    }
    if (a.mod_revision != l.assignment.mod_revision) {
      bool settled_txn = l.txn && a.mod_revision != l.txn_guard;
      l.assignment = a;
      if (!l.txn || settled_txn) {
        // The key as read now: our change landed (it shows) or can no longer land.
        l.txn.reset();
        l.log->store_changed(a.replicas, a.isr, now);
      }
    }
    sync_followers(self, l);
    update_pause(self, shard);
    answer_reads(self, shard);
  }
}

/// Each follower's distance from our log, for cluster.status (a follower not heard from at this
/// epoch yet counts as the whole log behind).
void record_lag(leader_ptr self, uint16_t shard, const led_shard& l) {
  std::map<std::string, uint64_t> lag;
  auto end = l.log->log_end();
  for (const auto& [node, f] : l.followers)
    lag[node] = end - std::min(end, f.acked);
  std::lock_guard<std::mutex> lock(self->state.ctx->lag_mu);
  self->state.ctx->lag[shard] = std::move(lag);
}

void tick(leader_ptr self) {
  auto& s = self->state;
  auto now = clock_type::now();
  fail_batches(self, s.waiters.expired(now - s.ctx->commit_timeout),
               "the in-sync replicas did not acknowledge the write in time");
  lead_owned(self);
  std::vector<uint16_t> shards;
  for (const auto& kv : s.led)
    shards.push_back(kv.first);
  for (auto shard : shards) {
    auto& l = s.led.at(shard);
    propose(self, shard, l);
    std::vector<std::string> nodes;
    for (const auto& kv : l.followers)
      nodes.push_back(kv.first);
    for (const auto& n : nodes) {
      pump(self, shard, n);
      auto f = l.followers.find(n);
      if (f != l.followers.end() && now - f->second.heard_at >= leader_tick)
        beat(self, shard, n);
    }
    fail_reads(self, l, "the in-sync replicas did not answer the read barrier in time", now);
    update_pause(self, shard);
    record_lag(self, shard, s.led.at(shard));
  }
  self->delayed_send(self, leader_tick, replica_tick_atom::value);
}

caf::behavior replica_leader(leader_ptr self, replication_context_ptr ctx) {
  self->state.ctx = std::move(ctx);
  self->send(self, replica_tick_atom::value);
  return {
      [self](replica_batch_atom, replica_batch_ptr& batch) { on_batch(self, std::move(batch)); },
      [self](replica_view_atom, replication_view_ptr& view) { on_view(self, std::move(view)); },
      [self](replica_tick_atom) { tick(self); },
      [self](replica_prepare_atom, uint16_t shard, uint64_t epoch) {
        return prepare(self, shard, epoch);
      },
      [self](read_barrier_atom, uint16_t shard) { return read_barrier(self, shard); },
  };
}

}  // namespace

caf::actor spawn_replica_leader(caf::actor_system& sys, replication_context_ptr ctx) {
  return sys.spawn(replica_leader, std::move(ctx));
}

}  // namespace ordermesh::cluster::agent
