#pragma once
// A family: one metric name, its label names, and one series per label set. The number of
// series is bounded: past `max_series` label sets, every new one folds into a single series whose
// label values are all "other", so a label fed from outside (an op name, a shard) can never grow
// the family without limit.
//
// with() takes a lock and may allocate: resolve a series once (at start-up, or on its first use)
// and keep the reference; the reference stays valid for the family's life.
#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

namespace om::obs {

/// The label value of the series that holds label sets past a family's bound.
inline const std::string overflow_label_value = "other";

template <class Metric>
class metric_family {
 public:
  using factory = std::function<std::unique_ptr<Metric>()>;

  metric_family(std::vector<std::string> label_names, size_t max_series, factory make)
      : label_names_(std::move(label_names)), max_series_(max_series), make_(std::move(make)) {}

  const std::vector<std::string>& label_names() const { return label_names_; }
  size_t max_series() const { return max_series_; }

  /// The series for `values` (one per label name; a wrong count is a programmer error and
  /// throws std::invalid_argument). Past the bound: the "other" series.
  Metric& with(const std::vector<std::string>& values) {
    if (values.size() != label_names_.size())
      throw std::invalid_argument("metric family: wrong number of label values");
    std::lock_guard<std::mutex> lock(mu_);
    if (auto it = index_.find(values); it != index_.end())
      return *series_[it->second].metric;
    if (series_.size() >= max_series_) {
      ++folded_;
      return overflow_locked();
    }
    return add_locked(values);
  }

  /// Label sets that were folded into the "other" series (each time one was asked for).
  size_t folded() const {
    std::lock_guard<std::mutex> lock(mu_);
    return folded_;
  }

  /// Calls f(label_values, metric) for every series, in creation order, under the family's lock.
  template <class F>
  void each(F&& f) const {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& s : series_)
      f(s.values, *s.metric);
  }

 private:
  struct series {
    std::vector<std::string> values;
    std::unique_ptr<Metric> metric;
  };

  Metric& add_locked(const std::vector<std::string>& values) {
    index_.emplace(values, series_.size());
    series_.push_back(series{values, make_()});
    return *series_.back().metric;
  }

  Metric& overflow_locked() {
    std::vector<std::string> other(label_names_.size(), overflow_label_value);
    if (auto it = index_.find(other); it != index_.end())
      return *series_[it->second].metric;
    return add_locked(other);  // the one series allowed past the bound
  }

  const std::vector<std::string> label_names_;
  const size_t max_series_;
  const factory make_;
  mutable std::mutex mu_;
  std::map<std::vector<std::string>, size_t> index_;
  std::vector<series> series_;
  size_t folded_ = 0;
};

}  // namespace om::obs
