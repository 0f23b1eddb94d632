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

/// Checks read access, then answers with `make_view` once what it shows is durable.
template <class View, class Traits, class Check, class MakeView>
caf::result<View> query(entity_actor<Traits>* self, Check check, MakeView make_view) {
  auto rp = self->make_response_promise();
  domain::failure f = check(self->state.st);
  if (f.code != domain::errc::none)
    rp.deliver(make_error(f));
  else
    reply_read(self, rp, make_view);
  return rp;
}

}  // namespace ordermesh::actors
