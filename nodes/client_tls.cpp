#include "nodes/client_tls.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

namespace ordermesh::node {

namespace ssl = boost::asio::ssl;

namespace {

/// OpenSSL's reason for the last failure, or the error code's text when its queue is empty.
std::string reason(const boost::system::error_code& ec) {
  unsigned long e = ERR_get_error();
  ERR_clear_error();
  if (e == 0)
    return ec.message();
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  return buf;
}

}  // namespace

std::shared_ptr<ssl::context> make_client_tls_context(const std::string& cert_file,
                                                      const std::string& key_file,
                                                      std::string* error) {
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_server);
  SSL_CTX* native = ctx->native_handle();
  // TLS 1.0 and 1.1 are broken or deprecated; every client worth serving speaks 1.2.
  SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION);
  ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                   ssl::context::no_sslv3 | ssl::context::single_dh_use);
  // No session tickets: clients hold one long connection, and a ticket arriving after the
  // handshake would look to a waiting client like a reply nobody asked for.
  SSL_CTX_set_num_tickets(native, 0);
  boost::system::error_code ec;
  ctx->use_certificate_chain_file(cert_file, ec);
  if (ec) {
    *error = "--client-tls-cert " + cert_file + ": cannot load a PEM certificate: " + reason(ec);
    return nullptr;
  }
  ctx->use_private_key_file(key_file, ssl::context::pem, ec);
  // OpenSSL compares the key with the certificate as it loads it: a key of another certificate
  // fails here (KEY_VALUES_MISMATCH, in the error code Asio took from its queue), not in
  // check_private_key below.
  if (ec && ERR_GET_REASON(static_cast<unsigned long>(ec.value())) != X509_R_KEY_VALUES_MISMATCH) {
    *error = "--client-tls-key " + key_file + ": cannot load a PEM private key: " + reason(ec);
    return nullptr;
  }
  if (ec || SSL_CTX_check_private_key(native) != 1) {
    ERR_clear_error();
    *error = "--client-tls-key " + key_file + " does not belong to --client-tls-cert " + cert_file;
    return nullptr;
  }
  return ctx;
}

}  // namespace ordermesh::node
