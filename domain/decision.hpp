#pragma once
#include <utility>
#include <vector>

#include "domain/errors.hpp"

namespace ordermesh::domain {

/// What a rule decided about one command: either a refusal (no events, nothing changes) or the
/// events to persist and then apply. An accepted decision with no events is an idempotent repeat.
template <class Event>
struct decision {
  failure error;
  std::vector<Event> events;

  bool ok() const { return error.code == errc::none; }

  static decision refuse(errc code, std::string message) {
    decision d;
    d.error = failure{code, std::move(message)};
    return d;
  }
  static decision accept(std::vector<Event> evs = {}) {
    decision d;
    d.events = std::move(evs);
    return d;
  }
};

}  // namespace ordermesh::domain
