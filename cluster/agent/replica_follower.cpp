// The follower's end of replication: a primary's batches and full copies, applied to this
// node's storage (each synced before it is acknowledged). The storage engine enforces the
// rules (persistence/storage_engine.hpp, "Apply"): positions in order, never below the fence
// (the highest epoch seen for the shard), log matching through each batch's prev_epoch. This
// actor maps its answers onto replica_reply and keeps the applied batches in the shard's ring,
// so that it can catch the others up if it becomes primary. Detached: every call is a synced
// write.
#include <future>
#include <map>
#include <optional>

#include <spdlog/logger.h>
#include <caf/all.hpp>

#include "cluster/agent/replication_roles.hpp"
#include "persistence/storage_engine.hpp"

namespace ordermesh::cluster::agent {

namespace {

namespace ps = persistence;
using reply = std::tuple<uint8_t, uint64_t, uint64_t, int64_t>;
/// (id, index, status code, message): a queued delta's write is through (from the writer thread).
using applied_atom = caf::atom_constant<caf::atom("r_applied")>;
/// (id, status code, message): a promotion's fence is synced (from the writer thread).
using fenced_atom = caf::atom_constant<caf::atom("r_fenced")>;

/// One append being applied: its deltas are queued in the storage engine at once (so that many
/// shards' appends share a synced batch) and answered when the last one is through.
struct pending_apply {
  caf::typed_response_promise<uint8_t, uint64_t, uint64_t, int64_t> rp;
  uint16_t shard = 0;
  uint64_t epoch = 0;
  std::vector<ps::shard_delta> deltas;
  std::vector<std::optional<ps::status>> results;  // per delta, once its write is through
  size_t waiting = 0;
};

/// A promotion's pull waiting for its fence (tail, tail_fenced).
struct pending_tail {
  caf::typed_response_promise<uint8_t, uint64_t, uint64_t, int64_t, std::vector<replica_delta>> rp;
  uint16_t shard = 0;
  uint64_t from = 0;
};

struct follower_state {
  replication_context_ptr ctx;
  std::map<uint64_t, pending_apply> pending;
  std::map<uint64_t, pending_tail> tails;
  uint64_t next_id = 0;
  static inline const char* name = "ordermesh.replica_follower";
};
using follower_ptr = caf::stateful_actor<follower_state>*;

/// Every answer carries the replica's log end and the epoch of its last batch: same position
/// and epoch on two nodes means the same history (log matching).
reply answer(const replication_context& ctx, uint16_t shard, replica_reply r, uint64_t position) {
  uint64_t last_epoch = shard < ctx.rings.size() ? ctx.storage->replica(shard).epoch : 0;
  return reply{static_cast<uint8_t>(r), position, last_epoch, ctx.incarnation.load()};
}

/// Why the storage refused a write to `shard` for a sender at `epoch`.
reply refused(const replication_context& ctx, uint16_t shard, uint64_t epoch,
              const ps::status& st) {
  auto& storage = *ctx.storage;
  switch (st.kind()) {
    case ps::status::code::out_of_order:
      return answer(ctx, shard, replica_reply::behind, storage.replica_position(shard));
    case ps::status::code::diverged:
      return answer(ctx, shard, replica_reply::diverged, storage.replica_position(shard));
    default:
      break;
  }
  if (storage.owned_epoch(shard) != 0)
    return answer(ctx, shard, replica_reply::owned, storage.owned_epoch(shard));
  auto fence = storage.replica(shard).fence;
  if (fence > epoch)
    return answer(ctx, shard, replica_reply::stale, fence);
  // The sender's epoch is current but one of its batches predates what this replica has seen
  // (a catch-up across an epoch it observed already): only a full copy can bring it level.
  if (st.kind() == ps::status::code::invalid)
    return answer(ctx, shard, replica_reply::diverged, storage.replica_position(shard));
  return answer(ctx, shard, replica_reply::failed, storage.replica_position(shard));
}

ps::status status_of(uint8_t code, std::string message) {
  using c = ps::status::code;
  switch (static_cast<c>(code)) {
    case c::ok:
      return ps::status::ok();
    case c::duplicate:
      return ps::status::duplicate(std::move(message));
    case c::out_of_order:
      return ps::status::out_of_order(std::move(message));
    case c::diverged:
      return ps::status::diverged(std::move(message));
    case c::invalid:
      return ps::status::invalid(std::move(message));
    case c::overloaded:
      return ps::status::overloaded(std::move(message));
    default:
      return ps::status::io_error(std::move(message));
  }
}

/// A sender at `epoch` exists: the fence goes up to it (synced) before this replica answers,
/// so its copy of the shard is never deleted as "not a replica at `epoch`" (forget_replica)
/// after a primary of that epoch heard what it holds (replica_forget.cpp). A shard this node owns
/// is left alone (its answers say owned; demote settles it).
void see_epoch(const replication_context& ctx, uint16_t shard, uint64_t epoch) {
  auto& storage = *ctx.storage;
  if (storage.owned_epoch(shard) != 0 || storage.replica(shard).fence >= epoch)
    return;
  if (auto st = storage.fence_replica(shard, epoch); !st)
    ctx.log->warn("node={} shard {}: cannot record epoch {}: {}", ctx.node_id, shard, epoch,
                  st.to_string());
}

/// Every delta of the append is through: the answer is the first refusal's, in order, or ok.
void finish_apply(follower_ptr self, uint64_t id) {
  auto& st = self->state;
  auto it = st.pending.find(id);
  if (it == st.pending.end() || it->second.waiting > 0)
    return;
  auto& p = it->second;
  auto& ctx = *st.ctx;
  reply r = answer(ctx, p.shard, replica_reply::ok, ctx.storage->replica_position(p.shard));
  for (size_t i = 0; i < p.results.size(); ++i) {
    const auto& res = *p.results[i];
    if (res.kind() == ps::status::code::duplicate)
      continue;
    if (!res) {
      r = refused(ctx, p.shard, p.epoch, res);
      break;
    }
    std::lock_guard<std::mutex> lock(ctx.rings_mu);
    ctx.rings[p.shard].push(std::move(p.deltas[i]));
  }
  p.rp.deliver(std::get<0>(r), std::get<1>(r), std::get<2>(r), std::get<3>(r));
  st.pending.erase(it);
}

caf::result<uint8_t, uint64_t, uint64_t, int64_t> apply(follower_ptr self, uint16_t shard,
                                                        uint64_t epoch,
                                                        const std::vector<replica_delta>& deltas) {
  auto& st = self->state;
  auto& ctx = *st.ctx;
  auto& storage = *ctx.storage;
  auto now = [&](const reply& r) {
    return caf::result<uint8_t, uint64_t, uint64_t, int64_t>(std::get<0>(r), std::get<1>(r),
                                                             std::get<2>(r), std::get<3>(r));
  };
  if (shard >= ctx.rings.size() || deltas.size() > 4096 || st.pending.size() >= 4096)
    return now(answer(ctx, shard, replica_reply::failed, 0));
  auto fence = storage.replica(shard).fence;
  if (fence > epoch)
    return now(answer(ctx, shard, replica_reply::stale, fence));
  see_epoch(ctx, shard, epoch);
  pending_apply p;
  p.shard = shard;
  p.epoch = epoch;
  for (const auto& w : deltas) {
    ps::shard_delta d;
    if (w.shard != shard || w.epoch > epoch || !from_wire(w, d))
      return now(answer(ctx, shard, replica_reply::failed, storage.replica_position(shard)));
    if (epoch > d.epoch)
      d.sent_at_epoch = epoch;  // a batch of an older epoch from the current primary
    p.deltas.push_back(std::move(d));
  }
  if (p.deltas.empty())  // a probe
    return now(answer(ctx, shard, replica_reply::ok, storage.replica_position(shard)));
  auto id = ++st.next_id;
  p.rp = self->make_response_promise<uint8_t, uint64_t, uint64_t, int64_t>();
  p.results.resize(p.deltas.size());
  auto rp = p.rp;
  auto& slot = st.pending.emplace(id, std::move(p)).first->second;
  caf::actor me = caf::actor_cast<caf::actor>(self);
  for (size_t i = 0; i < slot.deltas.size(); ++i) {
    ps::status why;
    auto done = [me, id, i](const ps::status& result) {
      caf::send_as(me, me, applied_atom::value, id, static_cast<uint64_t>(i),
                   static_cast<uint8_t>(result.kind()), result.message());
    };
    if (!storage.submit_replicated(slot.deltas[i], done, &why)) {
      // Not queued (full, failing): this one answers for itself, the rest are not sent.
      slot.results[i] = why;
      slot.results.resize(i + 1);
      slot.deltas.resize(i + 1);
      break;
    }
    ++slot.waiting;
  }
  if (slot.waiting == 0)
    finish_apply(self, id);
  return rp;
}

/// The refusal of a sender at `epoch` that this replica does not follow for `shard` (no such
/// shard; it owns the shard itself; it has seen a newer epoch), or nothing.
std::optional<reply> not_following(const replication_context& ctx, uint16_t shard, uint64_t epoch) {
  auto& storage = *ctx.storage;
  if (shard >= ctx.rings.size())
    return answer(ctx, shard, replica_reply::failed, 0);
  if (storage.owned_epoch(shard) != 0)
    return answer(ctx, shard, replica_reply::owned, storage.owned_epoch(shard));
  auto fence = storage.replica(shard).fence;
  if (fence > epoch)
    return answer(ctx, shard, replica_reply::stale, fence);
  return std::nullopt;
}

reply copy_chunk(follower_ptr self, uint16_t shard, uint64_t epoch, bool first,
                 std::vector<shard_record>& records, bool done, uint64_t position,
                 uint64_t position_epoch) {
  auto& ctx = *self->state.ctx;
  auto& storage = *ctx.storage;
  if (auto no = not_following(ctx, shard, epoch))
    return *no;
  see_epoch(ctx, shard, epoch);
  if (first) {
    ctx.log->info("node={} shard {}: full copy from the primary of epoch {} (position {})",
                  ctx.node_id, shard, epoch, position);
    {
      std::lock_guard<std::mutex> lock(ctx.rings_mu);
      ctx.rings[shard].clear();
    }
    auto st = storage.delete_shard(shard);
    if (!st)
      return refused(ctx, shard, epoch, st);
  }
  if (!records.empty()) {
    ps::shard_records rs;
    rs.reserve(records.size());
    for (auto& r : records)
      rs.emplace_back(std::move(r.key), std::move(r.value));
    std::promise<ps::status> synced;
    auto result = synced.get_future();
    ps::status why;
    if (!storage.submit_import(
            shard, std::move(rs), [&synced](const ps::status& st) { synced.set_value(st); }, &why))
      return refused(ctx, shard, epoch, why);
    auto st = result.get();
    if (!st)
      return refused(ctx, shard, epoch, st);
  }
  if (done) {
    auto st = storage.reset_replica(shard, position_epoch, position);
    if (!st)
      return refused(ctx, shard, epoch, st);
    ctx.log->info("node={} shard {}: full copy installed at position {}", ctx.node_id, shard,
                  position);
  }
  return answer(ctx, shard, replica_reply::ok, storage.replica_position(shard));
}

using tail_reply = std::tuple<uint8_t, uint64_t, uint64_t, int64_t, std::vector<replica_delta>>;
using tail_result = caf::result<uint8_t, uint64_t, uint64_t, int64_t, std::vector<replica_delta>>;

/// `r` (at `position`) with `out` as the tail.
tail_reply tail_answer(const replication_context& ctx, uint16_t shard, replica_reply r,
                       uint64_t position, std::vector<replica_delta> out = {}) {
  auto a = answer(ctx, shard, r, position);
  return tail_reply{std::get<0>(a), std::get<1>(a), std::get<2>(a), std::get<3>(a), std::move(out)};
}

tail_result tail_now(tail_reply r) {
  return tail_result(std::get<0>(r), std::get<1>(r), std::get<2>(r), std::get<3>(r),
                     std::move(std::get<4>(r)));
}

/// The ring from `from` on, once the fence at the promoted epoch is synced.
tail_reply tail_after_fence(replication_context& ctx, uint16_t shard, uint64_t from) {
  std::vector<replica_delta> out;
  std::optional<std::vector<ps::shard_delta>> ds;
  {
    std::lock_guard<std::mutex> lock(ctx.rings_mu);
    ds = ctx.rings[shard].from(from, 4096, 4u << 20);
  }
  if (ds)
    for (const auto& d : *ds)
      out.push_back(to_wire(d));
  return tail_answer(ctx, shard, replica_reply::ok, ctx.storage->replica_position(shard),
                     std::move(out));
}

/// A promotion's pull (replica_tail_atom): fences the shard at `epoch`, then answers the
/// replica's log from `from` on. The fence is queued without waiting (fence_replica_async), so
/// the fences of every shard a promotion pulls at once share one synced batch instead of one
/// fsync each in a row (which cost about a second for twenty shards on a busy disk); the
/// answer waits for it (tail_fenced).
tail_result tail(follower_ptr self, uint16_t shard, uint64_t epoch, uint64_t from) {
  auto& st = self->state;
  auto& ctx = *st.ctx;
  if (shard >= ctx.rings.size() || from == 0)
    return tail_now(tail_answer(ctx, shard, replica_reply::failed, 0));
  auto& storage = *ctx.storage;
  if (storage.owned_epoch(shard) != 0)
    return tail_now(tail_answer(ctx, shard, replica_reply::owned, storage.owned_epoch(shard)));
  auto fence = storage.replica(shard).fence;
  if (fence > epoch)
    return tail_now(tail_answer(ctx, shard, replica_reply::stale, fence));
  if (st.tails.size() >= 4096)
    return tail_now(
        tail_answer(ctx, shard, replica_reply::failed, storage.replica_position(shard)));
  // From now on nothing of an older epoch is taken: a deposed primary that wakes up cannot hand
  // this replica a batch the new primary, which has just asked, would then lack. The writer
  // checks every delta queued after the fence against it, in queue order.
  auto id = ++st.next_id;
  auto& pt = st.tails[id];
  pt.rp = self->make_response_promise<uint8_t, uint64_t, uint64_t, int64_t,
                                      std::vector<replica_delta>>();
  pt.shard = shard;
  pt.from = from;
  auto rp = pt.rp;
  caf::actor me = caf::actor_cast<caf::actor>(self);
  storage.fence_replica_async(shard, epoch, [me, id](const ps::status& result) {
    caf::send_as(me, me, fenced_atom::value, id, static_cast<uint8_t>(result.kind()),
                 result.message());
  });
  return rp;
}

/// The fence of tail `id` is through: its answer (the deltas applied before it are in the ring
/// by now: their completions were queued to this actor before this one).
void tail_fenced(follower_ptr self, uint64_t id, uint8_t code) {
  auto& st = self->state;
  auto it = st.tails.find(id);
  if (it == st.tails.end())
    return;
  auto& ctx = *st.ctx;
  auto& pt = it->second;
  tail_reply r = static_cast<ps::status::code>(code) == ps::status::code::ok
                     ? tail_after_fence(ctx, pt.shard, pt.from)
                     : tail_answer(ctx, pt.shard, replica_reply::failed,
                                   ctx.storage->replica_position(pt.shard));
  pt.rp.deliver(std::get<0>(r), std::get<1>(r), std::get<2>(r), std::get<3>(r),
                std::move(std::get<4>(r)));
  st.tails.erase(it);
}

/// A heartbeat: ok while this replica has seen no newer epoch and does not own the shard itself
/// (then it is a follower of `epoch` that its successor, if any, has not reached yet).
reply beat(follower_ptr self, uint16_t shard, uint64_t epoch) {
  auto& ctx = *self->state.ctx;
  if (auto no = not_following(ctx, shard, epoch))
    return *no;
  see_epoch(ctx, shard, epoch);
  return answer(ctx, shard, replica_reply::ok, ctx.storage->replica_position(shard));
}

/// Where the message being handled came from: a primary's messages are taken only from a node
/// that proved its member id in the agents' hello (peer_links.cpp), this node's own completions
/// only from this node (any connected node can address an actor whose handle it has seen).
sender_kind sender_of(follower_ptr self) {
  std::string member;
  return classify_sender(self->current_sender(), self->node(), *self->state.ctx->proven, &member);
}

caf::behavior replica_follower(follower_ptr self, replication_context_ptr ctx) {
  self->state.ctx = std::move(ctx);
  auto from_member = [self] { return sender_of(self) != sender_kind::unknown; };
  auto local = [self] { return sender_of(self) == sender_kind::this_node; };
  return {
      [self, from_member](replica_append_atom, uint16_t shard, uint64_t epoch,
                          const std::vector<replica_delta>& deltas)
          -> caf::result<uint8_t, uint64_t, uint64_t, int64_t> {
        if (!from_member()) {
          auto r = answer(*self->state.ctx, shard, replica_reply::failed, 0);
          return {std::get<0>(r), std::get<1>(r), std::get<2>(r), std::get<3>(r)};
        }
        return apply(self, shard, epoch, deltas);
      },
      [self, local](applied_atom, uint64_t id, uint64_t index, uint8_t code, std::string& message) {
        if (!local())
          return;
        auto it = self->state.pending.find(id);
        if (it == self->state.pending.end() || index >= it->second.results.size())
          return;
        it->second.results[index] = status_of(code, std::move(message));
        --it->second.waiting;
        finish_apply(self, id);
      },
      [self, from_member](replica_copy_atom, uint16_t shard, uint64_t epoch, bool first,
                          std::vector<shard_record>& records, bool done, uint64_t position,
                          uint64_t position_epoch) {
        if (!from_member())
          return answer(*self->state.ctx, shard, replica_reply::failed, 0);
        return copy_chunk(self, shard, epoch, first, records, done, position, position_epoch);
      },
      [self, from_member](replica_tail_atom, uint16_t shard, uint64_t epoch, uint64_t from) {
        if (!from_member())
          return tail_now(tail_answer(*self->state.ctx, shard, replica_reply::failed, 0));
        return tail(self, shard, epoch, from);
      },
      [self, local](fenced_atom, uint64_t id, uint8_t code, const std::string&) {
        if (local())
          tail_fenced(self, id, code);
      },
      [self, from_member](replica_beat_atom, uint16_t shard, uint64_t epoch) {
        if (!from_member())
          return answer(*self->state.ctx, shard, replica_reply::failed, 0);
        return beat(self, shard, epoch);
      },
  };
}

}  // namespace

replica_delta to_wire(const persistence::shard_delta& d) {
  replica_delta w;
  w.shard = d.shard;
  w.epoch = d.epoch;
  w.position = d.position;
  w.prev_epoch = d.prev_epoch;
  w.ops.reserve(d.records.size());
  w.keys.reserve(d.records.size());
  w.values.reserve(d.records.size());
  for (const auto& r : d.records) {
    w.ops.push_back(r.kind == persistence::replica_record::op::put ? 'p' : 'e');
    w.keys.push_back(r.key);
    w.values.push_back(r.value);
  }
  return w;
}

bool from_wire(const replica_delta& w, persistence::shard_delta& out) {
  if (w.ops.size() != w.keys.size() || w.keys.size() != w.values.size())
    return false;
  out.shard = w.shard;
  out.epoch = w.epoch;
  out.position = w.position;
  out.prev_epoch = w.prev_epoch;
  out.records.clear();
  out.records.reserve(w.ops.size());
  for (size_t i = 0; i < w.ops.size(); ++i) {
    persistence::replica_record r;
    if (w.ops[i] == 'p') {
      r.kind = persistence::replica_record::op::put;
    } else if (w.ops[i] == 'e') {
      r.kind = persistence::replica_record::op::erase;
    } else {
      return false;
    }
    r.key = w.keys[i];
    r.value = w.values[i];
    out.records.push_back(std::move(r));
  }
  return true;
}

caf::actor spawn_replica_follower(caf::actor_system& sys, replication_context_ptr ctx) {
  return sys.spawn<caf::detached>(replica_follower, std::move(ctx));
}

}  // namespace ordermesh::cluster::agent
