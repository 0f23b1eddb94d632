#pragma once
// HTTP/1.1 POSTs to etcd's JSON gateway, over TLS for https:// endpoints: a deadline on every
// call, failover across endpoints, one keep-alive connection. Calls block: each runs Beast's
// async operations on a private io_context until they finish or the deadline passes, because
// tcp_stream's timeouts work only for async operations. Internal to the etcd library (its
// header pulls in Asio, Beast and Asio's SSL).
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/beast/core/flat_buffer.hpp>

#include "cluster/etcd/etcd_config.hpp"
#include "cluster/etcd/etcd_error.hpp"
#include "cluster/etcd/etcd_stream.hpp"
#include "cluster/etcd/etcd_tls.hpp"
#include "cluster/etcd/etcd_types.hpp"

namespace ordermesh::etcd {

/// Runs `start(handler)` on `io` until the handler is called and every other operation it left
/// (e.g. tcp_stream's timer) finished; returns the error_code the handler got. The caller bounds
/// the operation (tcp_stream::expires_at), so this returns by that bound.
template <class Start>
boost::system::error_code run_until_done(boost::asio::io_context& io, Start&& start) {
  boost::system::error_code result = boost::asio::error::operation_aborted;
  io.restart();
  start([&result](boost::system::error_code ec, auto&&...) { result = ec; });
  io.run();
  return result;
}

/// The value of a Host header for `ep`.
std::string host_header(const endpoint& ep);

/// The error for a failed socket, TLS or HTTP operation: timeout, too_large, bad_response (a
/// malformed HTTP answer) or unavailable (refused, reset, closed, a TLS alert such as etcd
/// refusing a client without a certificate).
error transport_error(const boost::system::error_code& ec, std::string_view context);

/// One etcd answer that arrived whole: the HTTP status and the body.
struct http_reply {
  unsigned status = 0;
  std::string body;
};

/// Not thread-safe: one caller at a time (client serializes its calls).
class http_transport {
 public:
  /// `tls` is the context for https endpoints (context_for), null for http ones.
  http_transport(std::vector<endpoint> endpoints, client_options options,
                 std::shared_ptr<tls_context> tls);
  ~http_transport();
  http_transport(const http_transport&) = delete;
  http_transport& operator=(const http_transport&) = delete;

  /// POSTs `body` to `target` (e.g. "/v3/kv/range") and returns the answer, whatever its status,
  /// or an error:
  /// - unavailable: no endpoint connected (refused, TLS handshake failed), or the connection
  ///   broke (messages say per endpoint);
  /// - timeout: `by` passed;
  /// - too_large: the body exceeded max_response_bytes;
  /// - bad_response: the answer was not HTTP/1.1.
  /// Endpoints are tried from the one that answered last. A request is sent to the next endpoint
  /// after a failure before sending (connect refused or timed out); after the request may have
  /// reached etcd, only when `idempotent` (also on a 503), otherwise the error is returned and
  /// the outcome is unknown.
  result<http_reply> post(std::string_view target, const std::string& body, deadline by,
                          bool idempotent);

  /// The index of the endpoint the next call tries first.
  std::size_t preferred() const { return preferred_; }

 private:
  void disconnect();
  /// True when the kept connection is to `index` and the peer has not closed it while idle.
  bool usable(std::size_t index);
  /// Sends one request on the connected stream and reads the whole answer.
  result<http_reply> exchange(std::string_view target, const std::string& body, deadline by);

  std::vector<endpoint> endpoints_;
  client_options options_;
  std::shared_ptr<tls_context> tls_;
  std::size_t preferred_ = 0;
  boost::asio::io_context io_;  // before stream_: destroyed after it
  std::optional<etcd_stream> stream_;
  std::size_t connected_ = 0;  // the endpoint stream_ is connected to, when it is set
  boost::beast::flat_buffer buffer_;
};

}  // namespace ordermesh::etcd
