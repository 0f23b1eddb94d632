// The order entity, coordinator of its saga (domain/order.hpp draws the state machine).
// Each step asks every participant (user, inventories) through their supervisors, with a finite
// timeout; the step's outcome is persisted before the next step starts (queued before it, when
// every participant is on this node; durable before it otherwise). Participants treat a
// repeated step as a no-op, so a step that timed out or was interrupted by a crash is simply run
// again, with backoff, until it succeeds or is refused for good (then it is compensated).
#include <algorithm>
#include <memory>

#include "actors/entity_command.hpp"
#include "actors/entity_kinds.hpp"
#include "domain/order_timeline.hpp"

namespace ordermesh::actors {

namespace o = domain::order;
using domain::errc;
using self_ptr = entity_actor<order_traits>*;

namespace {

/// Collects the answers of one step's participants.
struct step_tally {
  size_t pending = 0;
  domain::failure refused;  // the first answer that is not retryable
  bool retry = false;       // some participant did not answer or was unavailable
  std::function<void(const step_tally&)> done;

  void record(const domain::failure& f) {
    if (f.code == errc::timeout || f.code == errc::unavailable || f.code == errc::overloaded)
      retry = true;
    else if (f.code != errc::none && refused.code == errc::none)
      refused = f;
    if (--pending == 0)
      done(*this);
  }
};
using tally_ptr = std::shared_ptr<step_tally>;

domain::principal system_principal() {
  return domain::principal{"", true};
}

/// `to`, carrying the request id of the saga that runs now.
entity_ref traced(self_ptr self, entity_ref to) {
  to.req = self->state.extra.req;
  return to;
}

/// Sends one step request to entity `to` and records its answer in `tally`.
template <class View, class... Ts>
void ask(self_ptr self, const tally_ptr& tally, const entity_ref& to, Ts... xs) {
  auto& ctx = *self->state.ctx;
  self->request(ctx.route(to), ctx.settings().step_timeout, traced(self, to), xs...)
      .then([tally](const View&) { tally->record({}); },
            [tally](caf::error& err) { tally->record(to_failure(err)); });
}

entity_ref inventory_of(const domain::order_item& item) {
  return ref(domain::entity_kind::inventory, item.product_id);
}
entity_ref user_of(const o::state& s) {
  return ref(domain::entity_kind::user, s.user_id);
}

void run_saga(self_ptr self);

/// Step names for log lines (the same words order.timeline uses).
const char* step_name(o::phase p) {
  switch (p) {
    case o::phase::reserving:
      return "reserve";
    case o::phase::rejecting:
      return "reject";
    case o::phase::debiting:
      return "pay";
    case o::phase::committing:
      return "confirm";
    case o::phase::releasing:
      return "release";
    case o::phase::refunding:
      return "refund";
    case o::phase::returning:
      return "return";
    case o::phase::none:
      break;
  }
  return "none";
}

/// Arms the reservation's expiry timer (one at a time).
void arm_expiry(self_ptr self) {
  auto& s = self->state;
  if (s.st.status != domain::order_status::reserved || s.extra.expiry_armed)
    return;
  auto wait = std::max<int64_t>(0, s.st.expires_at - s.ctx->now_ms());
  s.extra.expiry_armed = true;
  self->delayed_send(self, std::chrono::milliseconds(wait + 1), expire_atom::value);
}

/// The saga reached a stable status: answer everyone waiting for it, run deferred commands.
void settle(self_ptr self) {
  auto& s = self->state;
  auto waiting = std::move(s.extra.on_settled);
  s.extra.on_settled.clear();
  for (auto& w : waiting)
    w.second();
  // The saga's request is done: an order at rest keeps no id (nor its heap bytes). A deferred
  // command that starts next sets its own.
  std::string().swap(s.extra.req);
  arm_expiry(self);
  finish_busy(self);
}

/// True when every participant of an order in state `st` (its user, its items' inventories)
/// is served by this node now. The saga may then ask them before its own record of the step is
/// durable: their writes queue behind it in the same journal, so a crash keeps a prefix (the
/// record is marked `exposed`: it may not fail alone). A participant on another node writes to
/// another journal, so it is asked only once the record is durable.
/// Not so in a replicated cluster: there each shard commits through its own followers, so a
/// participant's write could survive a failover that loses the order's record, or the reverse.
bool participants_local(self_ptr self, const o::state& st) {
  auto& ctx = *self->state.ctx;
  const auto here = self->node();
  auto local = [&](const entity_ref& e) {
    return ctx.route(e).node() == here && !ctx.replicated(ctx.shard_of(e));
  };
  if (ctx.replicated(self->state.key.shard) || !local(user_of(st)))
    return false;
  return std::all_of(st.items.begin(), st.items.end(),
                     [&](const domain::order_item& item) { return local(inventory_of(item)); });
}

/// Persists `events` and runs the saga's next step: at once when every participant is on this
/// node, else once the write is durable. `on_failure` runs if the write fails (the actor is then
/// stopping; its successor resumes the saga from disk).
void persist_and_continue(self_ptr self, std::vector<o::event> events,
                          std::function<void(const domain::failure&)> on_failure = {}) {
  // Each event records where and for which request it was written (order.timeline).
  const o::step_trace trace{self->state.ctx->node_id(), self->state.extra.req};
  for (auto& e : events)
    o::set_trace(e, trace);
  o::state next = self->state.st;
  for (auto& e : events)
    order_traits::apply(next, e);
  const bool early = participants_local(self, next);
  auto done = [self, early, on_failure](const domain::failure& f) {
    if (f.code != errc::none) {
      if (on_failure)
        on_failure(f);
    } else if (!early) {
      run_saga(self);
    }
  };
  if (persist(self, events, std::move(done), early) && early)
    run_saga(self);
}

/// Persists `ev` (a step's outcome) and continues with the next step.
void record_and_continue(self_ptr self, o::event ev) {
  persist_and_continue(self, {std::move(ev)});
}

/// The step is over: record success, compensate a refusal, or try again later.
void on_step_done(self_ptr self, o::phase step, uint64_t attempt, const step_tally& t) {
  auto& s = self->state;
  auto& ctx = *s.ctx;
  if (attempt != s.extra.attempt || s.st.step != step)
    return;  // an older attempt's answers: never act on them
  s.extra.step_in_flight = false;
  ++s.extra.attempt;
  ctx.log().debug("node={} entity=order/{} req={} step {} answered: {}", ctx.node_id(), s.key.id,
                  s.extra.req, step_name(step),
                  t.refused.code != errc::none ? std::string_view(t.refused.message)
                  : t.retry                    ? std::string_view("retry")
                                               : std::string_view("ok"));
  bool refusable = step == o::phase::reserving || step == o::phase::debiting;
  if (t.refused.code != errc::none && refusable) {
    s.extra.retries = 0;
    s.extra.last_refusal = t.refused;
    record_and_continue(self, o::step_refused(s.st, t.refused, ctx.now_ms()));
    return;
  }
  if (t.refused.code != errc::none || t.retry) {
    if (t.refused.code != errc::none)
      ctx.log().error("node={} entity=order/{} req={} step {} refused by a participant: {}",
                      ctx.node_id(), s.key.id, s.extra.req, step_name(step), t.refused.message);
    auto backoff = std::min<int64_t>(100LL << std::min<uint32_t>(s.extra.retries, 10),
                                     ctx.settings().max_retry_backoff.count());
    ++s.extra.retries;
    self->delayed_send(self, std::chrono::milliseconds(backoff), retry_atom::value,
                       s.extra.attempt);
    return;
  }
  s.extra.retries = 0;
  record_and_continue(self,
                      o::step_succeeded(s.st, ctx.now_ms(), ctx.settings().reservation_ttl_ms));
}

/// Runs the current step of the saga, or settles when there is none.
void run_saga(self_ptr self) {
  auto& st = self->state.st;
  auto& extra = self->state.extra;
  if (extra.step_in_flight)
    return;
  auto step = o::next_step(st);
  if (step == o::phase::none) {
    settle(self);
    return;
  }
  extra.step_in_flight = true;
  self->state.ctx->log().debug("node={} entity=order/{} req={} step {} starts",
                               self->state.ctx->node_id(), self->state.key.id, extra.req,
                               step_name(step));
  auto tally = std::make_shared<step_tally>();
  tally->done = [self, step, attempt = extra.attempt](const step_tally& t) {
    on_step_done(self, step, attempt, t);
  };
  const auto& id = self->state.key.id;
  switch (step) {
    case o::phase::reserving:
      tally->pending = st.items.size() + 1;
      ask<domain::user_view>(self, tally, user_of(st), link_atom::value, id);
      for (auto& item : st.items)
        ask<domain::inventory_view>(self, tally, inventory_of(item), reserve_atom::value, id,
                                    item.quantity);
      break;
    case o::phase::rejecting:
    case o::phase::releasing:
      // The order stops holding stock: its slot under the user's caps is free again.
      tally->pending = st.items.size() + 1;
      ask<domain::user_view>(self, tally, user_of(st), unclaim_atom::value, id);
      for (auto& item : st.items)
        ask<domain::inventory_view>(self, tally, inventory_of(item), release_atom::value, id);
      break;
    case o::phase::debiting:
      tally->pending = 1;
      ask<domain::user_view>(self, tally, user_of(st), debit_atom::value, id, st.total_cents);
      break;
    case o::phase::committing:
      // Paid: no longer an unpaid reservation under the user's caps.
      tally->pending = st.items.size() + 1;
      ask<domain::user_view>(self, tally, user_of(st), unclaim_atom::value, id);
      for (auto& item : st.items)
        ask<domain::inventory_view>(self, tally, inventory_of(item), commit_atom::value, id);
      break;
    case o::phase::refunding:
      tally->pending = 1;
      ask<domain::user_view>(self, tally, user_of(st), refund_atom::value, id);
      break;
    case o::phase::returning:
      tally->pending = st.items.size();
      for (auto& item : st.items)
        ask<domain::inventory_view>(self, tally, inventory_of(item), giveback_atom::value, id);
      break;
    case o::phase::none:
      break;
  }
}

/// Starts a saga with `events` (its first event), answering through `on_settled` at the end.
void start_saga(self_ptr self, const std::vector<o::event>& events, caf::response_promise rp,
                std::function<void()> on_settled) {
  auto& s = self->state;
  s.busy = true;
  s.extra.on_settled.emplace_back(rp, std::move(on_settled));
  persist_and_continue(self, events,
                       [rp](const domain::failure& f) mutable { rp.deliver(make_error(f)); });
}

/// Answers `rp` with the order as it is, once durable.
std::function<void()> answer_view(self_ptr self, caf::response_promise rp) {
  return
      [self, rp]() mutable { reply_read(self, rp, [](const o::state& s) { return o::view(s); }); };
}

/// Takes a slot under the user's caps on open reservations, then persists `placed` (in
/// `events`) and starts the saga. Over a cap the placement is refused and nothing is written,
/// here or at the user. A crash between the claim and the write leaves a slot that lapses by
/// itself (entity_settings::slot_grace), or that a retry with the same order_id takes again.
void claim_and_place(self_ptr self, caf::response_promise rp, const std::string& user_id,
                     std::vector<o::event> events) {
  auto& ctx = *self->state.ctx;
  int64_t units = 0;
  for (auto& item : std::get<o::placed>(events.front()).items)
    units += item.quantity;
  auto user = ref(domain::entity_kind::user, user_id);
  auto refuse_place = [self, rp](const domain::failure& f) mutable {
    rp.deliver(make_error(f));
    finish_busy(self);
    forget_if_never_created(self);  // nothing was written: keep nothing of this order_id
  };
  auto start = [self, rp, events] {
    self->state.busy = false;  // start_saga sets it again; keeps the deferral order intact
    start_saga(self, events, rp, answer_view(self, rp));
  };
  self->request(ctx.route(user), ctx.settings().step_timeout, traced(self, user), claim_atom::value,
                self->state.key.id, units)
      .then([start](const domain::user_view&) { start(); },
            [start, refuse_place](caf::error& err) mutable {
              auto f = to_failure(err);
              if (f.code == errc::not_found) {
                // An unknown user (only the admin can name one): placed and then rejected by
                // the saga's link step, as before the caps.
                start();
                return;
              }
              if (f.code == errc::timeout)
                f = {errc::unavailable, "could not reach the user's entity; retry"};
              refuse_place(f);
            });
}

/// Prices the items (asking each product), then claims a slot, persists `placed` and starts the
/// saga.
void price_and_place(self_ptr self, caf::response_promise rp, std::string user_id,
                     std::vector<domain::order_item> items) {
  auto& s = self->state;
  auto& ctx = *s.ctx;
  s.busy = true;
  auto priced = std::make_shared<std::vector<domain::order_item>>(items);
  auto tally = std::make_shared<step_tally>();
  tally->pending = items.size();
  tally->done = [self, rp, priced, user_id](const step_tally& t) mutable {
    if (t.refused.code != errc::none || t.retry) {
      // Nothing was written: the client may retry with the same order_id.
      auto f = t.refused.code != errc::none
                   ? t.refused
                   : domain::failure{errc::unavailable, "could not price the items; retry"};
      rp.deliver(make_error(f));
      finish_busy(self);
      forget_if_never_created(self);  // nothing was written: keep nothing of this order_id
      return;
    }
    auto d = o::place(self->state.st, user_id, *priced, self->state.ctx->now_ms());
    if (!d.ok()) {
      rp.deliver(make_error(d.error));
      finish_busy(self);
      forget_if_never_created(self);
      return;
    }
    claim_and_place(self, rp, user_id, std::move(d.events));
  };
  for (size_t i = 0; i < items.size(); ++i) {
    auto to = ref(domain::entity_kind::product, items[i].product_id);
    self->request(ctx.route(to), ctx.settings().step_timeout, traced(self, to), read_atom::value,
                  system_principal())
        .then(
            [tally, priced, i](const domain::product_view& p) {
              (*priced)[i].unit_price_cents = p.price_cents;
              tally->record({});
            },
            [tally, to](caf::error& err) {
              auto f = to_failure(err);
              if (f.code == errc::not_found)
                f.message = "product " + to.id + " does not exist";
              tally->record(f);
            });
  }
}

void place(self_ptr self, caf::response_promise rp, const domain::principal& who,
           const std::string& user_id, const std::vector<domain::order_item>& items) {
  auto& st = self->state.st;
  auto f = o::check_place(st, who, user_id, items);
  if (f.code != errc::none) {
    refuse(self, rp, f);
    return;
  }
  if (st.status != domain::order_status::none) {
    answer_view(self, rp)();  // the same order again: answer it as it is
    return;
  }
  price_and_place(self, rp, user_id, items);
}

void pay(self_ptr self, caf::response_promise rp, const domain::principal& who) {
  auto& s = self->state;
  auto d = o::pay(s.st, who, s.ctx->now_ms());
  if (!d.ok()) {
    refuse(self, rp, d.error);  // an unknown order: `not_found`, and nothing kept of it
    return;
  }
  if (d.events.empty()) {
    answer_view(self, rp)();
    return;
  }
  start_saga(self, d.events, rp, [self, rp]() mutable {
    auto& state = self->state;
    if (state.st.status == domain::order_status::paid)
      answer_view(self, rp)();
    else
      rp.deliver(make_error(state.extra.last_refusal.code == errc::none
                                ? domain::failure{errc::internal, "payment did not complete"}
                                : state.extra.last_refusal));
  });
}

void cancel(self_ptr self, caf::response_promise rp, const domain::principal& who) {
  auto& s = self->state;
  auto d = o::cancel(s.st, who, "cancelled by client", s.ctx->now_ms());
  if (!d.ok()) {
    refuse(self, rp, d.error);  // an unknown order: `not_found`, and nothing kept of it
    return;
  }
  if (d.events.empty()) {
    answer_view(self, rp)();
    return;
  }
  start_saga(self, d.events, rp, answer_view(self, rp));
}

/// Timer or node wakeup: cancel the reservation if it lapsed. Skipped while a saga runs (the
/// timer is armed again when it settles).
void check_expiry(self_ptr self) {
  auto& s = self->state;
  if (s.busy)
    return;
  auto d = o::expire(s.st, s.ctx->now_ms());
  if (!d.ok() || d.events.empty()) {
    arm_expiry(self);
    return;
  }
  // No client asked for this: the expiry is a request of its own, named after the node and time.
  s.extra.req = s.ctx->node_id() + "-expiry-" + std::to_string(s.ctx->now_ms());
  s.ctx->log().info("node={} entity=order/{} req={} reservation expired", s.ctx->node_id(),
                    s.key.id, s.extra.req);
  start_saga(self, d.events, caf::response_promise{}, [] {});
}

/// A command that the order's fixed facts (its user, its items: never changed once written)
/// already refuse is answered at once, also while a saga of the order is in flight: waiting for
/// the saga would let another user tell an existing order from a missing one by the delay.
bool refused_at_once(self_ptr self, caf::response_promise& rp, const domain::failure& f) {
  if (self->state.st.status == domain::order_status::none || f.code == errc::none)
    return false;
  refuse(self, rp, f);
  return true;
}

/// order.timeline: the order's journal as steps. Read from storage (the actor keeps only the
/// state), at most max_timeline_steps of the newest events.
void answer_timeline(self_ptr self, caf::response_promise rp) {
  auto& s = self->state;
  const uint64_t max = domain::max_timeline_steps;
  const uint64_t from = s.seq > max ? s.seq - max + 1 : 1;
  std::vector<persistence::stored_event> stored;
  auto st = s.ctx->storage().read_events(s.key, from, max, stored);
  if (st.kind() == persistence::status::code::corruption) {
    rp.deliver(make_error(errc::corrupted, "the order's journal is damaged: " + st.message()));
    return;
  }
  if (!st.is_ok()) {
    rp.deliver(make_error(errc::unavailable, "could not read the order's journal; retry"));
    return;
  }
  std::vector<o::event> events;
  events.reserve(stored.size());
  for (auto& e : stored) {
    o::event ev;
    if (!o::decode(e.bytes, ev)) {
      rp.deliver(make_error(errc::internal, "an event of the order does not decode"));
      return;
    }
    events.push_back(std::move(ev));
  }
  auto view = domain::timeline(s.key.id, events);
  view.truncated = view.truncated || from > 1;
  rp.deliver(std::move(view));
}

/// Resumes the saga of an order started from its journal (a restart, a failover, a crash of the
/// entity), once the read barrier confirms that the state it starts from is committed and that
/// this node still leads the shard; until then it asks again, backing off. An entity restarted
/// after a write that was never acknowledged holds that write in its state (it is on this
/// node's disk): on a primary that was replaced meanwhile it never commits, and steps sent from
/// it reserved stock for an order that does not exist (seen in the chaos `zombie` scenario).
/// Steps of such an entity are only ever sent by its successor, from committed state. A node
/// that no longer leads the shard evicts the entity, which ends the asking.
void resume_when_confirmed(self_ptr self) {
  after_read_barrier(self, [self](const domain::failure& f) {
    auto& s = self->state;
    if (f.code == errc::none) {
      s.extra.retries = 0;
      self->send(self, retry_atom::value, s.extra.attempt);
      return;
    }
    if (s.extra.retries == 0)
      s.ctx->log().info(
          "node={} entity=order/{} req={} saga not resumed yet: its state is not confirmed "
          "committed here ({})",
          s.ctx->node_id(), s.key.id, s.extra.req, f.message);
    auto backoff = std::min<int64_t>(100LL << std::min<uint32_t>(s.extra.retries, 10),
                                     s.ctx->settings().max_retry_backoff.count());
    ++s.extra.retries;
    self->delayed_send(self, std::chrono::milliseconds(backoff), resume_atom::value);
  });
}

}  // namespace

template <>
void fail_waiters<order_traits>(self_ptr self, const domain::failure& why) {
  auto waiting = std::move(self->state.extra.on_settled);
  self->state.extra.on_settled.clear();
  for (auto& w : waiting)
    if (w.first.pending())
      w.first.deliver(make_error(why));
}

caf::behavior order_actor(self_ptr self, context_ptr ctx, entity_ref who, caf::actor supervisor) {
  if (!start_entity(self, std::move(ctx), who))
    return not_started_behavior(self, supervisor);
  auto& s = self->state;
  if (s.st.status == domain::order_status::pending) {
    s.busy = true;  // resume the saga that a crash or restart interrupted
    // The request that started it lives on only in its events' traces; the resumption is a
    // request of its own (as an expiry is), so its steps and log lines are not anonymous.
    s.extra.req = s.ctx->node_id() + "-resume-" + std::to_string(s.ctx->now_ms());
    s.ctx->log().info("node={} entity=order/{} req={} resuming an interrupted saga",
                      s.ctx->node_id(), s.key.id, s.extra.req);
    self->send(self, resume_atom::value);
  } else {
    arm_expiry(self);
  }
  return entity_behavior(
      self, supervisor,
      [=](const entity_ref& to, place_atom, const domain::principal& by, const std::string& user_id,
          const std::vector<domain::order_item>& items) -> caf::result<domain::order_view> {
        auto rp = self->make_response_promise();
        if (refused_at_once(self, rp, o::check_place(self->state.st, by, user_id, items)))
          return rp;
        run_or_defer(self, rp, [=, req = to.req] {
          self->state.extra.req = req;
          place(self, rp, by, user_id, items);
        });
        return rp;
      },
      [=](const entity_ref& to, pay_atom,
          const domain::principal& by) -> caf::result<domain::order_view> {
        auto rp = self->make_response_promise();
        if (refused_at_once(self, rp, o::check_read(self->state.st, by)))
          return rp;
        run_or_defer(self, rp, [=, req = to.req] {
          self->state.extra.req = req;
          pay(self, rp, by);
        });
        return rp;
      },
      [=](const entity_ref& to, cancel_atom,
          const domain::principal& by) -> caf::result<domain::order_view> {
        auto rp = self->make_response_promise();
        if (refused_at_once(self, rp, o::check_read(self->state.st, by)))
          return rp;
        run_or_defer(self, rp, [=, req = to.req] {
          self->state.extra.req = req;
          cancel(self, rp, by);
        });
        return rp;
      },
      [=](const entity_ref&, timeline_atom,
          const domain::principal& by) -> caf::result<domain::order_timeline_view> {
        auto rp = self->make_response_promise();
        auto f = o::check_read(self->state.st, by);
        if (f.code != errc::none)
          refuse(self, rp, f);
        else
          answer_timeline(self, rp);
        return rp;
      },
      [=](const entity_ref&, read_atom, const domain::principal& by) {
        return query<domain::order_view>(
            self, [&](const o::state& st) { return o::check_read(st, by); },
            [](const o::state& st) { return o::view(st); });
      },
      [=](retry_atom, uint64_t attempt) {
        if (attempt == self->state.extra.attempt)
          run_saga(self);
      },
      [=](resume_atom) { resume_when_confirmed(self); },
      [=](expire_atom) {
        self->state.extra.expiry_armed = false;
        check_expiry(self);
      },
      [=](const entity_ref&, wakeup_atom) { check_expiry(self); });
}

}  // namespace ordermesh::actors
