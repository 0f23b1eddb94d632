#pragma once
// The machinery every entity actor shares: recovery from the journal, durable persistence with
// replies held until the write is synced, snapshots, deferral while a saga step is in flight,
// and passivation. The rules themselves live in domain/; each kind's actor file wires its
// messages to them.
//
// Write path: a command's events are applied in memory at once (so the next command sees them)
// and submitted to the storage engine's group commit; the reply is held until the synced write
// is confirmed. Replies to reads wait behind the writes before them, so nobody is ever told
// something that a crash could take back. If a write fails, the in-memory state is ahead of the
// disk: the actor fails every held reply and stops, and its supervisor restarts it from disk.
#include <chrono>
#include <functional>
#include <list>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <spdlog/logger.h>
#include <caf/after.hpp>
#include <caf/behavior.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/make_message.hpp>
#include <caf/response_promise.hpp>
#include <caf/result.hpp>
#include <caf/send.hpp>
#include <caf/stateful_actor.hpp>

#include "actors/entity_metrics.hpp"
#include "actors/errors.hpp"
#include "actors/messages.hpp"
#include "actors/node_context.hpp"
#include "domain/decision.hpp"
#include "persistence/storage_engine.hpp"

namespace ordermesh::actors {

/// Called with an empty failure once durable, or with the reason it is not.
using durable_callback = std::function<void(const domain::failure&)>;

template <class Traits>
struct entity_state {
  context_ptr ctx;
  persistence::entity_key key;
  typename Traits::state st;
  uint64_t seq = 0;                   // last event applied (durable or in flight)
  uint64_t since_snapshot = 0;        // events applied since the last snapshot
  uint32_t bytes_since_snapshot = 0;  // their encoded size (saturating)
  uint32_t snapshot_bytes = 0;        // the last snapshot's size (see snapshot_every)
  uint64_t tickets_sent = 0;          // writes submitted
  uint64_t tickets_done = 0;          // writes confirmed
  // Lists, not deques: libstdc++'s std::deque allocates 576 bytes even when empty, and these
  // are empty in almost every one of up to millions of idle entities (docs/BENCHMARKS_MICRO.md).
  std::list<std::pair<uint64_t, durable_callback>> held;  // run when tickets_done >= first
  int64_t wakeup_on_disk = 0;                             // due time in the wakeup index (0: none)
  bool busy = false;  // a multi-step operation (saga, pricing) is in flight
  std::list<std::pair<caf::response_promise, std::function<void()>>> deferred;  // wait for !busy
  bool stopping = false;     // the supervisor agreed to passivation
  bool evicting = false;     // the shard is moving away: stop once writes are confirmed
  uint64_t shard_epoch = 0;  // the epoch under which this node owned the shard at activation
  bool counted = false;
  bool forgetting = false;       // asked to be passivated because it was never created
  std::string corruption;        // set when recovery found damaged data: what is damaged
  uint32_t reads_in_flight = 0;  // read barriers awaiting the shard leader's answer
  caf::actor supervisor;         // set by entity_behavior
  typename Traits::extra extra;  // what only this kind needs (the order's saga bookkeeping)

  /// This kind's gauge, resolved once per kind (no lock on activation).
  static om::obs::gauge& active_of_kind() {
    static auto& g = active_entities_gauge(Traits::name);
    return g;
  }
  ~entity_state() {
    if (counted && ctx) {
      ctx->active_entities.fetch_sub(1, std::memory_order_relaxed);
      active_of_kind().add(-1);
    }
  }
  static inline const char* name = "ordermesh.entity";
};

template <class Traits>
using entity_actor = caf::stateful_actor<entity_state<Traits>>;

inline uint32_t saturate(uint64_t n) {
  return n > UINT32_MAX ? UINT32_MAX : static_cast<uint32_t>(n);
}

/// True when nothing is in flight: no unconfirmed write, no saga step, nothing deferred.
template <class Traits>
bool idle(entity_actor<Traits>* self) {
  auto& s = self->state;
  return s.tickets_done == s.tickets_sent && !s.busy && s.deferred.empty() &&
         s.reads_in_flight == 0;
}

/// True while the entity has no event, durable or in flight, and no snapshot: it was never
/// created (or not yet), and its state is exactly what Traits::init made of its id.
template <class Traits>
bool never_created(entity_actor<Traits>* self) {
  return self->state.seq == 0;
}

/// An entity that was never created keeps nothing worth keeping in memory: once it has answered
/// and nothing is in flight, it asks its supervisor to passivate it at once (the same agreement
/// as an idle passivation, so messages routed meanwhile are not lost and nothing counts as a
/// crash). Without this, every read of an unknown id would leave an actor behind (issue 13).
template <class Traits>
void forget_if_never_created(entity_actor<Traits>* self) {
  auto& s = self->state;
  if (!never_created(self) || !idle(self) || s.stopping || s.evicting || s.forgetting ||
      !s.supervisor)
    return;
  s.forgetting = true;
  self->send(s.supervisor, passivate_atom::value, entity_ref{s.key.kind, s.key.id});
}

/// Passivation agreed and nothing in flight: leave. The supervisor buffers newer messages.
template <class Traits>
void maybe_stop(entity_actor<Traits>* self) {
  auto& s = self->state;
  if ((s.stopping && idle(self)) || (s.evicting && s.tickets_done == s.tickets_sent))
    self->quit();
}

/// Loads the snapshot and replays later events. False (and logs) when the data cannot be read;
/// when it is damaged (a checksum fails, a record does not decode) also sets s.corruption, and
/// leaves the log line to the supervisor, which quarantines the entity for good.
template <class Traits>
bool recover(entity_actor<Traits>* self) {
  auto& s = self->state;
  persistence::recovered_entity rec;
  auto st = s.ctx->storage().load(s.key, rec);
  if (st.kind() == persistence::status::code::corruption) {
    s.corruption = st.message();
    return false;
  }
  if (!st) {
    s.ctx->log().error("node={} entity={}/{} recovery failed: {}", s.ctx->node_id(), Traits::name,
                       s.key.id, st.to_string());
    return false;
  }
  if (rec.snapshot_seq > 0 && !Traits::decode_snapshot(rec.snapshot, s.st)) {
    s.corruption = "snapshot " + std::to_string(rec.snapshot_seq) + " does not decode";
    return false;
  }
  s.snapshot_bytes = saturate(rec.snapshot.size());
  for (auto& e : rec.events) {
    s.bytes_since_snapshot = saturate(s.bytes_since_snapshot + uint64_t{e.bytes.size()});
    typename Traits::event ev;
    if (!Traits::decode(e.bytes, ev)) {
      s.corruption = "event " + std::to_string(e.seq) + " does not decode";
      return false;
    }
    Traits::apply(s.st, ev);
  }
  s.seq = rec.last_seq;
  s.since_snapshot = rec.events.size();
  s.wakeup_on_disk = Traits::wakeup_at(s.st, s.ctx->now_ms());
  return true;
}

/// Answers, with `why`, requests an entity holds besides its write-ordered replies and
/// deferred commands (the order's saga waiters). Most kinds hold none; see entity_kinds.hpp.
template <class Traits>
void fail_waiters(entity_actor<Traits>*, const domain::failure&) {}

/// Fails every held reply and stops; the supervisor restarts the entity from disk.
template <class Traits>
void fail_and_stop(entity_actor<Traits>* self, const domain::failure& why,
                   bool not_a_crash = false) {
  auto& s = self->state;
  s.ctx->log().error("node={} entity={}/{} stops: {}", s.ctx->node_id(), Traits::name, s.key.id,
                     why.message);
  auto held = std::move(s.held);
  s.held.clear();
  for (auto& h : held)
    h.second(why);
  auto deferred = std::move(s.deferred);
  s.deferred.clear();
  for (auto& d : deferred)
    d.first.deliver(make_error(why));
  fail_waiters(self, why);
  // The supervisor restarts it either way; only a crash counts toward its quarantine.
  self->quit(not_a_crash ? make_error(domain::errc::unavailable, why.message)
                         : caf::error{caf::exit_reason::user_shutdown});
}

/// Runs `f` once everything submitted so far is durable (at once when nothing is in flight).
template <class Traits>
void when_durable(entity_actor<Traits>* self, durable_callback f) {
  auto& s = self->state;
  if (s.tickets_done == s.tickets_sent) {
    f(domain::failure{});
    return;
  }
  s.held.emplace_back(s.tickets_sent, std::move(f));
}

/// Applies `events` now and submits them (with a snapshot when due, and the wakeup index
/// change) as one atomic write; `done` runs once that write is synced, or with the failure.
/// `exposed`: the caller will let other entities of this node act on the change before it is
/// durable (see write_request::exposed). False when the storage refused it at once: `done` has
/// run with the error and the entity is stopping.
template <class Traits>
bool persist(entity_actor<Traits>* self, const std::vector<typename Traits::event>& events,
             durable_callback done, bool exposed = false) {
  auto& s = self->state;
  auto& ctx = *s.ctx;
  persistence::write_request req;
  req.key = s.key;
  req.shard_epoch = s.shard_epoch;  // refused by storage if the shard changed owner since
  req.exposed = exposed;
  req.first_seq = s.seq + 1;
  req.events.reserve(events.size());
  for (auto& e : events) {
    req.events.push_back(Traits::encode(e));
    s.bytes_since_snapshot = saturate(s.bytes_since_snapshot + uint64_t{req.events.back().size()});
    Traits::apply(s.st, e);
  }
  s.seq += events.size();
  s.since_snapshot += events.size();
  if (s.since_snapshot >= ctx.settings().snapshot_every &&
      s.bytes_since_snapshot >= s.snapshot_bytes) {
    req.snapshot = Traits::encode_snapshot(s.st);
    s.snapshot_bytes = saturate(req.snapshot->size());
    s.since_snapshot = 0;
    s.bytes_since_snapshot = 0;
  }
  auto due = Traits::wakeup_at(s.st, ctx.now_ms());
  if (due != s.wakeup_on_disk) {
    if (due == 0)
      req.erase_wakeup = true;
    else
      req.wakeup_due_ms = due;
    s.wakeup_on_disk = due;
  }
  auto ticket = ++s.tickets_sent;
  s.held.emplace_back(ticket, std::move(done));
  caf::actor me = caf::actor_cast<caf::actor>(self);
  persistence::status why;
  bool queued = ctx.storage().submit(
      std::move(req),
      [me, ticket](const persistence::status& st) {
        caf::anon_send(me, persisted_atom::value, ticket, st.is_ok(), st.to_string());
      },
      &why);
  if (!queued) {
    // The state above is ahead of the disk now: answer and restart from disk.
    auto code = why.kind() == persistence::status::code::overloaded ? domain::errc::overloaded
                                                                    : domain::errc::unavailable;
    // Refused because replication cannot acknowledge the shard now (writes paused): a restart,
    // but not a crash of this entity (no quarantine for a client that retries).
    bool paused = why.kind() == persistence::status::code::unavailable &&
                  ctx.storage().writes_paused(s.key.shard);
    fail_and_stop(self, domain::failure{code, "storage refused the write: " + why.message()},
                  paused);
  }
  return queued;
}

/// True when the current message comes from an actor of this node (not through BASP). Ask before
/// make_response_promise(): CAF 0.17 moves the sender into the promise.
template <class Traits>
bool sender_is_local(entity_actor<Traits>* self) {
  const auto& sender = self->current_sender();
  return sender != nullptr && sender->node() == self->node();
}

/// Handles the storage engine's confirmation of write `ticket`.
template <class Traits>
void on_persisted(entity_actor<Traits>* self, uint64_t ticket, bool ok, const std::string& why) {
  auto& s = self->state;
  if (!ok) {
    fail_and_stop(self, domain::failure{domain::errc::unavailable, "storage write failed: " + why});
    return;
  }
  s.tickets_done = ticket;
  while (!s.held.empty() && s.held.front().first <= s.tickets_done) {
    auto f = std::move(s.held.front().second);
    s.held.pop_front();
    f(domain::failure{});
  }
  maybe_stop(self);
}

/// In a replicated cluster, runs `f` once the shard's replica leader confirms that what this
/// node holds of the shard is committed and that no newer primary can exist yet (the read
/// barrier, docs/REPLICATION.md "Reads"); with the reason when it cannot. At once for a shard
/// without replicas elsewhere (and on a node alone).
template <class Traits>
void after_read_barrier(entity_actor<Traits>* self, durable_callback f) {
  auto& s = self->state;
  auto leader = s.ctx->read_barrier(s.key.shard);
  if (!leader) {
    f(domain::failure{});
    return;
  }
  auto shard = s.key.shard;
  // Counted, so that the entity is not passivated (dropping the answer) while one is pending.
  ++s.reads_in_flight;
  // The leader answers within its commit timeout; this bound only guards against a lost reply.
  self->request(leader, std::chrono::seconds(30), cluster::read_barrier_atom::value, shard)
      .then(
          [self, f](bool) {
            --self->state.reads_in_flight;
            f(domain::failure{});
            maybe_stop(self);
          },
          [self, f, shard](caf::error& err) {
            --self->state.reads_in_flight;
            f(domain::failure{domain::errc::unavailable,
                              "shard " + std::to_string(shard) +
                                  ": this node cannot confirm that its answer is committed and "
                                  "current (" +
                                  caf::to_string(err) + "); retry"});
            maybe_stop(self);
          });
}

template <class Traits>
void finish_busy(entity_actor<Traits>* self);

/// Answers `rp` with the refusal `why`, then forgets the entity if it was never created.
/// A `not_found` for an entity never created is definite: in a replicated cluster it is said
/// only after the read barrier confirms that this node is still the shard's current primary
/// (else a deposed primary could deny an entity its successor created); when that cannot be
/// confirmed the answer is the retryable `unavailable` instead. Meanwhile the entity counts as
/// busy: it is not passivated before it has answered, and commands that defer (run_or_defer)
/// wait; a creation that does not defer simply makes it an entity that exists.
template <class Traits>
void refuse(entity_actor<Traits>* self, caf::response_promise rp, const domain::failure& why) {
  auto& s = self->state;
  if (why.code != domain::errc::not_found || !never_created(self) || s.busy) {
    rp.deliver(make_error(why));
    forget_if_never_created(self);
    return;
  }
  s.busy = true;
  after_read_barrier(self, [self, rp, why](const domain::failure& g) mutable {
    rp.deliver(make_error(g.code != domain::errc::none ? g : why));
    finish_busy(self);
    forget_if_never_created(self);
  });
}

/// Answers `rp` with `view` (taken now, so that it shows exactly the writes submitted so far)
/// once those writes are durable and, in a replicated cluster, committed and current (the read
/// barrier). A view taken at answer time could show a later write that is not durable yet.
template <class Traits, class View>
void answer_when_settled(entity_actor<Traits>* self, caf::response_promise rp, View view) {
  when_durable(self, [self, rp, view = std::move(view)](const domain::failure& f) mutable {
    if (f.code != domain::errc::none) {
      rp.deliver(make_error(f));
      return;
    }
    after_read_barrier(self, [rp, view](const domain::failure& g) mutable {
      if (g.code != domain::errc::none)
        rp.deliver(make_error(g));
      else
        rp.deliver(view);
    });
  });
}

/// Persists a rule's decision and answers `rp` with `make_view()` once durable; a refusal is
/// answered at once and changes nothing. A repeat (no events) is a read of what the first
/// attempt wrote: it waits for that write like a read (which, after a write that timed out
/// unacknowledged, means until it is committed).
template <class Traits, class Decision, class MakeView>
void decide_and_reply(entity_actor<Traits>* self, caf::response_promise rp, const Decision& d,
                      MakeView make_view) {
  if (!d.ok()) {
    refuse(self, std::move(rp), d.error);
    return;
  }
  if (d.events.empty()) {
    answer_when_settled(self, std::move(rp), make_view(self->state.st));
    return;
  }
  // The view is taken right after the events are applied: later writes applied before this one
  // is durable must not show in its answer.
  using view_type = decltype(make_view(self->state.st));
  auto view = std::make_shared<std::optional<view_type>>();
  auto reply = [rp, view](const domain::failure& f) mutable {
    if (f.code != domain::errc::none || !*view)
      rp.deliver(make_error(f.code != domain::errc::none
                                ? f
                                : domain::failure{domain::errc::unavailable, "write not applied"}));
    else
      rp.deliver(**view);
  };
  if (persist(self, d.events, std::move(reply)))
    *view = make_view(self->state.st);
}

/// Answers a read once everything before it is durable (and committed, in a replicated cluster).
template <class Traits, class MakeView>
void reply_read(entity_actor<Traits>* self, caf::response_promise rp, MakeView make_view) {
  answer_when_settled(self, std::move(rp), make_view(self->state.st));
}

/// Runs `cmd` now, or after the current multi-step operation when one is in flight.
/// Beyond max_deferred the command is refused with `overloaded`.
template <class Traits>
void run_or_defer(entity_actor<Traits>* self, caf::response_promise rp, std::function<void()> cmd) {
  auto& s = self->state;
  if (!s.busy) {
    cmd();
    return;
  }
  if (s.deferred.size() >= s.ctx->settings().max_deferred) {
    rp.deliver(make_error(domain::errc::overloaded, "too many commands waiting for this entity"));
    return;
  }
  s.deferred.emplace_back(std::move(rp), std::move(cmd));
}

/// Ends a multi-step operation and runs deferred commands until one starts another.
template <class Traits>
void finish_busy(entity_actor<Traits>* self) {
  auto& s = self->state;
  s.busy = false;
  while (!s.busy && !s.deferred.empty()) {
    auto cmd = std::move(s.deferred.front().second);
    s.deferred.pop_front();
    cmd();
  }
  maybe_stop(self);
}

/// The supervisor saw no message for this entity for a while: ask to be passivated when nothing
/// is in flight and the kind allows it.
template <class Traits>
void on_idle(entity_actor<Traits>* self, const caf::actor& supervisor) {
  auto& s = self->state;
  if (idle(self) && !s.stopping && Traits::may_passivate(s.st))
    self->send(supervisor, passivate_atom::value, entity_ref{s.key.kind, s.key.id});
}

/// An entity's behavior: its own handlers `fs`, plus write confirmations, passivation and
/// fault injection, and the idle check that starts passivation.
template <class Traits, class... Fs>
caf::behavior entity_behavior(entity_actor<Traits>* self, caf::actor supervisor, Fs... fs) {
  self->state.supervisor = supervisor;
  return {
      std::move(fs)...,
      [self](persisted_atom, uint64_t ticket, bool ok, const std::string& why) {
        on_persisted(self, ticket, ok, why);
      },
      [self](passivate_atom) {
        // The supervisor routes nothing more here; finish what is in flight, then leave.
        self->state.stopping = true;
        maybe_stop(self);
      },
      [self](evict_atom) {
        // The shard moves to another node: leave as soon as the writes made are confirmed. A
        // saga in flight resumes on the new owner (its phase is on disk); deferred commands are
        // answered `unavailable` so their clients retry there.
        auto& s = self->state;
        s.evicting = true;
        auto deferred = std::move(s.deferred);
        s.deferred.clear();
        domain::failure moving{domain::errc::unavailable, "the shard is moving; retry"};
        for (auto& d : deferred)
          d.first.deliver(make_error(moving));
        fail_waiters(self, moving);
        maybe_stop(self);
      },
      [self](const entity_ref&, crash_atom) {
        if (self->state.ctx->settings().fault_injection)
          throw std::runtime_error("fault injection: admin.crash");
      },
      // Idleness is judged by the supervisor's sweep (nothing routed here for a while), not by
      // a receive timeout: CAF 0.17 re-arms that timer, under the clock's lock, after every
      // message an actor handles, and entities handle most of the node's messages.
      [self, supervisor](idle_atom) { on_idle(self, supervisor); },
  };
}

/// Sets up the state and recovers it. False: the entity cannot start; it has quit, or its data
/// is damaged (s.corruption set) and it must get not_started_behavior.
template <class Traits>
bool start_entity(entity_actor<Traits>* self, context_ptr ctx, const entity_ref& who) {
  auto& s = self->state;
  s.ctx = std::move(ctx);
  s.key.shard = s.ctx->shard_of(who);
  s.key.kind = who.kind;
  s.key.id = who.id;
  Traits::init(s.st, who.id);
  s.ctx->active_entities.fetch_add(1, std::memory_order_relaxed);
  s.active_of_kind().add(1);
  s.counted = true;
  s.shard_epoch = s.ctx->storage().owned_epoch(s.key.shard);
  s.ctx->log().debug("node={} entity={}/{} activating", s.ctx->node_id(), Traits::name, who.id);
  if (!recover(self)) {
    if (s.corruption.empty())
      self->quit(caf::exit_reason::user_shutdown);  // a read error: the supervisor restarts it
    return false;
  }
  return true;
}

/// What an entity that failed start_entity runs. One whose data is damaged stays up just long
/// enough to answer what its supervisor already handed it with `corrupted`, tells the supervisor
/// (which quarantines it for good, logs it once and answers every later request itself), and
/// leaves when the supervisor agrees. Restarting it would only read the same damage again.
template <class Traits>
caf::behavior not_started_behavior(entity_actor<Traits>* self, const caf::actor& supervisor) {
  auto& s = self->state;
  if (s.corruption.empty())
    return {};  // quit already
  self->send(supervisor, corrupted_atom::value, entity_ref{s.key.kind, s.key.id}, s.corruption);
  self->set_default_handler(
      [self](caf::scheduled_actor*, caf::message_view&) -> caf::result<caf::message> {
        if (!self->current_message_id().is_request())
          return caf::message{};  // an async note (idle, wakeup): nothing to answer
        return make_error(domain::errc::corrupted,
                          std::string(Traits::name) + "/" + self->state.key.id +
                              ": its stored data is damaged (" + self->state.corruption + ")");
      });
  return {
      [self](passivate_atom) { self->quit(); },
      [self](evict_atom) { self->quit(); },  // its shard moves: nothing of it to finish
  };
}

}  // namespace ordermesh::actors
