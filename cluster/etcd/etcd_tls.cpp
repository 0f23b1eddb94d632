#include "cluster/etcd/etcd_tls.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <string>

namespace ordermesh::etcd {

namespace ssl = boost::asio::ssl;

namespace {

error bad_file(const char* what, const std::string& path, const boost::system::error_code& ec) {
  return error{errc::invalid_argument,
               std::string("etcd TLS: cannot use ") + what + " '" + path + "': " + ec.message()};
}

}  // namespace

result<std::shared_ptr<tls_context>> make_tls_context(const tls_files& files) {
  if (files.ca_file.empty()) {
    return error{errc::invalid_argument,
                 "etcd TLS: https endpoints need a CA file to verify etcd's certificate"};
  }
  if (files.cert_file.empty() != files.key_file.empty()) {
    return error{errc::invalid_argument,
                 "etcd TLS: a client certificate and its key go together: give both or neither"};
  }
  try {
    auto ctx = std::make_shared<tls_context>(ssl::context(ssl::context::tls_client));
    auto& c = ctx->ssl;
    boost::system::error_code ec;
    // TLS 1.2 is the oldest etcd 3.4 accepts by default; nothing older is worth allowing.
    c.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                      ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1,
                  ec);
    if (ec) {
      return error{errc::internal, "etcd TLS: " + ec.message()};
    }
    // Only the given CA: the system's trust store would let any public CA vouch for "etcd".
    c.load_verify_file(files.ca_file, ec);
    if (ec) {
      return bad_file("CA file", files.ca_file, ec);
    }
    if (!files.cert_file.empty()) {
      c.use_certificate_chain_file(files.cert_file, ec);
      if (ec) {
        return bad_file("client certificate", files.cert_file, ec);
      }
      c.use_private_key_file(files.key_file, ssl::context::pem, ec);
      const bool mismatch = ec && ERR_GET_REASON(static_cast<unsigned long>(ec.value())) ==
                                      X509_R_KEY_VALUES_MISMATCH;
      if (ec && !mismatch) {
        return bad_file("client key", files.key_file, ec);
      }
      // A key of another certificate: OpenSSL says "key values mismatch" while loading it, or
      // for some key types only at the handshake. Check it here, and say it plainly.
      if (mismatch || SSL_CTX_check_private_key(c.native_handle()) != 1) {
        return error{errc::invalid_argument, "etcd TLS: the key '" + files.key_file +
                                                 "' does not match the certificate '" +
                                                 files.cert_file + "'"};
      }
    }
    c.set_verify_mode(ssl::verify_peer, ec);
    if (ec) {
      return error{errc::internal, "etcd TLS: " + ec.message()};
    }
    return ctx;
  } catch (const std::exception& e) {
    return error{errc::internal, std::string("etcd TLS: ") + e.what()};
  }
}

result<std::shared_ptr<tls_context>> context_for(const std::vector<endpoint>& endpoints,
                                                 const client_options& options) {
  const bool tls = !endpoints.empty() && endpoints.front().tls;
  for (const auto& ep : endpoints) {
    if (ep.tls != tls) {
      return error{errc::invalid_argument,
                   "etcd endpoints mix http and https: use one scheme for every endpoint"};
    }
  }
  if (!tls) {
    if (!options.tls.empty()) {
      // Files given but unused would look like TLS while every byte goes in the clear.
      return error{errc::invalid_argument,
                   "etcd TLS files are set but the endpoints are http://: use https:// URLs"};
    }
    return std::shared_ptr<tls_context>();
  }
  return make_tls_context(options.tls);
}

error check_client_config(const std::vector<endpoint>& endpoints, const client_options& options) {
  auto ctx = context_for(endpoints, options);
  return ctx ? error{} : ctx.err();
}

}  // namespace ordermesh::etcd
