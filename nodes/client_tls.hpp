#pragma once
// The client plane's optional TLS (docs/SECURITY.md, "Client plane TLS"): the server context
// made once from --client-tls-cert and --client-tls-key. Made and checked at start, so that an
// unreadable file or a key of another certificate is an exit 2 that says which and why, not a
// failed handshake in some client's terminal.
#include <memory>
#include <string>

#include <boost/asio/ssl/context.hpp>

namespace ordermesh::node {

/// A TLS server context (TLS 1.2 at least) presenting `cert_file` (PEM: the certificate, then
/// any intermediates) with `key_file` (PEM, unencrypted). Null with *error (one line naming the
/// file and the reason) when a file cannot be read or the key does not belong to the certificate.
std::shared_ptr<boost::asio::ssl::context> make_client_tls_context(const std::string& cert_file,
                                                                   const std::string& key_file,
                                                                   std::string* error);

}  // namespace ordermesh::node
