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

/// One etcd client URL, http://host:port or https://host:port.
struct endpoint {
  std::string host;  // a name, an IPv4 address or an IPv6 address without brackets
  uint16_t port = 0;
  /// https: TLS, the server's certificate checked against client_options::tls.ca_file and
  /// against `host` (a DNS name in its SAN, or an IP SAN when `host` is an address).
  bool tls = false;

  /// "http://host:port" or "https://host:port" (IPv6 in brackets), for messages.
  std::string url() const;
};

/// Parses a comma-separated list of http://host:port or https://host:port URLs (spaces around
/// commas are ignored, a trailing '/' is allowed). Returns the endpoints in order, or
/// invalid_argument naming the first bad entry (another scheme, a path, a missing or bad port,
/// an empty list) or saying the list mixes http and https (a TLS client must not fall back to a
/// plain connection when its TLS endpoints fail).
result<std::vector<endpoint>> parse_endpoints(std::string_view csv);

/// The PEM files of a TLS client. Paths are read when the client is built, not on every
/// connection.
struct tls_files {
  /// The CA certificates the server's certificate must chain to. Required for https.
  std::string ca_file;
  /// This client's certificate (chain) and its private key: both or neither. Needed when etcd
  /// runs with --client-cert-auth.
  std::string cert_file;
  std::string key_file;

  bool empty() const { return ca_file.empty() && cert_file.empty() && key_file.empty(); }
};

struct client_options {
  /// The longest wait for one TCP connect before the next endpoint is tried. The call's deadline
  /// still bounds the whole call.
  std::chrono::milliseconds connect_timeout{1000};
  /// The largest response body accepted; a larger one fails the call with too_large.
  std::size_t max_response_bytes = std::size_t{16} << 20;
  /// The longest watch line (one batch of events); a longer one ends the watch with too_large.
  std::size_t max_watch_line_bytes = std::size_t{16} << 20;
  /// For https endpoints; must be empty for http ones.
  tls_files tls;
};

/// Whether `endpoints` and `options` fit together, checked before any connection: errc::none
/// when they do, else invalid_argument saying why: https endpoints without a CA file, a client
/// certificate without its key (or the reverse), TLS files given for http endpoints, or a file
/// that cannot be read, is not PEM, or a key that does not match its certificate. A client built
/// from a configuration that fails this check fails every call with the same error.
error check_client_config(const std::vector<endpoint>& endpoints, const client_options& options);

}  // namespace ordermesh::etcd
