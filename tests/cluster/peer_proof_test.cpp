// Tests for cluster/identity/peer_proof: the hello's proof of identity as pure functions, driven
// with a fake prover (a "certificate" that is the node's name, a "signature" that is the name
// and the transcript's hash), so that every refusal is about the protocol, not the crypto
// (nodes/tls_peer_prover is tested with real certificates in tests/nodes).
#include <catch2/catch.hpp>

#include <chrono>
#include <functional>
#include <string>

#include "cluster/identity/peer_proof.hpp"

namespace id = ordermesh::cluster::identity;
using namespace std::chrono_literals;

namespace {

class fake_prover final : public id::identity_prover {
 public:
  explicit fake_prover(std::string name) : name_(std::move(name)) {}
  std::string challenge() override {
    return std::string(id::challenge_bytes, static_cast<char>('a' + (next_++ % 26)));
  }
  bool prove(const std::string& transcript, id::identity_proof* out, std::string*) override {
    out->certificate = "cert:" + name_;
    out->signature = signature(name_, transcript);
    return true;
  }
  std::string verify(const id::identity_proof& proof, const std::string& claimed,
                     const std::string& transcript) override {
    if (proof.certificate != "cert:" + claimed)
      return "its certificate names another node";
    if (proof.signature != signature(claimed, transcript))
      return "its signature does not verify";
    return {};
  }
  static std::string signature(const std::string& name, const std::string& transcript) {
    return "sig:" + name + ":" + std::to_string(std::hash<std::string>{}(transcript));
  }

 private:
  std::string name_;
  int next_ = 0;
};

std::string challenge_of(char c) {
  return std::string(id::challenge_bytes, c);
}

/// The context of n2 dialed by n1 at 127.0.0.1:7002, as n2 proves it.
id::proof_context dialed_ctx() {
  return id::proof_context{id::proof_role::dialed, "n2", "n1", "127.0.0.1:7002", challenge_of('x'),
                           challenge_of('y')};
}

/// Some time point, and the entry of a hello from n1.
const auto t0 = id::pending_challenges::clock::time_point{} + 1h;
id::pending_challenges::entry pending_for_n1() {
  return {"n1", challenge_of('x'), challenge_of('y'), {}};
}

/// `p`'s proof over `ctx` (a fake prover always signs).
id::identity_proof proved(id::identity_prover& p, const id::proof_context& ctx) {
  id::identity_proof proof;
  std::string why;
  REQUIRE(id::make_proof(p, ctx, &proof, &why));
  return proof;
}

}  // namespace

TEST_CASE("a proof made over the context verifies for the id it claims") {
  fake_prover n2("n2"), n1("n1");
  auto ctx = dialed_ctx();
  auto proof = proved(n2, ctx);
  CHECK(id::check_proof(n1, proof, ctx).empty());
}

TEST_CASE("a proof by a node whose certificate names another id is refused") {
  fake_prover n9("n9"), n1("n1");
  auto ctx = dialed_ctx();  // claims n2
  auto proof = proved(n9, ctx);
  CHECK(id::check_proof(n1, proof, ctx) == "its certificate names another node");
}

TEST_CASE("a proof whose signature is not over this context is refused") {
  fake_prover n2("n2"), n1("n1");
  auto ctx = dialed_ctx();
  auto proof = proved(n2, ctx);
  proof.signature.back() ^= 1;
  CHECK(id::check_proof(n1, proof, ctx) == "its signature does not verify");
}

TEST_CASE("a proof replayed for another challenge is refused") {
  fake_prover n2("n2"), n1("n1");
  auto ctx = dialed_ctx();
  auto proof = proved(n2, ctx);
  auto later = ctx;
  later.dialer_challenge = challenge_of('z');
  CHECK_FALSE(id::check_proof(n1, proof, later).empty());
  auto other_dialed = ctx;
  other_dialed.dialed_challenge = challenge_of('w');
  CHECK_FALSE(id::check_proof(n1, proof, other_dialed).empty());
}

TEST_CASE("a proof reflected in the other role or shown to another verifier is refused") {
  fake_prover n2("n2"), n1("n1"), n3("n3");
  auto ctx = dialed_ctx();
  auto proof = proved(n2, ctx);
  auto as_dialer = ctx;
  as_dialer.role = id::proof_role::dialer;
  CHECK_FALSE(id::check_proof(n1, proof, as_dialer).empty());
  auto to_n3 = ctx;
  to_n3.verifier_id = "n3";
  CHECK_FALSE(id::check_proof(n3, proof, to_n3).empty());
  auto relayed = ctx;  // made for a dial of another address (an impostor's, from the store)
  relayed.dialed_address = "127.0.0.1:7009";
  CHECK_FALSE(id::check_proof(n1, proof, relayed).empty());
}

TEST_CASE("no two contexts share a transcript") {
  auto a = dialed_ctx();
  auto b = a;
  b.prover_id = "n2n";
  b.verifier_id = "1";
  CHECK(id::transcript(a) != id::transcript(b));
  auto c = a;
  c.role = id::proof_role::dialer;
  CHECK(id::transcript(a) != id::transcript(c));
}

TEST_CASE("oversized certificates and signatures and bad challenges are refused unseen") {
  fake_prover n1("n1");
  auto ctx = dialed_ctx();
  id::identity_proof big{std::string(id::max_certificate_bytes + 1, 'c'), "s"};
  CHECK(id::check_proof(n1, big, ctx).find("certificate of") != std::string::npos);
  id::identity_proof big_sig{"cert:n2", std::string(id::max_signature_bytes + 1, 's')};
  CHECK(id::check_proof(n1, big_sig, ctx).find("signature of") != std::string::npos);
  auto short_challenge = ctx;
  short_challenge.dialer_challenge = "abc";
  id::identity_proof proof;
  std::string why;
  fake_prover n2("n2");
  REQUIRE(id::make_proof(n2, short_challenge, &proof, &why));
  CHECK(id::check_proof(n1, proof, short_challenge).find("challenge of 3 bytes") !=
        std::string::npos);
}

TEST_CASE("peer ids must be 1 to 64 bytes and not this node's") {
  CHECK(id::check_peer_id("n2", "n1").empty());
  CHECK_FALSE(id::check_peer_id("", "n1").empty());
  CHECK_FALSE(id::check_peer_id(std::string(65, 'n'), "n1").empty());
  CHECK_FALSE(id::check_peer_id("n1", "n1").empty());
  CHECK(id::check_challenge(challenge_of('q')).empty());
  CHECK_FALSE(id::check_challenge(std::string(id::challenge_bytes + 1, 'q')).empty());
}

TEST_CASE("a challenge is answered once by the connection and id it was issued to") {
  id::pending_challenges p(2, 10s);
  auto e = pending_for_n1();
  REQUIRE(p.issue("node-a", e, t0));
  CHECK_FALSE(p.take("node-b", "n1", t0));  // another connection
  auto got = p.take("node-a", "n1", t0 + 1s);
  REQUIRE(got);
  CHECK(got->dialed_challenge == challenge_of('y'));
  CHECK_FALSE(p.take("node-a", "n1", t0 + 1s));  // taken: a replay finds nothing
  REQUIRE(p.issue("node-a", e, t0));
  CHECK_FALSE(p.take("node-a", "n3", t0));  // issued to n1: a claim of n3 gets nothing ...
  CHECK_FALSE(p.take("node-a", "n1", t0));  // ... and spends it
}

TEST_CASE("pending challenges are bounded and expire") {
  id::pending_challenges p(2, 10s);
  auto e = pending_for_n1();
  REQUIRE(p.issue("a", e, t0));
  REQUIRE(p.issue("b", e, t0));
  CHECK_FALSE(p.issue("c", e, t0));  // full of live entries
  CHECK(p.issue("a", e, t0));        // the same connection replaces its own
  CHECK(p.size() == 2);
  CHECK(p.issue("c", e, t0 + 11s));  // the old ones expired
  CHECK(p.size() == 1);
  CHECK_FALSE(p.take("c", "n1", t0 + 22s));  // expired before its answer
}

TEST_CASE("refusals are logged once per id per interval and counted in between") {
  id::refusal_log_limiter l(2, 30s);
  uint64_t suppressed = 99;
  CHECK(l.allow("n2", t0, &suppressed));
  CHECK(suppressed == 0);
  CHECK_FALSE(l.allow("n2", t0 + 1s, &suppressed));
  CHECK_FALSE(l.allow("n2", t0 + 2s, &suppressed));
  CHECK(l.allow("n3", t0 + 2s, &suppressed));
  CHECK(l.allow("n2", t0 + 31s, &suppressed));
  CHECK(suppressed == 2);
  CHECK(l.allow("n4", t0 + 32s, &suppressed));  // full: the id logged longest ago is forgotten
  CHECK(l.allow("n3", t0 + 33s, &suppressed));  // n3 was it: a new line at once
}

TEST_CASE("refusals are logged at most max_lines times per interval in all") {
  id::refusal_log_limiter l(1024, 30s, 3);
  uint64_t suppressed = 0;
  int logged = 0;
  for (int i = 0; i < 100; ++i)  // a new claimed id every time
    logged += l.allow("id" + std::to_string(i), t0 + std::chrono::milliseconds(i), &suppressed);
  CHECK(logged == 3);
  CHECK(l.allow("id99", t0 + 31s, &suppressed));  // a new interval
}

TEST_CASE("the insecure prover believes every claim") {
  auto p = id::make_insecure_prover();
  CHECK(p->challenge().size() == id::challenge_bytes);
  CHECK(p->challenge() != p->challenge());
  id::identity_proof proof;
  std::string why;
  REQUIRE(id::make_proof(*p, dialed_ctx(), &proof, &why));
  CHECK(id::check_proof(*p, proof, dialed_ctx()).empty());
}
