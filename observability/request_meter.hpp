#pragma once
// Client requests: how many by op and reply code (a counter), how long per op (a histogram), the
// `overloaded` replies, and the activity window fed from the same histograms. The node names
// its ops and codes once; record() then takes their indexes and costs a few atomic operations:
// the counter of each (op, code) pair is resolved on its first use only.
#include <atomic>
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "observability/activity_window.hpp"
#include "observability/registry.hpp"

namespace om::obs {

/// `overloaded` replies, by stage: the meter counts stage="request"; the node adds a collector
/// for stage="connection" (the client listener's refusals).
inline const char* const overloaded_replies_name = "ordermesh_client_overloaded_replies_total";
inline const char* const overloaded_replies_help =
    "Replies `overloaded`: stage=request by the gateway (rate and password limits), "
    "stage=connection for connections refused over the caps.";

class request_meter {
 public:
  /// `ops`, `codes`: the label values, by index (at most 64 ops and 64 codes). The code named
  /// "overloaded" also counts in ordermesh_client_overloaded_replies_total{stage="request"}.
  request_meter(registry& r, activity_window& window, std::vector<std::string> ops,
                std::vector<std::string> codes);
  /// Detaches the activity window, which would otherwise read a meter that is gone.
  ~request_meter();
  request_meter(const request_meter&) = delete;
  request_meter& operator=(const request_meter&) = delete;

  /// One answered request. An index out of range counts under "other".
  void record(size_t op, size_t code, double seconds) noexcept;

 private:
  histogram_snapshot total() const;

  std::vector<std::string> ops_;
  std::vector<std::string> codes_;
  metric_family<counter>* requests_;
  std::vector<histogram*> latency_;                      // by op, and one for "other" last
  std::unique_ptr<std::atomic<counter*>[]> by_op_code_;  // (ops + 1) x (codes + 1), lazily
  size_t overloaded_code_;
  counter* overloaded_;
  activity_window& window_;
};

}  // namespace om::obs
