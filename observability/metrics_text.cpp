#include "observability/metrics_text.hpp"

#include "observability/activity_window.hpp"
#include "observability/process_stats.hpp"
#include "observability/registry.hpp"

#ifndef ORDERMESH_VERSION
#define ORDERMESH_VERSION "unknown"
#endif

namespace om::obs {

namespace {

/// One gauge collector that reports one value of the process's stats.
collector_handle process_gauge(const char* name, const char* help,
                               double (*pick)(const process_stats&), metric_type type) {
  return registry::global().collect(name, help, type, {}, [pick](std::vector<sample>& out) {
    if (auto s = read_process_stats())
      out.push_back({{}, pick(*s)});
  });
}

/// The metrics every process has (standard Prometheus process_* names, so existing dashboards
/// work) and the build info; registered on the first render, for the life of the process.
void register_standard_metrics() {
  static const std::vector<collector_handle> handles = [] {
    std::vector<collector_handle> h;
    h.push_back(process_gauge(
        "process_cpu_seconds_total", "User and system CPU time spent, in seconds.",
        [](const process_stats& s) { return s.cpu_seconds; }, metric_type::counter));
    h.push_back(process_gauge(
        "process_resident_memory_bytes", "Resident memory size, in bytes.",
        [](const process_stats& s) { return static_cast<double>(s.resident_bytes); },
        metric_type::gauge));
    h.push_back(process_gauge(
        "process_virtual_memory_bytes", "Virtual memory size, in bytes.",
        [](const process_stats& s) { return static_cast<double>(s.virtual_bytes); },
        metric_type::gauge));
    h.push_back(process_gauge(
        "process_open_fds", "Open file descriptors.",
        [](const process_stats& s) { return static_cast<double>(s.open_fds); },
        metric_type::gauge));
    h.push_back(process_gauge(
        "process_max_fds", "The limit on open file descriptors (RLIMIT_NOFILE).",
        [](const process_stats& s) { return static_cast<double>(s.max_fds); }, metric_type::gauge));
    h.push_back(process_gauge(
        "process_start_time_seconds", "When the process started, in seconds since the Unix epoch.",
        [](const process_stats& s) { return s.start_time_seconds; }, metric_type::gauge));
    registry::global()
        .gauges("ordermesh_build_info", "Always 1; the running orderd's version is its label.",
                {"version"})
        .with({ORDERMESH_VERSION})
        .set(1);
    return h;
  }();
  (void)handles;
}

}  // namespace

std::string render_metrics_text() {
  register_standard_metrics();
  return registry::global().render();
}

std::vector<activity_sample> recent_activity() {
  return global_activity().samples(unix_now_ms());
}

}  // namespace om::obs
