// --insecure-cluster: no certificates, so nothing to prove with. Every claim is believed, as
// before issue 13; docs/SECURITY.md says so. Challenges are still random (std::random_device:
// nothing depends on them being secret here), so the hello runs the same steps.
#include <random>

#include "cluster/identity/identity_prover.hpp"
#include "cluster/identity/peer_proof.hpp"

namespace ordermesh::cluster::identity {

namespace {

class insecure_prover final : public identity_prover {
 public:
  std::string challenge() override {
    std::string out(challenge_bytes, '\0');
    for (auto& c : out)
      c = static_cast<char>(random_() & 0xff);
    return out;
  }
  bool prove(const std::string&, identity_proof* out, std::string*) override {
    *out = identity_proof{};
    return true;
  }
  std::string verify(const identity_proof&, const std::string&, const std::string&) override {
    return {};
  }

 private:
  std::random_device random_;
};

}  // namespace

std::shared_ptr<identity_prover> make_insecure_prover() {
  return std::make_shared<insecure_prover>();
}

}  // namespace ordermesh::cluster::identity
