#pragma once
// Where the etcd members are and the bounds a client keeps.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "cluster/etcd/etcd_error.hpp"

namespace ordermesh::etcd {

/// One etcd client URL, http://host:port.
struct endpoint {
  std::string host;  // a name, an IPv4 address or an IPv6 address without brackets
  uint16_t port = 0;

  /// "http://host:port" (IPv6 in brackets), for messages.
  std::string url() const;
};

/// Parses a comma-separated list of http://host:port URLs (spaces around commas are ignored, a
/// trailing '/' is allowed). Returns the endpoints in order, or invalid_argument naming the
/// first bad entry (https, a path, a missing or bad port, an empty list).
result<std::vector<endpoint>> parse_endpoints(std::string_view csv);

struct client_options {
  /// The longest wait for one TCP connect before the next endpoint is tried. The call's deadline
  /// still bounds the whole call.
  std::chrono::milliseconds connect_timeout{1000};
  /// The largest response body accepted; a larger one fails the call with too_large.
  std::size_t max_response_bytes = std::size_t{16} << 20;
  /// The longest watch line (one batch of events); a longer one ends the watch with too_large.
  std::size_t max_watch_line_bytes = std::size_t{16} << 20;
};

}  // namespace ordermesh::etcd
