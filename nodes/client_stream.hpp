#pragma once
// One client connection's byte stream: plain TCP, or TLS over it (docs/SECURITY.md, "Client
// plane TLS"). A two-way choice behind visit() rather than a virtual interface: the plain path
// pays one branch per read or write, not an allocation for a type-erased handler.
#include <memory>
#include <utility>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>

namespace ordermesh::node {

class client_stream {
 public:
  using tcp = boost::asio::ip::tcp;
  using tls_stream = boost::asio::ssl::stream<tcp::socket>;

  /// Plain TCP when `tls` is null, otherwise a TLS server stream that must handshake first.
  client_stream(tcp::socket socket, boost::asio::ssl::context* tls)
      : plain_(tls ? tcp::socket(socket.get_executor()) : std::move(socket)),
        tls_(tls ? std::make_unique<tls_stream>(std::move(socket), *tls) : nullptr) {}

  bool is_tls() const { return tls_ != nullptr; }
  /// The TCP socket underneath (options, shutdown, close).
  tcp::socket& socket() { return tls_ ? tls_->next_layer() : plain_; }
  /// Calls f with the stream to read from and write to: the TLS stream or the plain socket.
  template <class F>
  void visit(F&& f) {
    if (tls_)
      std::forward<F>(f)(*tls_);
    else
      std::forward<F>(f)(plain_);
  }
  /// The server side of the TLS handshake; only when is_tls().
  template <class Handler>
  void async_handshake(Handler&& h) {
    tls_->async_handshake(boost::asio::ssl::stream_base::server, std::forward<Handler>(h));
  }

 private:
  tcp::socket plain_;  // unused (never opened) under TLS
  std::unique_ptr<tls_stream> tls_;
};

}  // namespace ordermesh::node
