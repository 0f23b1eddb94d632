#include "observability/request_meter.hpp"

#include <stdexcept>

namespace om::obs {

namespace {
constexpr size_t max_names = 64;
}

request_meter::request_meter(registry& r, activity_window& window, std::vector<std::string> ops,
                             std::vector<std::string> codes)
    : ops_(std::move(ops)), codes_(std::move(codes)), window_(window) {
  if (ops_.size() > max_names || codes_.size() > max_names)
    throw std::invalid_argument("request_meter: at most 64 ops and 64 codes");
  ops_.push_back(overflow_label_value);
  codes_.push_back(overflow_label_value);
  requests_ = &r.counters("ordermesh_client_requests_total",
                          "Client requests answered, by op and reply code (ok or the error code).",
                          {"op", "code"}, ops_.size() * codes_.size());
  auto& latency = r.histograms("ordermesh_client_request_duration_seconds",
                               "Time from a request's arrival to its reply, by op, in seconds.",
                               {"op"}, latency_buckets_seconds(), ops_.size());
  for (auto& o : ops_)
    latency_.push_back(&latency.with({o}));
  by_op_code_ = std::make_unique<std::atomic<counter*>[]>(ops_.size() * codes_.size());
  for (size_t i = 0; i < ops_.size() * codes_.size(); ++i)
    by_op_code_[i].store(nullptr, std::memory_order_relaxed);
  overloaded_code_ = codes_.size();
  for (size_t i = 0; i + 1 < codes_.size(); ++i) {
    if (codes_[i] == "overloaded")
      overloaded_code_ = i;
  }
  overloaded_ =
      &r.counters(overloaded_replies_name, overloaded_replies_help, {"stage"}).with({"request"});
  window_.set_source([this] { return total(); });
}

request_meter::~request_meter() {
  window_.set_source(nullptr);
}

void request_meter::record(size_t op, size_t code, double seconds) noexcept {
  window_.tick(unix_now_ms());  // before recording: a new interval's copy must not include this
  op = op < ops_.size() ? op : ops_.size() - 1;
  code = code < codes_.size() ? code : codes_.size() - 1;
  auto& slot = by_op_code_[op * codes_.size() + code];
  counter* c = slot.load(std::memory_order_acquire);
  if (!c) {
    try {
      c = &requests_->with({ops_[op], codes_[code]});  // the pair's first use: lock once
    } catch (...) {
      return;  // allocation failure: lose one count rather than the request
    }
    slot.store(c, std::memory_order_release);
  }
  c->inc();
  latency_[op]->observe(seconds);
  if (code == overloaded_code_)
    overloaded_->inc();
}

histogram_snapshot request_meter::total() const {
  histogram_snapshot sum;
  for (auto* h : latency_) {
    auto s = h->snapshot();
    if (sum.counts.empty()) {
      sum = std::move(s);
      continue;
    }
    for (size_t i = 0; i < s.counts.size() && i < sum.counts.size(); ++i)
      sum.counts[i] += s.counts[i];
    sum.sum += s.sum;
  }
  return sum;
}

}  // namespace om::obs
