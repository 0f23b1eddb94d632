#pragma once
// The member agents' hello proof with the node's cluster certificate (docs/SECURITY.md,
// "Identity inside the cluster"): CAF 0.17's OpenSSL module checks that a peer holds a
// certificate of the cluster CA but does not say which, so each side of a hello also sends its
// certificate chain and signs the transcript (cluster/identity/peer_proof.hpp) with its TLS key.
// OpenSSL only (no CAF): its tests link nothing else.
#include <memory>
#include <string>

#include "cluster/identity/identity_prover.hpp"

namespace ordermesh::node {

/// A prover that signs with the key in `key_file` and sends the certificates of `cert_file`
/// (PEM, leaf first), and accepts a peer's proof when its certificate chains to a CA of
/// `ca_file` and is valid now, names the claimed id (the same rule as check_tls_identity) and
/// its key signed the transcript. Null with *why set when a file cannot be used (orderd has
/// checked them with check_tls_identity before).
std::shared_ptr<cluster::identity::identity_prover> make_tls_peer_prover(
    const std::string& cert_file, const std::string& key_file, const std::string& ca_file,
    std::string* why);

}  // namespace ordermesh::node
