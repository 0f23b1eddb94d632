#pragma once
// orderd's own cluster certificate, checked once at start (docs/SECURITY.md, "Cluster plane").
// CAF's OpenSSL module would only fail at the first handshake, with an error in a peer's log or
// none at all; checking here makes a wrong file, a mismatched key, a certificate of another CA,
// an expired one or one that names another node an exit 2 that says which file and why.
// OpenSSL only (no CAF): its tests link nothing else.
#include <string>

namespace ordermesh::node {

/// Checks that `cert_file` (PEM: the node's certificate, then any intermediates) and `key_file`
/// (PEM, unencrypted) can be read, that the key belongs to the certificate, that the certificate
/// chains to a CA in `ca_file` (PEM) and is valid now, and that it names `node_id`: its subject
/// CN or one of its DNS subject alternative names equals `node_id` exactly.
/// Returns an empty string when all hold; otherwise one line that names the file and the reason.
std::string check_tls_identity(const std::string& cert_file, const std::string& key_file,
                               const std::string& ca_file, const std::string& node_id);

}  // namespace ordermesh::node
