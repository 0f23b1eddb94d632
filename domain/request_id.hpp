#pragma once
// Request ids: the name one client request carries through every node and saga step it causes,
// so that the logs of every node and an order's timeline can be joined on it. A client may choose
// one (bounded, plain characters: it ends up in log lines); otherwise the node that received the
// request makes one that no other node and no earlier run of this node can make.
#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>

namespace ordermesh::domain {

/// Longest request id, chosen or made.
constexpr size_t max_request_id_length = 64;

/// [A-Za-z0-9._:-]{1,64}: safe to print unquoted in a log line and to grep for.
bool valid_request_id(std::string_view id);

/// A made id: "<node>-<start>-<n>", node id cut to 32 bytes, start time (ms) and counter in
/// base 36. Unique across the cluster while node ids are (the start time tells restarts apart);
/// at most 32 + 1 + 9 + 1 + 13 bytes, so always valid_request_id.
std::string make_request_id(std::string_view node_id, int64_t start_ms, uint64_t n);

/// Makes ids for one node run; safe to call from any thread.
class request_id_source {
 public:
  request_id_source(std::string node_id, int64_t start_ms)
      : node_id_(std::move(node_id)), start_ms_(start_ms) {}
  std::string next() {
    return make_request_id(node_id_, start_ms_, counter_.fetch_add(1, std::memory_order_relaxed));
  }

 private:
  std::string node_id_;
  int64_t start_ms_;
  std::atomic<uint64_t> counter_{1};
};

}  // namespace ordermesh::domain
