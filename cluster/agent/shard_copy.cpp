// Both ends of a handoff's copy. The primary freezes the shard, releases it (synced: it writes
// it no more) and sends its key range in chunks; the target imports each chunk (synced) before
// it answers. Neither end decides whether the move happens: the flip in the store does.
#include <spdlog/logger.h>
#include <caf/all.hpp>

#include "cluster/agent/agent_state.hpp"
#include "persistence/storage_engine.hpp"

namespace ordermesh::cluster::agent {

void cancel_receive(self_ptr self, uint16_t shard) {
  auto& s = self->state;
  s.local[shard] = co::local_shard{};
  if (s.storage->owned_epoch(shard) == 0)
    (void)s.storage->delete_shard(shard);
}

void fail_copy(self_ptr self, uint16_t shard, const std::string& why) {
  auto& s = self->state;
  auto it = s.outgoing.find(shard);
  if (it == s.outgoing.end())
    return;
  s.log->warn("node={} handoff of shard {} to {} failed: {}", me(self), shard, it->second.to, why);
  s.local[shard].progress = handoff::failed;
  reconcile(self);
}

void send_chunk(self_ptr self, uint16_t shard, std::string after_key) {
  auto& s = self->state;
  auto it = s.outgoing.find(shard);
  if (it == s.outgoing.end() || s.local[shard].progress != handoff::sending)
    return;
  auto p = s.peers.find(it->second.to);
  if (p == s.peers.end() || !p->second.agent) {
    fail_copy(self, shard, "target not connected");
    return;
  }
  persistence::shard_chunk chunk;
  auto st = s.storage->export_shard(shard, after_key, s.cfg.chunk_bytes, chunk);
  if (!st) {
    fail_copy(self, shard, "export: " + st.to_string());
    return;
  }
  std::vector<shard_record> records;
  records.reserve(chunk.records.size());
  for (auto& [k, v] : chunk.records)
    records.push_back(shard_record{std::move(k), std::move(v)});
  auto revision = it->second.move_revision;
  bool done = chunk.done;
  auto last = chunk.last_key;
  self->request(p->second.agent, s.cfg.request_timeout, copy_atom::value, shard, revision,
                after_key.empty(), std::move(records), done)
      .then(
          [self, shard, revision, done, last](bool ok) {
            auto& ss = self->state;
            auto out = ss.outgoing.find(shard);
            if (out == ss.outgoing.end() || out->second.move_revision != revision)
              return;  // ended meanwhile (flipped, or aborted)
            if (!ok) {
              fail_copy(self, shard, "the target refused a chunk");
              return;
            }
            if (!done) {
              if (ss.cfg.chunk_delay.count() > 0)
                self->delayed_send(self, ss.cfg.chunk_delay, next_chunk_atom::value, shard, last);
              else
                send_chunk(self, shard, last);
              return;
            }
            // Everything is on the target's disk: it writes the flip. If it does not in time,
            // we abort, and the store's compare-and-set picks exactly one of the two.
            ss.local[shard].progress = handoff::sent;
            out->second.since = clock_type::now();
          },
          [self, shard, revision](caf::error& err) {
            auto out = self->state.outgoing.find(shard);
            if (out != self->state.outgoing.end() && out->second.move_revision == revision)
              fail_copy(self, shard, caf::to_string(err));
          });
}

void start_copy(self_ptr self, const co::shard_step& step) {
  auto& s = self->state;
  auto shard = step.shard;
  auto p = s.peers.find(step.peer);
  if (p == s.peers.end() || !p->second.agent || p->second.supervisors.empty()) {
    // Not connected yet (it may have just joined): keep trying for a while, then give up.
    auto since = s.waiting_target.emplace(shard, clock_type::now()).first->second;
    if (clock_type::now() - since > s.cfg.connect_timeout) {
      s.waiting_target.erase(shard);
      s.local[shard].progress = handoff::failed;
      s.local[shard].move_revision = step.move_revision;
      s.log->warn("node={} cannot reach {} to hand it shard {}", me(self), step.peer, shard);
    }
    return;
  }
  s.waiting_target.erase(shard);
  auto& l = s.local[shard];
  l.progress = handoff::sending;
  l.move_revision = step.move_revision;
  l.peer = step.peer;
  s.outgoing[shard] = outgoing_copy{step.peer, step.move_revision, clock_type::now()};
  s.busy[shard] = true;
  s.log->info("node={} handing shard {} to {} (epoch {})", me(self), shard, step.peer, step.epoch);
  publish_routes(self);
  auto revision = step.move_revision;
  // Stop the shard: its supervisor holds new requests and stops every entity (their writes
  // confirmed); then our release is synced (we write it no more), and only then is it copied.
  self->request(s.hooks.supervisors[shard], s.cfg.request_timeout * 4, freeze_atom::value)
      .then(
          [self, shard, revision](bool) {
            auto& st = self->state;
            st.busy[shard] = false;
            auto out = st.outgoing.find(shard);
            if (out == st.outgoing.end() || out->second.move_revision != revision)
              return;
            auto rel = st.storage->release_shard(shard);
            if (!rel) {
              fail_copy(self, shard, "release: " + rel.to_string());
              return;
            }
            st.local[shard].owned_epoch = 0;
            send_chunk(self, shard, std::string{});
          },
          [self, shard](caf::error& err) {
            self->state.busy[shard] = false;
            fail_copy(self, shard, "freeze: " + caf::to_string(err));
          });
}

/// Writes `next` over the assignment last read at `expected`; `then(true)` once it landed.
namespace {

void finish_import(self_ptr self, pending_import p, bool ok) {
  auto& s = self->state;
  auto& l = s.local[p.shard];
  if (!ok || l.move_revision != p.move_revision || l.progress != handoff::receiving) {
    p.rp.deliver(false);
    return;
  }
  if (p.done) {
    // Everything is durable here; the flip (the reconciler's next step) makes it ours.
    l.progress = handoff::received;
    s.log->info("node={} received shard {}", me(self), p.shard);
  }
  p.rp.deliver(true);
  if (p.done)
    reconcile(self);
}

}  // namespace

void imported(self_ptr self, uint64_t import_id, bool ok) {
  auto& st = self->state;
  auto it = st.imports.find(import_id);
  if (it == st.imports.end())
    return;
  auto p = std::move(it->second);
  st.imports.erase(it);
  finish_import(self, std::move(p), ok);
}

caf::result<bool> receive_copy(self_ptr self, uint16_t shard, int64_t revision, bool first,
                               std::vector<shard_record>& records, bool done) {
  auto& s = self->state;
  if (shard >= s.cfg.shard_count || s.storage->owned_epoch(shard) != 0 || s.refused)
    return false;
  auto& l = s.local[shard];
  if (first) {
    // Whatever an earlier, ended copy left of this shard here goes first. The flip, not this,
    // decides whether the move happens: a copy for an intent we have not seen yet is fine.
    auto st = s.storage->delete_shard(shard);
    if (!st) {
      s.log->error("node={} cannot clear shard {} before receiving it: {}", me(self), shard,
                   st.to_string());
      return false;
    }
    l.progress = handoff::receiving;
    l.move_revision = revision;
  } else if (l.progress != handoff::receiving || l.move_revision != revision) {
    return false;  // a chunk of a copy that has ended
  }
  pending_import p{self->make_response_promise(), shard, revision, done};
  std::vector<std::pair<std::string, std::string>> kv;
  kv.reserve(records.size());
  for (auto& r : records)
    kv.emplace_back(std::move(r.key), std::move(r.value));
  auto rp = p.rp;
  if (kv.empty()) {
    finish_import(self, std::move(p), true);
    return rp;
  }
  auto id = ++s.next_import;
  s.imports.emplace(id, std::move(p));
  caf::actor agent = caf::actor_cast<caf::actor>(self);
  persistence::status why;
  bool queued = s.storage->submit_import(
      shard, std::move(kv),
      [agent, id](const persistence::status& st) {
        // Sent as the agent itself: the agent takes imported_atom from this node only.
        caf::send_as(agent, agent, imported_atom::value, id, st.is_ok());
      },
      &why);
  if (!queued) {
    s.imports.erase(id);
    rp.deliver(false);
  }
  return rp;
}

}  // namespace ordermesh::cluster::agent
