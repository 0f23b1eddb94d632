#pragma once
// One-line handlers for the common shape of an entity command: decide, persist, answer.
#include "actors/entity_core.hpp"

namespace ordermesh::actors {

/// Runs a rule against the current state and answers with `make_view` once durable.
template <class View, class Traits, class Decide, class MakeView>
caf::result<View> command(entity_actor<Traits>* self, Decide decide, MakeView make_view) {
  auto rp = self->make_response_promise();
  decide_and_reply(self, rp, decide(self->state.st), make_view);
  return rp;
}

/// A saga step asked by an order (reserve, debit, commit, ...). An order of this node gets its
/// answer as soon as the write is queued, not synced: whatever the order writes because of it is
/// queued later, and the group commit makes writes durable in queue order, so a crash can lose
/// the answer's effect only together with everything that followed from it (the write is marked
/// `exposed`: it may not fail alone). An order on another node, whose writes go to another
/// journal, gets its answer once durable, as for any command; so does every order in a
/// replicated cluster, where each shard commits through its own followers (a step answered
/// early could be lost in a failover while the order's record of it survives).
template <class View, class Traits, class Decide, class MakeView>
caf::result<View> step_command(entity_actor<Traits>* self, Decide decide, MakeView make_view) {
  // Before make_response_promise, which moves the sender out of the current message.
  const bool local = sender_is_local(self) && !self->state.ctx->replicated(self->state.key.shard);
  auto rp = self->make_response_promise();
  auto d = decide(self->state.st);
  if (!d.ok() || !local) {
    decide_and_reply(self, rp, d, make_view);
    return rp;
  }
  // Answered early or with the error, once: a later failure of the write fails the whole
  // engine (the write is exposed), which stops the node.
  auto answered = std::make_shared<bool>(false);
  auto on_failure = [rp, answered](const domain::failure& f) mutable {
    if (f.code != domain::errc::none && !*answered) {
      *answered = true;
      rp.deliver(make_error(f));
    }
  };
  if (!d.events.empty() && !persist(self, d.events, std::move(on_failure), /*exposed=*/true))
    return rp;  // refused at once: answered with the error
  *answered = true;
  // A repeat (no events) is answered at once too: its first write is already queued.
  rp.deliver(make_view(self->state.st));
  return rp;
}

/// Checks read access, then answers with `make_view` once what it shows is durable.
template <class View, class Traits, class Check, class MakeView>
caf::result<View> query(entity_actor<Traits>* self, Check check, MakeView make_view) {
  auto rp = self->make_response_promise();
  domain::failure f = check(self->state.st);
  if (f.code != domain::errc::none)
    refuse(self, rp, f);
  else
    reply_read(self, rp, make_view);
  return rp;
}

}  // namespace ordermesh::actors
