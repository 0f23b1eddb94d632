#pragma once
// The process-wide set of metric families and what renders them as Prometheus text.
//
// Two ways to feed a metric:
// - owned metrics (counters, gauges, histograms in families): the instrumented code records into
//   them; resolve the series once and keep the reference (metric_family.hpp);
// - collectors: a callback run at render time that reads a value kept elsewhere (an existing
//   atomic, the storage engine's stats, /proc/self), so nothing is counted twice. The returned
//   handle unregisters it: keep it no longer than what the callback reads.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "observability/histogram.hpp"
#include "observability/metric_family.hpp"
#include "observability/metric_values.hpp"

namespace om::obs {

enum class metric_type { counter, gauge, histogram };

/// Series per family unless a family asks for another bound.
constexpr size_t default_max_series = 256;

/// One value a collector reports: label values (one per label name of its family) and the value.
struct sample {
  std::vector<std::string> labels;
  double value = 0;
};
/// Appends the current samples; runs under the registry's lock: it must not call the registry.
/// At most the family's max_series samples of each call are rendered.
using collect_fn = std::function<void(std::vector<sample>&)>;

class registry;

/// Keeps a collector registered; unregisters it when destroyed (waiting for a render in progress).
class collector_handle {
 public:
  collector_handle() = default;
  collector_handle(registry* r, std::string name, uint64_t id)
      : registry_(r), name_(std::move(name)), id_(id) {}
  collector_handle(collector_handle&& o) noexcept { *this = std::move(o); }
  collector_handle& operator=(collector_handle&& o) noexcept;
  collector_handle(const collector_handle&) = delete;
  collector_handle& operator=(const collector_handle&) = delete;
  ~collector_handle() { reset(); }
  void reset();

 private:
  registry* registry_ = nullptr;
  std::string name_;
  uint64_t id_ = 0;
};

class registry {
 public:
  /// The one every orderd component records into and GET /metrics renders.
  static registry& global();

  registry() = default;
  registry(const registry&) = delete;
  registry& operator=(const registry&) = delete;

  // Families: asking again for a name returns the same family; asking for it with another type
  // or other label names, or an invalid name, is a programmer error (std::invalid_argument).
  metric_family<counter>& counters(const std::string& name, const std::string& help,
                                   std::vector<std::string> label_names = {},
                                   size_t max_series = default_max_series);
  metric_family<gauge>& gauges(const std::string& name, const std::string& help,
                               std::vector<std::string> label_names = {},
                               size_t max_series = default_max_series);
  metric_family<histogram>& histograms(const std::string& name, const std::string& help,
                                       std::vector<std::string> label_names,
                                       std::vector<double> bounds,
                                       size_t max_series = default_max_series);

  /// A counter or gauge family whose samples `fn` reports at render time. Several collectors may
  /// share a name (same type and labels); their samples are rendered under one header.
  [[nodiscard]] collector_handle collect(const std::string& name, const std::string& help,
                                         metric_type type, std::vector<std::string> label_names,
                                         collect_fn fn, size_t max_series = default_max_series);

  /// Every family, sorted by name, in the text format 0.0.4. Families without series are left out.
  std::string render() const;

 private:
  friend class collector_handle;
  struct entry {
    metric_type type = metric_type::counter;
    std::string help;
    std::vector<std::string> label_names;
    size_t max_series = default_max_series;
    std::unique_ptr<metric_family<counter>> counters;
    std::unique_ptr<metric_family<gauge>> gauges;
    std::unique_ptr<metric_family<histogram>> histograms;
    std::map<uint64_t, collect_fn> collectors;
  };
  entry& declare_locked(const std::string& name, const std::string& help, metric_type type,
                        const std::vector<std::string>& label_names, size_t max_series);
  void remove_collector(const std::string& name, uint64_t id);
  static void render_entry(std::string& out, const std::string& name, const entry& e);

  mutable std::mutex mu_;
  std::map<std::string, entry> entries_;
  uint64_t next_collector_ = 0;
};

}  // namespace om::obs
