#pragma once
// What the admin port's GET /metrics answers: everything the node measures, in the Prometheus
// text exposition format (version 0.0.4). Pure C++ (no CAF, no sockets): the HTTP server asks
// for the text, the instrumented code records into the process-wide registry.
#include <cstdint>
#include <string>
#include <vector>

namespace om::obs {

/// The node's metrics, rendered now, as Prometheus text (one `# HELP`/`# TYPE` pair per family).
std::string render_metrics_text();

/// One point of the status page's activity graph: client requests answered per second and
/// their p99 latency, over one sampling interval ending at `unix_ms`.
struct activity_sample {
  int64_t unix_ms = 0;
  double requests_per_s = 0;
  double p99_ms = 0;
};

/// The last few minutes of activity, oldest first (bounded; empty until sampled).
std::vector<activity_sample> recent_activity();

}  // namespace om::obs
