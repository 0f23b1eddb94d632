#include "observability/registry.hpp"

#include <stdexcept>

#include "observability/text_format.hpp"

namespace om::obs {

namespace {

const char* type_name(metric_type t) {
  switch (t) {
    case metric_type::counter:
      return "counter";
    case metric_type::gauge:
      return "gauge";
    case metric_type::histogram:
      return "histogram";
  }
  return "untyped";
}

void check_names(const std::string& name, const std::vector<std::string>& label_names,
                 metric_type type) {
  if (!text::valid_metric_name(name))
    throw std::invalid_argument("metric name not valid: " + name);
  for (auto& l : label_names) {
    if (!text::valid_label_name(l) || (type == metric_type::histogram && l == "le"))
      throw std::invalid_argument("label name not valid: " + name + " " + l);
  }
}

}  // namespace

collector_handle& collector_handle::operator=(collector_handle&& o) noexcept {
  if (this != &o) {
    reset();
    registry_ = o.registry_;
    name_ = std::move(o.name_);
    id_ = o.id_;
    o.registry_ = nullptr;
  }
  return *this;
}

void collector_handle::reset() {
  if (registry_)
    registry_->remove_collector(name_, id_);
  registry_ = nullptr;
}

registry& registry::global() {
  static registry r;  // never destroyed before the collectors' handles: those live in main
  return r;
}

registry::entry& registry::declare_locked(const std::string& name, const std::string& help,
                                          metric_type type,
                                          const std::vector<std::string>& label_names,
                                          size_t max_series) {
  check_names(name, label_names, type);
  auto [it, fresh] = entries_.try_emplace(name);
  auto& e = it->second;
  if (fresh) {
    e.type = type;
    e.help = help;
    e.label_names = label_names;
    e.max_series = max_series;
  } else if (e.type != type || e.label_names != label_names) {
    throw std::invalid_argument("metric declared twice with another type or labels: " + name);
  }
  return e;
}

metric_family<counter>& registry::counters(const std::string& name, const std::string& help,
                                           std::vector<std::string> label_names,
                                           size_t max_series) {
  std::lock_guard<std::mutex> lock(mu_);
  auto& e = declare_locked(name, help, metric_type::counter, label_names, max_series);
  if (!e.counters)
    e.counters = std::make_unique<metric_family<counter>>(
        std::move(label_names), max_series, [] { return std::make_unique<counter>(); });
  return *e.counters;
}

metric_family<gauge>& registry::gauges(const std::string& name, const std::string& help,
                                       std::vector<std::string> label_names, size_t max_series) {
  std::lock_guard<std::mutex> lock(mu_);
  auto& e = declare_locked(name, help, metric_type::gauge, label_names, max_series);
  if (!e.gauges)
    e.gauges = std::make_unique<metric_family<gauge>>(std::move(label_names), max_series,
                                                      [] { return std::make_unique<gauge>(); });
  return *e.gauges;
}

metric_family<histogram>& registry::histograms(const std::string& name, const std::string& help,
                                               std::vector<std::string> label_names,
                                               std::vector<double> bounds, size_t max_series) {
  histogram check(bounds);  // invalid bounds throw here, before anything is declared
  std::lock_guard<std::mutex> lock(mu_);
  auto& e = declare_locked(name, help, metric_type::histogram, label_names, max_series);
  if (!e.histograms)
    e.histograms = std::make_unique<metric_family<histogram>>(
        std::move(label_names), max_series,
        [bounds] { return std::make_unique<histogram>(bounds); });
  return *e.histograms;
}

collector_handle registry::collect(const std::string& name, const std::string& help,
                                   metric_type type, std::vector<std::string> label_names,
                                   collect_fn fn, size_t max_series) {
  if (type == metric_type::histogram)
    throw std::invalid_argument("collectors report counters or gauges: " + name);
  std::lock_guard<std::mutex> lock(mu_);
  auto& e = declare_locked(name, help, type, label_names, max_series);
  auto id = ++next_collector_;
  e.collectors.emplace(id, std::move(fn));
  return collector_handle(this, name, id);
}

void registry::remove_collector(const std::string& name, uint64_t id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(name);
  if (it == entries_.end())
    return;
  it->second.collectors.erase(id);
  auto& e = it->second;
  // A name kept only by collectors goes with the last one (a test's engine, a stopped agent).
  if (e.collectors.empty() && !e.counters && !e.gauges && !e.histograms)
    entries_.erase(it);
}

std::string registry::render() const {
  std::string out;
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& [name, e] : entries_)
    render_entry(out, name, e);
  return out;
}

void registry::render_entry(std::string& out, const std::string& name, const entry& e) {
  std::string body;
  const auto& labels = e.label_names;
  if (e.counters) {
    e.counters->each([&](const std::vector<std::string>& values, const counter& c) {
      text::append_sample(body, name, labels, values, {}, {}, std::to_string(c.value()));
    });
  }
  if (e.gauges) {
    e.gauges->each([&](const std::vector<std::string>& values, const gauge& g) {
      text::append_sample(body, name, labels, values, {}, {}, std::to_string(g.value()));
    });
  }
  if (e.histograms) {
    auto bucket = name + "_bucket";
    e.histograms->each([&](const std::vector<std::string>& values, const histogram& h) {
      auto s = h.snapshot();
      // Cumulative from the per-bucket counts of one snapshot, so each line is >= the one
      // before and `+Inf` equals `_count` even while other threads observe.
      uint64_t cumulative = 0;
      for (size_t i = 0; i < s.bounds.size(); ++i) {
        cumulative += s.counts[i];
        text::append_sample(body, bucket, labels, values, "le", text::format_value(s.bounds[i]),
                            std::to_string(cumulative));
      }
      cumulative += s.counts.back();
      text::append_sample(body, bucket, labels, values, "le", "+Inf", std::to_string(cumulative));
      text::append_sample(body, name + "_sum", labels, values, {}, {}, text::format_value(s.sum));
      text::append_sample(body, name + "_count", labels, values, {}, {},
                          std::to_string(cumulative));
    });
  }
  std::vector<sample> samples;
  for (auto& [id, fn] : e.collectors) {
    samples.clear();
    fn(samples);
    size_t n = 0;
    for (auto& s : samples) {
      if (n++ >= e.max_series)
        break;
      if (s.labels.size() != labels.size())
        continue;  // a collector's bug: leave the sample out rather than render a broken line
      text::append_sample(body, name, labels, s.labels, {}, {}, text::format_value(s.value));
    }
  }
  if (body.empty())
    return;
  text::append_header(out, name, e.help, type_name(e.type));
  out += body;
}

}  // namespace om::obs
