#pragma once
// One connection to an etcd member: plain TCP for http:// endpoints, TLS over TCP for https://
// ones. Both layers share the tcp_stream underneath, whose expiry bounds every operation,
// the TLS handshake included. Internal to the etcd library (pulls in Asio's SSL).
#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include <boost/asio/io_context.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include "cluster/etcd/etcd_config.hpp"
#include "cluster/etcd/etcd_tls.hpp"
#include "cluster/etcd/etcd_types.hpp"

namespace ordermesh::etcd {

class etcd_stream {
 public:
  /// A closed plain stream when `tls` is null, else a closed TLS stream using that context.
  etcd_stream(boost::asio::io_context& io, std::shared_ptr<tls_context> tls);

  /// The TCP layer: its expiry bounds the next operation on either layer.
  boost::beast::tcp_stream& tcp() { return tls_ ? tls_->next_layer() : *plain_; }

  /// Calls f with the stream to read and write HTTP on (the TLS layer when there is one).
  template <class F>
  void with(F&& f) {
    if (tls_) {
      f(*tls_);
    } else {
      f(*plain_);
    }
  }

  /// Connects to `ep`, then, for TLS, runs the handshake, checking the server's certificate
  /// against the CA and against ep.host (DNS or IP SAN). Each of the two steps ends by
  /// min(by, its start + step). Returns "" when connected, else what failed ("connect: ...",
  /// "tls handshake: ..."); the caller tells a timeout by `by` having passed.
  std::string connect(boost::asio::io_context& io, const endpoint& ep, deadline by,
                      std::chrono::milliseconds step);

  /// Shuts the socket down and closes it; pending operations complete with operation_aborted.
  /// No TLS close_notify: the connection is dropped, not handed back.
  void close();

 private:
  std::shared_ptr<tls_context> ctx_;  // before tls_: outlives the SSL object that uses it
  std::optional<boost::beast::tcp_stream> plain_;
  std::optional<boost::beast::ssl_stream<boost::beast::tcp_stream>> tls_;
};

}  // namespace ordermesh::etcd
