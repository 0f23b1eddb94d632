#pragma once
// order.timeline: an order's history as steps, built from its stored events (its journal).
// Each event is one step: what happened, its outcome, when, on which node, for which request.
#include <cstdint>
#include <string>
#include <vector>

#include "domain/order.hpp"

namespace ordermesh::domain {

/// Most steps one timeline shows: an order's saga writes about ten events; only a long series
/// of refused payments could write more, and the oldest are then left out (`truncated`).
constexpr size_t max_timeline_steps = 200;

struct timeline_step {
  std::string step;     // place, reserve, reject, pay, debit, confirm, cancel, expire, ...
  std::string outcome;  // ok, started, refused: <reason>, ...
  int64_t at_ms = 0;    // ms since the Unix epoch
  std::string node;     // empty for events written before the trace existed
  std::string request_id;
};
template <class Inspector>
auto inspect(Inspector& f, timeline_step& x) {
  return f(x.step, x.outcome, x.at_ms, x.node, x.request_id);
}

struct order_timeline_view {
  std::string order_id;
  std::vector<timeline_step> steps;  // oldest first
  bool truncated = false;            // older steps were left out (max_timeline_steps)
};
template <class Inspector>
auto inspect(Inspector& f, order_timeline_view& x) {
  return f(x.order_id, x.steps, x.truncated);
}

/// One step per event, in journal order; keeps the newest max_timeline_steps.
order_timeline_view timeline(std::string order_id, const std::vector<order::event>& events);

}  // namespace ordermesh::domain
