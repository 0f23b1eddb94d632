#pragma once
// What the admin port's GET /metrics answers: everything the node measures, in the Prometheus
// text exposition format (version 0.0.4). Pure C++ (no CAF, no sockets): the HTTP server asks
// for the text, the instrumented code records into the process-wide registry.
#include <string>

namespace om::obs {

/// The node's metrics, rendered now, as Prometheus text (one `# HELP`/`# TYPE` pair per family).
std::string render_metrics_text();

}  // namespace om::obs
