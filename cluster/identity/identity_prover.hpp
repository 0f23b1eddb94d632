#pragma once
// How a node proves its id to a peer when their agents say hello (docs/SECURITY.md, "Identity
// inside the cluster"). The cluster plane's TLS says only "a certificate of the cluster CA";
// CAF 0.17 does not let the agent see which one, so the proof travels in the hello itself: a
// certificate and a signature over a transcript that peer_proof.hpp builds. The crypto lives
// behind this interface (the node gives the agent one: nodes/tls_peer_prover.hpp with OpenSSL,
// or the insecure one below), so that cluster/ knows no OpenSSL and tests use a fake.
#include <memory>
#include <string>

namespace ordermesh::cluster::identity {

/// What a node sends to prove its id: its certificate chain (PEM, leaf first) and its
/// signature over the transcript. Both empty from the insecure prover.
struct identity_proof {
  std::string certificate;
  std::string signature;
};
template <class Inspector>
auto inspect(Inspector& f, identity_proof& x) {
  return f(x.certificate, x.signature);
}

/// The crypto of the proof. Implementations are called from the member agent's actor only
/// (one at a time) and may block for a signature (the agent is detached).
class identity_prover {
 public:
  virtual ~identity_prover() = default;
  /// A fresh unpredictable challenge of challenge_bytes bytes (peer_proof.hpp).
  virtual std::string challenge() = 0;
  /// This node's proof over `transcript`; false with *why set when it cannot sign.
  virtual bool prove(const std::string& transcript, identity_proof* out, std::string* why) = 0;
  /// Empty when `proof` holds a certificate that chains to the cluster CA, is valid now and
  /// names `claimed_id` (CN or DNS name), and a signature over `transcript` by its key;
  /// otherwise the reason, one short line.
  virtual std::string verify(const identity_proof& proof, const std::string& claimed_id,
                             const std::string& transcript) = 0;
};

/// --insecure-cluster: proves nothing and believes every claim (as before issue 13). Its
/// challenges are still random, so the protocol runs the same steps with or without TLS.
std::shared_ptr<identity_prover> make_insecure_prover();

}  // namespace ordermesh::cluster::identity
