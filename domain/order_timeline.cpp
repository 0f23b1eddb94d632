#include "domain/order_timeline.hpp"

#include <array>

#include "domain/overloaded.hpp"

namespace ordermesh::domain {

namespace {
namespace o = order;

/// Step names by the event's alternative in order::event, in its order.
constexpr std::array<const char*, 11> step_names = {
    "place",                      // placed
    "reserve", "reserve",         // reserved, reservation_failed
    "reject",                     // rejected
    "pay",     "pay",     "pay",  // payment_started, payment_refused, debited
    "confirm",                    // paid
    "cancel",                     // cancel_started ("expire" when it lapsed)
    "refund",                     // refunded
    "cancel",                     // cancelled
};
static_assert(step_names.size() == std::variant_size_v<o::event>);

std::string step_of(const o::event& e) {
  if (const auto* c = std::get_if<o::cancel_started>(&e); c != nullptr && c->reason == "expired")
    return "expire";
  return step_names[e.index()];
}

std::string outcome_of(const o::event& e) {
  return std::visit(overloaded{
                        [](const o::reservation_failed& ev) { return "refused: " + ev.reason; },
                        [](const o::payment_refused& ev) { return "refused: " + ev.reason; },
                        [](const o::cancel_started& ev) { return "started: " + ev.reason; },
                        [](const o::payment_started&) { return std::string("started"); },
                        [](const auto&) { return std::string("ok"); },
                    },
                    e);
}

int64_t time_of(const o::event& e) {
  return std::visit([](const auto& ev) { return ev.at_ms; }, e);
}
}  // namespace

order_timeline_view timeline(std::string order_id, const std::vector<order::event>& events) {
  order_timeline_view out;
  out.order_id = std::move(order_id);
  size_t first = 0;
  if (events.size() > max_timeline_steps) {
    first = events.size() - max_timeline_steps;
    out.truncated = true;
  }
  out.steps.reserve(events.size() - first);
  for (size_t i = first; i < events.size(); ++i) {
    const auto& t = o::trace_of(events[i]);
    out.steps.push_back(
        {step_of(events[i]), outcome_of(events[i]), time_of(events[i]), t.node, t.request_id});
  }
  return out;
}

}  // namespace ordermesh::domain
