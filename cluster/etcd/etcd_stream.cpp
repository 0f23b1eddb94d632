#include "cluster/etcd/etcd_stream.hpp"

#include <openssl/ssl.h>

#include <algorithm>
#include <vector>

#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>

#include "cluster/etcd/etcd_transport.hpp"

namespace ordermesh::etcd {

namespace asio = boost::asio;
namespace beast = boost::beast;
using tcp = asio::ip::tcp;

etcd_stream::etcd_stream(asio::io_context& io, std::shared_ptr<tls_context> tls)
    : ctx_(std::move(tls)) {
  if (ctx_) {
    tls_.emplace(io, ctx_->ssl);
  } else {
    plain_.emplace(io);
  }
}

std::string etcd_stream::connect(asio::io_context& io, const endpoint& ep, deadline by,
                                 std::chrono::milliseconds step) {
  boost::system::error_code ec;
  std::vector<tcp::endpoint> targets;
  const auto address = asio::ip::make_address(ep.host, ec);
  const bool is_address = !ec;
  if (is_address) {
    targets.emplace_back(address, ep.port);
  } else {
    tcp::resolver resolver(io);
    const auto found = resolver.resolve(ep.host, std::to_string(ep.port), ec);
    if (ec) {
      return "resolve: " + ec.message();
    }
    for (const auto& entry : found) {
      targets.push_back(entry.endpoint());
    }
  }
  if (clock::now() >= by) {
    return "connect: " + beast::error_code(beast::error::timeout).message();
  }
  tcp().expires_at(std::min<deadline>(by, clock::now() + step));
  ec = run_until_done(io, [&](auto handler) { tcp().async_connect(targets, handler); });
  if (ec) {
    return "connect: " + ec.message();
  }
  if (!tls_) {
    return "";
  }
  // The name the certificate must carry: a DNS SAN for a host name (also sent as SNI), an IP
  // SAN for an address (OpenSSL's X509_check_ip_asc inside host_name_verification).
  if (!is_address && SSL_set_tlsext_host_name(tls_->native_handle(), ep.host.c_str()) != 1) {
    return "tls: cannot set the server name";
  }
  tls_->set_verify_mode(asio::ssl::verify_peer, ec);
  if (!ec) {
    // host_name_verification fails without saying why; record the mismatch, so that the
    // handshake error names it instead of a bare "certificate verify failed".
    asio::ssl::host_name_verification names(ep.host);
    tls_->set_verify_callback(
        [names, is_address](bool preverified, asio::ssl::verify_context& ctx) {
          const bool ok = names(preverified, ctx);
          if (preverified && !ok) {
            X509_STORE_CTX_set_error(ctx.native_handle(), is_address
                                                              ? X509_V_ERR_IP_ADDRESS_MISMATCH
                                                              : X509_V_ERR_HOSTNAME_MISMATCH);
          }
          return ok;
        },
        ec);
  }
  if (ec) {
    return "tls: " + ec.message();
  }
  if (clock::now() >= by) {
    return "tls handshake: " + beast::error_code(beast::error::timeout).message();
  }
  // A server that accepts the connection and never answers ends here by the bound.
  tcp().expires_at(std::min<deadline>(by, clock::now() + step));
  ec = run_until_done(
      io, [&](auto handler) { tls_->async_handshake(asio::ssl::stream_base::client, handler); });
  if (ec) {
    std::string why = "tls handshake: " + ec.message();
    const long verify = SSL_get_verify_result(tls_->native_handle());
    if (verify != X509_V_OK) {
      why += " (";
      why += X509_verify_cert_error_string(verify);
      why += ")";
    }
    return why;
  }
  return "";
}

void etcd_stream::close() {
  boost::system::error_code ignored;
  tcp().socket().shutdown(tcp::socket::shutdown_both, ignored);
  tcp().close();
}

}  // namespace ordermesh::etcd
