// Tests for nodes/tls_peer_prover: the hello's proof of identity with real cluster certificates,
// made by scripts/gen-certs.sh (the script operators use) in a temp dir: a second CA for the
// "another CA" case. An expired certificate is not made here (OpenSSL 3.0's CLI cannot backdate
// one); the chain check that refuses it is nodes/x509_checks' verify_chain, which
// tests/nodes/tls_identity_test.cpp drives with expired certificates.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <cstdlib>
#include <string>

#include "cluster/identity/peer_proof.hpp"
#include "nodes/tls_peer_prover.hpp"

namespace id = ordermesh::cluster::identity;
using ordermesh::node::make_tls_peer_prover;

namespace {

/// A temp dir with the cluster CA and n1, n2, n9 (certs/), and another CA with its own n2
/// (other/); removed at the end.
struct certs {
  std::string dir;
  certs() {
    char tmpl[] = "/tmp/tls_peer_prover_test.XXXXXX";
    REQUIRE(::mkdtemp(tmpl) != nullptr);
    dir = tmpl;
    run("certs", "n1 n2 n9");
    run("other", "n2");
  }
  ~certs() {
    std::string cmd = "rm -rf '" + dir + "'";
    CHECK(std::system(cmd.c_str()) == 0);
  }
  void run(const std::string& sub, const std::string& names) const {
    std::string cmd = "bash '" ORDERMESH_SOURCE_DIR "/scripts/gen-certs.sh' '" + dir + "/" + sub +
                      "' " + names + " >/dev/null 2>&1";
    REQUIRE(std::system(cmd.c_str()) == 0);
  }
  /// The prover of `name` in `ca_dir` (its certificate, key and CA).
  std::shared_ptr<id::identity_prover> prover(const std::string& name,
                                              const std::string& ca_dir = "certs") const {
    std::string why;
    auto d = dir + "/" + ca_dir + "/";
    auto p = make_tls_peer_prover(d + name + ".pem", d + name + ".key", d + "ca.pem", &why);
    INFO(why);
    REQUIRE(p != nullptr);
    return p;
  }
};

id::proof_context ctx_of(id::identity_prover& verifier, const std::string& prover_id) {
  return id::proof_context{id::proof_role::dialer, prover_id,           "n1", "127.0.0.1:7001",
                           verifier.challenge(),   verifier.challenge()};
}

id::identity_proof prove(id::identity_prover& p, const id::proof_context& ctx) {
  id::identity_proof out;
  std::string why;
  INFO(why);
  REQUIRE(id::make_proof(p, ctx, &out, &why));
  return out;
}

}  // namespace

TEST_CASE("a member's certificate and signature prove its id") {
  certs c;
  auto n1 = c.prover("n1");
  auto n2 = c.prover("n2");
  auto ctx = ctx_of(*n1, "n2");
  auto proof = prove(*n2, ctx);
  CHECK(proof.certificate.find("BEGIN CERTIFICATE") != std::string::npos);
  CHECK(id::check_proof(*n1, proof, ctx).empty());
  CHECK(n1->challenge().size() == id::challenge_bytes);
  CHECK(n1->challenge() != n1->challenge());
}

TEST_CASE("a cluster certificate that names another node does not prove the id claimed") {
  certs c;
  auto n1 = c.prover("n1");
  auto n9 = c.prover("n9");
  auto ctx = ctx_of(*n1, "n2");  // n9's certificate, claiming n2
  CHECK_THAT(id::check_proof(*n1, prove(*n9, ctx), ctx),
             Catch::Contains("names 'n9' (CN) and no DNS name 'n2'"));
}

TEST_CASE("a certificate of another CA does not prove anything") {
  certs c;
  auto n1 = c.prover("n1");
  auto rogue = c.prover("n2", "other");
  auto ctx = ctx_of(*n1, "n2");
  CHECK_THAT(id::check_proof(*n1, prove(*rogue, ctx), ctx),
             Catch::Contains("does not chain to the cluster CA"));
}

TEST_CASE("a signature that is not the certificate key's over this hello is refused") {
  certs c;
  auto n1 = c.prover("n1");
  auto n2 = c.prover("n2");
  auto n9 = c.prover("n9");
  auto ctx = ctx_of(*n1, "n2");
  auto proof = prove(*n2, ctx);
  auto flipped = proof;
  flipped.signature[flipped.signature.size() / 2] ^= 1;
  CHECK_THAT(id::check_proof(*n1, flipped, ctx), Catch::Contains("signature does not verify"));
  // n2's certificate with n9's signature: the certificate alone (public) proves nothing.
  auto stolen_cert = prove(*n9, ctx);
  stolen_cert.certificate = proof.certificate;
  CHECK_THAT(id::check_proof(*n1, stolen_cert, ctx), Catch::Contains("signature does not verify"));
  // The same proof replayed against a new challenge.
  auto later = ctx;
  later.dialed_challenge = n1->challenge();
  CHECK_THAT(id::check_proof(*n1, proof, later), Catch::Contains("signature does not verify"));
}

TEST_CASE("garbage and oversized certificates are refused") {
  certs c;
  auto n1 = c.prover("n1");
  auto ctx = ctx_of(*n1, "n2");
  CHECK_THAT(id::check_proof(*n1, id::identity_proof{"not a certificate", "x"}, ctx),
             Catch::Contains("no certificate chain"));
  auto n2 = c.prover("n2");
  auto proof = prove(*n2, ctx);
  std::string five;
  for (int i = 0; i < 5; ++i)
    five += proof.certificate;  // more certificates than a chain of ours has
  CHECK_THAT(id::check_proof(*n1, id::identity_proof{five, proof.signature}, ctx),
             Catch::Contains("no certificate chain"));
  CHECK_THAT(id::check_proof(*n1, id::identity_proof{std::string(20000, 'A'), ""}, ctx),
             Catch::Contains("certificate of 20000 bytes"));
}

TEST_CASE("a prover is not made from files that cannot be used") {
  certs c;
  std::string why;
  auto d = c.dir + "/certs/";
  CHECK(make_tls_peer_prover(d + "nope.pem", d + "n1.key", d + "ca.pem", &why) == nullptr);
  CHECK_THAT(why, Catch::Contains("nope.pem"));
  CHECK(make_tls_peer_prover(d + "n1.pem", d + "n1.pem", d + "ca.pem", &why) == nullptr);
  CHECK_THAT(why, Catch::Contains("not an unencrypted PEM private key"));
}
