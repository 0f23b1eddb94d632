#include "nodes/request_metrics.hpp"

#include <chrono>
#include <string>
#include <vector>

#include "observability/activity_window.hpp"
#include "observability/registry.hpp"
#include "observability/request_meter.hpp"

namespace ordermesh::node {

namespace {

constexpr size_t max_ops = 63;  // the meter takes 64 names: the ops and "invalid"

/// Every op's protocol name, by its number; "invalid" after them. Read from protocol::to_string
/// so that an op added later is counted under its own name.
std::vector<std::string> op_names() {
  std::vector<std::string> names;
  for (size_t i = 0; i < max_ops; ++i) {
    auto name = protocol::to_string(static_cast<protocol::op>(i));
    if (name == "unknown")
      break;
    names.emplace_back(name);
  }
  names.emplace_back("invalid");
  return names;
}

std::vector<std::string> code_names() {
  std::vector<std::string> names{"ok"};  // errc::none
  for (size_t i = 1; i <= static_cast<size_t>(domain::last_errc); ++i)
    names.emplace_back(domain::to_string(static_cast<domain::errc>(i)));
  return names;
}

struct node_meter {
  std::vector<std::string> ops = op_names();
  om::obs::request_meter meter{om::obs::registry::global(), om::obs::global_activity(), ops,
                               code_names()};
  size_t invalid = ops.size() - 1;
};

node_meter& the_meter() {
  static node_meter m;
  return m;
}

}  // namespace

void meter_reply(const protocol::request& req, domain::errc code) noexcept {
  double seconds = 0;
  if (req.received != std::chrono::steady_clock::time_point{})
    seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - req.received).count();
  the_meter().meter.record(static_cast<size_t>(req.operation), static_cast<size_t>(code), seconds);
}

void meter_unparsed(domain::errc code) noexcept {
  auto& m = the_meter();
  m.meter.record(m.invalid, static_cast<size_t>(code), 0);
}

}  // namespace ordermesh::node
