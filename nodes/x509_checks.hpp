#pragma once
// OpenSSL checks of a cluster certificate shared by orderd's start-up check of its own
// (tls_identity.cpp) and the check of a peer's in the agents' hello (tls_peer_prover.cpp): one
// rule for "chains to the cluster CA, valid now" and one for "names this node".
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include <openssl/x509.h>

namespace ordermesh::node {

struct x509_free {
  void operator()(X509* x) const { X509_free(x); }
};
struct pkey_free {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
using x509_ptr = std::unique_ptr<X509, x509_free>;
using pkey_ptr = std::unique_ptr<EVP_PKEY, pkey_free>;

/// The newest OpenSSL error as text, and the error queue cleared (so it cannot leak into CAF's).
std::string openssl_reason();

/// Up to `max_certs` certificates of a PEM text, in order (empty when there is none or more).
std::vector<x509_ptr> certs_from_pem(const std::string& pem, size_t max_certs);

/// Empty when `cert` chains to one of `cas` (through `intermediates`) and every certificate of
/// the chain is valid now; otherwise OpenSSL's reason.
std::string verify_chain(X509* cert, const std::vector<x509_ptr>& intermediates,
                         const std::vector<x509_ptr>& cas);

/// Empty when `cert` names `node_id`: its subject CN or one of its DNS subject alternative
/// names equals it exactly. Otherwise "names 'CN' (CN) and no DNS name 'node_id'".
std::string name_mismatch(X509* cert, const std::string& node_id);

}  // namespace ordermesh::node
